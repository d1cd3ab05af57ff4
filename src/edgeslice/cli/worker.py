"""``edgeslice worker``: one device's worker (what torchrun starts)."""

from __future__ import annotations

import argparse


def add(sub) -> None:
    p = sub.add_parser("worker", help="one device's worker (what torchrun starts); see `python -m edgeslice.runtime.worker -h`",
                       add_help=False)
    p.add_argument("worker_args", nargs=argparse.REMAINDER)
    p.set_defaults(fn=run)


def run(args) -> int:
    return run_worker_args(args.worker_args)


def run_worker_args(argv: list[str]) -> int:
    """``edgeslice worker ARGS`` is ``python -m edgeslice.runtime.worker ARGS``."""
    from edgeslice.runtime.worker import main as worker_main

    return worker_main(argv)
