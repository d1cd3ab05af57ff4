"""``edgeslice train``: train a learned MEC agent (MTL-A3C, single-head A3C, DQN) and save it.

Shows a progress bar (episode, mean task reward, mean task delay), writes the
agent (``-o``, loads with ``torch.load(..., weights_only=True)``), a learning
curve PNG beside it (``--curve``), and checkpoints every tenth of the training
(``--checkpoints DIR``, default ``<agent>-checkpoints/``).  Training options
are flags (``--episodes``, ``--workers``, ...) or ``--opt key=value``; MEC
config keys are ``--set key=value`` over ``--config`` (``paper``,
``contention`` or a YAML file).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from edgeslice.cli._common import _positive
from edgeslice.errors import EdgesliceError


def add(sub) -> None:
    p = sub.add_parser("train", help="train a learned MEC agent (mtl-a3c, a3c, dqn)", allow_abbrev=False)
    p.add_argument("algo", choices=("mtl-a3c", "a3c", "dqn"))
    p.add_argument("--config", default="paper", help="MEC config: paper, contention or a YAML file")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key (e.g. --set edge_servers=6); repeatable")
    p.add_argument("--episodes", type=_positive, default=None)
    p.add_argument("--workers", type=_positive, default=None, help="mtl-a3c/a3c: workers; dqn: actors")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--variant", choices=("on-policy", "replay"), default=None, help="mtl-a3c/a3c")
    p.add_argument("--sharing", choices=("hard", "soft"), default=None, help="mtl-a3c")
    p.add_argument("--opt", dest="opts", action="append", default=[], metavar="KEY=VALUE",
                   help="any other training option (e.g. --opt lr=0.001); repeatable")
    p.add_argument("-o", "--output", default="agent.pt")
    p.add_argument("--curve", default=None, help="learning-curve PNG (default: beside the agent, <agent>.png)")
    p.add_argument("--checkpoints", default=None, help="folder for checkpoints (default <agent>-checkpoints)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON (progress goes to stderr)")
    p.set_defaults(fn=run)


def _pairs(items: list[str], flag: str) -> dict:
    import yaml

    out = {}
    for it in items:
        key, eq, val = it.partition("=")
        if not eq or not key.strip():
            raise EdgesliceError(f"{flag} {it!r}: give KEY=VALUE, like {flag} edge_servers=6")
        out[key.strip().replace("-", "_")] = yaml.safe_load(val)
    return out


def run(args) -> int:
    from edgeslice.planners.learned.agents import train_agent
    from edgeslice.planners.learned.config import load_config
    from edgeslice.planners.learned.nets import save_agent
    from edgeslice.viz.curves import learning_curves

    cfg = load_config(args.config, **_pairs(args.sets, "--set"))  # a bad key fails before training starts
    opts = _pairs(args.opts, "--opt")
    for key in ("episodes", "seed", "variant", "sharing"):
        if getattr(args, key) is not None:
            opts[key] = getattr(args, key)
    if args.workers is not None:
        opts["actors" if args.algo == "dqn" else "workers"] = args.workers
    out = Path(args.output)
    curve_png = Path(args.curve) if args.curve else out.with_suffix(".png")
    ckpt_dir = Path(args.checkpoints) if args.checkpoints else out.parent / f"{out.stem}-checkpoints"
    for p in (out.parent, curve_png.parent):
        if not p.exists():
            raise EdgesliceError(f"{p}: no such folder for the output; create it or give another -o/--curve")
    if args.algo != "dqn":
        from edgeslice.planners.learned.a3c import options

        episodes = options(**{"algo": args.algo, **opts}).episodes
    else:
        from edgeslice.planners.learned.dqn import dqn_options

        episodes = dqn_options(**opts).episodes

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    con = Console(stderr=True) if args.json or not sys.stdout.isatty() else Console()
    record = {"config": cfg.model_dump(mode="json")}

    def checkpoint(net, done):
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        save_agent(net, ckpt_dir / f"episode-{done:05d}.pt", algo=args.algo, **record)

    t0 = time.perf_counter()
    with Progress(TextColumn(f"train {args.algo}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=con, transient=False) as bar:
        task = bar.add_task("train", total=episodes, info="")

        def progress(e):
            bar.update(task, advance=1, info=f"reward {e['reward']:.3f}  delay {e['delay_s']:.3f} s")

        net, curve, used = train_agent(args.algo, cfg, opts, progress=progress, checkpoint=checkpoint)
    train_s = time.perf_counter() - t0
    save_agent(net, out, algo=args.algo, **record, extra={"options": used, "train_s": train_s})
    learning_curves({args.algo: curve}, curve_png, title=f"{args.algo} on {cfg.mode} ({cfg.model}, N={cfg.edge_servers}, "
                                                        f"M={cfg.blocks})")
    from edgeslice.planners.learned.agents import episodes_to_converge

    summary = {"algo": args.algo, "agent": str(out), "curve_png": str(curve_png), "checkpoints": str(ckpt_dir),
               "episodes": len(curve), "train_s": round(train_s, 2), "final_reward": curve[-1]["reward"],
               "final_delay_s": curve[-1]["delay_s"], "episodes_to_converge": episodes_to_converge(curve)}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{args.algo}: {len(curve)} episodes in {train_s:.1f} s; last episode reward {curve[-1]['reward']:.3f}, "
              f"delay {curve[-1]['delay_s']:.3f} s/task; converged (within 1%) by episode {summary['episodes_to_converge']}")
        print(f"agent {out} (torch.load(..., weights_only=True) reads it); curve {curve_png}; checkpoints {ckpt_dir}/")
    return 0
