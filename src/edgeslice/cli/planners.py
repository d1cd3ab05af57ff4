"""``edgeslice planners``: the registered planners and their options."""

from __future__ import annotations

import json


def add(sub) -> None:
    p = sub.add_parser("planners", help="list the planners and their options")
    p.add_argument("--json", action="store_true",
                   help="a JSON list of {name, summary, exact, options: [{name, type, default, help}]}")
    p.set_defaults(fn=run)


def run(args) -> int:
    from edgeslice.planners import planners
    from edgeslice.planners.options import describe, show

    rows = [{"name": p.name, "summary": p.summary, "exact": p.exact, "options": describe(p.options)}
            for p in planners().values()]
    if args.json:
        print(json.dumps(rows))
        return 0
    for r in rows:
        print(f"{r['name']:14s} {r['summary']}" + ("  [exact]" if r["exact"] else ""))
        if r["options"]:
            print(" " * 15 + "options: " + " ".join(f"{o['name']}={show(o['default'])}" for o in r["options"]))
    return 0
