"""``edgeslice profile``: measure every layer on this machine."""

from __future__ import annotations

import json
from pathlib import Path

from edgeslice.cli._common import (
    _console_err,
    _nonnegative_float,
    _positive,
    model_args,
)


def add(sub) -> None:
    p = sub.add_parser("profile", help="measure every layer on this machine at several tile sizes")
    model_args(p)
    p.add_argument("--repeat", type=_positive, default=3)
    p.add_argument("--threads", type=_positive, default=1)
    p.add_argument("--min-time", type=_nonnegative_float, default=0.0,
                   help="seconds of back-to-back runs per measurement, averaged (use under a CPU quota, e.g. 0.05)")
    p.add_argument("-o", "--output", default="profile.json")
    p.add_argument("--json", action="store_true", help="print the profile's summary (all but its layers) as JSON")
    p.set_defaults(fn=run)


def run(args) -> int:
    from rich.progress import Progress

    from edgeslice.cost.profiled import measure

    with Progress(transient=True, console=_console_err() if args.json else None) as bar:
        task = bar.add_task(f"profiling {args.model}", total=None)

        def progress(done, total, name):
            bar.update(task, total=total, completed=done, description=f"profiling {args.model}: {name}")

        prof = measure(args.model, args.input, args.batch, repeat=args.repeat, threads=args.threads, progress=progress,
                       min_time_s=args.min_time)
    Path(args.output).write_text(json.dumps(prof, indent=1))
    if args.json:
        print(json.dumps({**{k: v for k, v in prof.items() if k != "layers"}, "layers": len(prof["layers"]),
                          "output": args.output}))
        return 0
    print(f"wrote {args.output}: {len(prof['layers'])} layers of {args.model}, whole model {prof['total_s'] * 1e3:.1f} ms "
          f"on {args.threads} thread(s) ({prof['effective_gflops']:.1f} GFLOP/s effective)")
    return 0
