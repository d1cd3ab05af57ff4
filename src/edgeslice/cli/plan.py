"""``edgeslice plan``: make a plan and write it to a JSON file."""

from __future__ import annotations

import json
import time

from edgeslice.cli._common import (
    _cluster,
    _positive,
    model_args,
)
from edgeslice.cli._options import add_option_flags, given_options, unknown_flag_message


def add(sub) -> None:
    # no prefix matching: --iteration must not quietly mean --iterations
    p = sub.add_parser("plan", help="make a plan and write it to a JSON file", allow_abbrev=False)
    model_args(p)
    p.add_argument("--cluster", default=None, help="cluster YAML file or bundled name (pi4x4, iot-edge, hetero3, mec, local4, testbed4, testbed-hetero, testbed-fl)")
    p.add_argument("--devices", type=_positive, default=4, help="without --cluster: N identical devices d0..dN-1")
    p.add_argument("--planner", default="random", help="see `edgeslice planners`")
    p.add_argument("-o", "--output", default="plan.json")
    p.add_argument("--json", action="store_true")
    add_option_flags(p)
    p.set_defaults(fn=run, on_unknown=lambda args, extra: unknown_flag_message(p, extra, [args.planner]))


def run(args) -> int:
    from edgeslice.cost import ClusterCost
    from edgeslice.graph.trace import trace
    from edgeslice.planners import make_plan, planner_options
    from edgeslice.planners._shared.common import evaluate

    opts = given_options(args)  # only what was given: the planner's defaults fill the rest
    planner_options(args.planner, cli=True, **opts)  # a bad option is reported before the model is traced
    graph, _ = trace(args.model, args.input, args.batch, args.weights)
    cluster = _cluster(args)
    cost = ClusterCost(cluster)
    t0 = time.perf_counter()
    plan = make_plan(args.planner, graph, cluster, cost, **opts)
    planning = time.perf_counter() - t0
    if args.weights:
        from dataclasses import replace

        plan = replace(plan, model=replace(plan.model, weights=args.weights))
    plan.save(args.output)
    latency = evaluate(plan, graph, cluster, cost)
    if args.json:
        print(json.dumps({"planner": args.planner, "predicted_latency_s": latency, "planning_time_s": planning,
                          "plan": args.output, "segments": len(plan.segments), "cluster": cluster.name}))
    else:
        cuts = ", ".join(f"{s.cut}×{len(s.parts)}" for s in plan.segments)
        print(f"wrote {args.output}: {graph.spec} {'x'.join(map(str, graph.input_shape))} batch {graph.batch} on "
              f"{cluster.name} ({len(cluster.devices)} devices), planner {args.planner}: {len(plan.segments)} segments "
              f"({cuts}); predicted latency {latency * 1e3:.1f} ms, planned in {planning:.2f} s")
    return 0
