"""``edgeslice compare``: every planner side by side on one model and cluster."""

from __future__ import annotations

import json
import time

from edgeslice.cli._common import (
    _cluster,
    _console,
    _positive,
    model_args,
)
from edgeslice.cli._options import add_option_flags, given_options, unknown_flag_message
from edgeslice.errors import EdgesliceError, OptionError


def add(sub) -> None:
    p = sub.add_parser("compare", help="every planner side by side on one model and cluster", allow_abbrev=False,
                       description="Planner options go to the planners that take them; the others ignore them.")
    model_args(p)
    p.add_argument("--cluster", default=None)
    p.add_argument("--devices", type=_positive, default=4)
    p.add_argument("--planners", default=None, help="comma-separated names (default: all but bruteforce and random)")
    p.add_argument("--json", action="store_true")
    add_option_flags(p)
    p.set_defaults(fn=run, on_unknown=lambda args, extra: unknown_flag_message(p, extra, _names(args)))


def _names(args) -> list[str]:
    from edgeslice.planners import planners

    return args.planners.split(",") if args.planners else [n for n in planners() if n not in ("bruteforce", "random")]


def _options_for(names: list[str], given: dict) -> dict[str, dict]:
    """Each planner's share of the ``given`` options (an OptionError when no compared planner takes one)."""
    from edgeslice.planners import planner_options, planners
    from edgeslice.planners.options import flag, specs

    known = planners()
    takes = {n: {s.name for s in specs(known[n].options)} for n in names if n in known}
    for key in given:
        if not any(key in t for t in takes.values()):
            others = [n for n, i in known.items() if key in {s.name for s in specs(i.options)}]
            raise OptionError(f"compare: no planner compared takes {flag(key)} ({', '.join(others)} "
                              f"{'takes' if len(others) == 1 else 'take'} it); add it to --planners or drop the flag")
    out = {n: {k: v for k, v in given.items() if k in t} for n, t in takes.items()}
    for n, opts in out.items():
        planner_options(n, cli=True, **opts)  # bad values are reported before the model is traced
    return out


def run(args) -> int:
    from edgeslice.cost import ClusterCost
    from edgeslice.graph.trace import trace
    from edgeslice.planners import make_plan
    from edgeslice.planners._shared.common import evaluate
    from edgeslice.program.lower import lower

    names = _names(args)
    options = _options_for(names, given_options(args))
    graph, gm = trace(args.model, args.input, args.batch, args.weights)
    cluster = _cluster(args)
    cost = ClusterCost(cluster)
    results = {}
    for name in names:
        t0 = time.perf_counter()
        try:
            plan = make_plan(name, graph, cluster, cost, **options.get(name, {}))
        except EdgesliceError as exc:
            results[name] = {"error": str(exc)}
            continue
        planning = time.perf_counter() - t0
        results[name] = {"predicted_latency_s": evaluate(plan, graph, cluster, cost), "bytes_moved": lower(plan, graph).bytes_transferred,
                         "planning_time_s": planning, "segments": len(plan.segments)}
    base = results.get("local", {}).get("predicted_latency_s")
    if base is None:
        base = evaluate(make_plan("local", graph, cluster, cost), graph, cluster, cost)
    for r in results.values():
        if "predicted_latency_s" in r:
            r["speedup_vs_local"] = base / r["predicted_latency_s"]
    if args.json:
        print(json.dumps(results))
        return 0
    from rich.table import Table

    table = Table(title=f"{graph.spec} {'x'.join(map(str, graph.input_shape))} on {cluster.name} ({len(cluster.devices)} devices)")
    for col in ("planner", "predicted ms", "speedup vs local", "MB moved", "segments", "planning s"):
        table.add_column(col, justify="left" if col == "planner" else "right")
    best = min((r["predicted_latency_s"] for r in results.values() if "predicted_latency_s" in r), default=None)
    for name, r in results.items():
        if "error" in r:
            table.add_row(name, "[red]cannot plan[/]", "", "", "", r["error"][:60])
            continue
        mark = "[bold green]" if r["predicted_latency_s"] == best else ""
        table.add_row(name, f"{mark}{r['predicted_latency_s'] * 1e3:.1f}", f"{r['speedup_vs_local']:.2f}×",
                      f"{r['bytes_moved'] / 1e6:.2f}", str(r["segments"]), f"{r['planning_time_s']:.2f}")
    _console().print(table)
    return 0
