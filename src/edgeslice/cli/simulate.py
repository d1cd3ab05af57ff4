"""``edgeslice simulate``: predict a plan's timeline on a cluster."""

from __future__ import annotations

import json

from edgeslice.cli._common import (
    _check_outputs,
    _cluster_for_plan,
    _console,
    _nonnegative_float,
    _positive,
    _warn_misfits,
)


def add(sub) -> None:
    p = sub.add_parser("simulate", help="predict a plan's timeline on a cluster")
    p.add_argument("plan")
    p.add_argument("--cluster", default=None, help="default: the plan's cluster, else identical devices")
    p.add_argument("--model", default=None, help="use this model instead of the plan's (it must match)")
    p.add_argument("--requests", type=_positive, default=1, help="number of requests")
    p.add_argument("--interval", type=_nonnegative_float, default=0.0, help="seconds between request arrivals")
    p.add_argument("--overlap", action="store_true",
                   help="a device waiting for one request's data runs a later request's ready tasks (as `run --overlap`)")
    p.add_argument("--gantt", default=None, help="draw the timeline to a .png or .html file")
    p.add_argument("--trace", default=None, help="write the timeline as Chrome trace JSON (open in ui.perfetto.dev)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=run)


def run(args) -> int:
    from edgeslice.cost import ClusterCost
    from edgeslice.execute.check import load_for_plan
    from edgeslice.plan.plan import Plan
    from edgeslice.program.lower import lower
    from edgeslice.program.memory import resident
    from edgeslice.sim import simulate
    from edgeslice.viz.trace import write_trace

    _check_outputs(args)
    plan = Plan.load(args.plan)
    graph, _ = load_for_plan(plan, args.model)
    cluster = _cluster_for_plan(plan, args.cluster)
    arrivals = tuple(i * args.interval for i in range(args.requests))
    program = lower(plan, graph)
    _warn_misfits(program, graph, cluster)
    tl = simulate(program, graph, cluster, ClusterCost(cluster), arrivals=arrivals, overlap=args.overlap)
    summary = tl.summary()
    mem = resident(program, graph)
    summary["resident_mb"] = {d: m.total / 1e6 for d, m in mem.items()}
    if args.gantt:
        from edgeslice.viz.gantt import draw

        draw([(f"predicted ({plan.planner} on {cluster.name})", tl)], args.gantt)
    if args.trace:
        write_trace(args.trace, [(f"predicted ({plan.planner} on {cluster.name})", tl)], program)
    if args.json:
        print(json.dumps({"predicted_latency_s": summary["latency_s"], "cluster": cluster.name, **summary}))
    else:
        from rich.table import Table

        con = _console()
        con.print(f"{plan.model.spec} on {cluster.name}: predicted latency [bold]{summary['latency_s'] * 1e3:.2f} ms[/]"
                  + (f" (median of {args.requests} requests, {summary['throughput_rps']:.2f} req/s)" if args.requests > 1 else "")
                  + f", {summary['bytes_total'] / 1e6:.2f} MB moved")
        table = Table(box=None)
        for col in ("device", "busy ms", "idle ms", "utilisation", "resident MB", "memory_mb"):
            table.add_column(col, justify="left" if col == "device" else "right")
        for name, v in summary["per_device"].items():
            span = v["busy_s"] + v["idle_s"]
            table.add_row(name, f"{v['busy_s'] * 1e3:.1f}", f"{v['idle_s'] * 1e3:.1f}", f"{100 * v['busy_s'] / span:.0f} %" if span else "-",
                          f"{summary['resident_mb'][name]:.1f}", f"{cluster.device(name).memory_mb:g}")
        con.print(table)
        if args.gantt:
            con.print(f"timeline drawn to {args.gantt}")
        if args.trace:
            con.print(f"trace written to {args.trace} (open it in ui.perfetto.dev or chrome://tracing)")
    return 0
