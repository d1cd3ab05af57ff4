"""``edgeslice planners``: the registered planners."""

from __future__ import annotations


def add(sub) -> None:
    p = sub.add_parser("planners", help="list the planners")
    p.set_defaults(fn=run)


def run(args) -> int:
    from edgeslice.planners import planners

    for p in planners().values():
        print(f"{p.name:14s} {p.summary}" + ("  [exact]" if p.exact else ""))
    return 0
