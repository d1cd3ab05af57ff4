"""``edgeslice compare``: every planner side by side on one model and cluster."""

from __future__ import annotations

import json

from edgeslice.cli._common import (
    _cluster,
    _console,
    _positive,
    model_args,
)
from edgeslice.cli._options import add_option_flags, given_options, unknown_flag_message
from edgeslice.errors import OptionError


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
    from edgeslice.planners.compare import default_planners

    return args.planners.split(",") if args.planners else default_planners()


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
    from edgeslice.planners import planner_info
    from edgeslice.planners.compare import compare

    names = _names(args)
    for name in names:
        planner_info(name)  # an unknown planner: one line with a did-you-mean, before any work
    options = _options_for(names, given_options(args))
    graph, gm = trace(args.model, args.input, args.batch, args.weights)
    cluster = _cluster(args)
    cost = ClusterCost(cluster)
    compared = compare(graph, cluster, cost, names, options=options)
    local = compared["local"] if "local" in compared else compare(graph, cluster, cost, ["local"])["local"]
    base = local.latency_s  # None when even `local` does not fit: no speed-up to show then
    results = {}
    for name, r in compared.items():
        if not r.ok:
            results[name] = {"error": r.error}
            continue
        results[name] = {"predicted_latency_s": r.latency_s, "bytes_moved": r.bytes_moved,
                         "planning_time_s": r.planning_s, "segments": len(r.plan.segments),
                         "speedup_vs_local": base / r.latency_s if base else None}
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
            table.add_row(name, "[red]refused[/]", "", "", "", "")
            continue
        mark = "[bold green]" if r["predicted_latency_s"] == best else ""
        speedup = f"{r['speedup_vs_local']:.2f}×" if r["speedup_vs_local"] else "-"
        table.add_row(name, f"{mark}{r['predicted_latency_s'] * 1e3:.1f}", speedup,
                      f"{r['bytes_moved'] / 1e6:.2f}", str(r["segments"]), f"{r['planning_time_s']:.2f}")
    con = _console()
    con.print(table)
    for name, r in results.items():  # why each refusal refused, in full, below the table
        if "error" in r:
            con.print(f"  {name} refused: {r['error']}", highlight=False)
    return 0
