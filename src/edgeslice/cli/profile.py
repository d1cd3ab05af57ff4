"""``edgeslice profile``: measure every layer on this machine."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgeslice.cli._common import (
    _console_err,
    _nonnegative_float,
    _positive,
    model_args,
)
from edgeslice.errors import EdgesliceError


def add(sub) -> None:
    p = sub.add_parser("profile", help="measure every layer on this machine at several tile sizes")
    model_args(p, required=False)
    p.add_argument("--repeat", type=_positive, default=3)
    p.add_argument("--threads", type=_positive, default=1)
    p.add_argument("--min-time", type=_nonnegative_float, default=0.0,
                   help="seconds of back-to-back runs per measurement, averaged (use under a CPU quota, e.g. 0.05)")
    p.add_argument("--fractions", type=_fractions, default=None,
                   help="output fractions to measure each layer at, e.g. 1,0.5,0.25 (default 1,0.5,0.25,0.125,0.0625)")
    p.add_argument("--models", type=_list, default=None,
                   help="with --loads: several models, name or name@CxHxW, e.g. resnet18,vgg16@3x160x160")
    p.add_argument("--loads", type=_loads, default=None,
                   help="measure under background CPU loads (percent of this CPU), e.g. 0,20,40,60,80: writes a load "
                        "profile (what `edgeslice predictor` learns from)")
    p.add_argument("-o", "--output", default="profile.json")
    p.add_argument("--json", action="store_true", help="print the profile's summary (all but its layers) as JSON")
    p.set_defaults(fn=run)


def _list(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError("give at least one, comma-separated")
    return items


def _fractions(text: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(t) for t in _list(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give fractions in (0, 1] like 1,0.5,0.25") from None
    if not all(0 < v <= 1 for v in vals):
        raise argparse.ArgumentTypeError(f"{text!r}: every fraction must be in (0, 1]")
    return vals


def _loads(text: str) -> list[float]:
    try:
        vals = [float(t) for t in _list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give percents like 0,20,40,60,80") from None
    if not all(0 <= v < 100 for v in vals):
        raise argparse.ArgumentTypeError(f"{text!r}: every load must be a percent in [0, 100)")
    return vals


def run(args) -> int:
    from rich.progress import Progress

    from edgeslice.cost.profiled import FRACTIONS, measure

    if args.loads is not None:
        from edgeslice.cost.learned.collect import profile_here

        models = args.models or [args.model + (f"@{'x'.join(map(str, args.input))}" if args.input else "")]
        prof = profile_here(models, args.loads, fractions=args.fractions or (1.0, 0.5, 0.25), min_time_s=args.min_time,
                            repeat=args.repeat, progress=lambda m: print(m, file=sys.stderr))
        Path(args.output).write_text(json.dumps(prof))
        n = sum(len(m["layers"]) for m in prof["models"].values())
        print(f"wrote {args.output}: load profile of {len(prof['models'])} model(s), {n} layers at loads "
              f"{', '.join(f'{v:g}%' for v in args.loads)}")
        return 0
    if not args.model:
        raise EdgesliceError("profile needs --model M (or --models A,B with --loads)")

    with Progress(transient=True, console=_console_err() if args.json else None) as bar:
        task = bar.add_task(f"profiling {args.model}", total=None)

        def progress(done, total, name):
            bar.update(task, total=total, completed=done, description=f"profiling {args.model}: {name}")

        prof = measure(args.model, args.input, args.batch, repeat=args.repeat, threads=args.threads, progress=progress,
                       min_time_s=args.min_time, fractions=args.fractions or FRACTIONS)
    Path(args.output).write_text(json.dumps(prof, indent=1))
    if args.json:
        print(json.dumps({**{k: v for k, v in prof.items() if k != "layers"}, "layers": len(prof["layers"]),
                          "output": args.output}))
        return 0
    print(f"wrote {args.output}: {len(prof['layers'])} layers of {args.model}, whole model {prof['total_s'] * 1e3:.1f} ms "
          f"on {args.threads} thread(s) ({prof['effective_gflops']:.1f} GFLOP/s effective)")
    return 0
