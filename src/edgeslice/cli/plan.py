"""``edgeslice plan``: make a plan and write it to a JSON file."""

from __future__ import annotations

import json
import time

from edgeslice.cli._common import (
    _cluster,
    _positive,
    model_args,
)


def add(sub) -> None:
    p = sub.add_parser("plan", help="make a plan and write it to a JSON file")
    model_args(p)
    p.add_argument("--cluster", default=None, help="cluster YAML file or bundled name (pi4x4, iot-edge, hetero3, mec, local4, testbed4, testbed-hetero, testbed-fl)")
    p.add_argument("--devices", type=_positive, default=4, help="without --cluster: N identical devices d0..dN-1")
    p.add_argument("--planner", default="random", help="see `edgeslice planners`")
    p.add_argument("--seed", type=int, default=None, help="random, fl-psomw: seed (default 0)")
    p.add_argument("--swarm", type=_positive, default=None, help="fl-psomw: particles (default 24)")
    p.add_argument("--iterations", type=int, default=None, help="fl-psomw: swarm iterations (default 40)")
    p.add_argument("--polish", type=int, default=None, help="fl-psomw, fl-dpls: local-search evaluations (default 1200)")
    p.add_argument("--limit", type=float, default=None, help="fl-bf: most path assignments to try (default 2e6)")
    p.add_argument("--max-block", type=_positive, default=None, help="fl-*: most units in one fused block (default 12)")
    p.add_argument("--n", type=_positive, default=None, help="ftp: grid rows")
    p.add_argument("--m", type=_positive, default=None, help="ftp: grid columns")
    p.add_argument("--layers", type=_positive, default=None, help="ftp: number of fused layers")
    p.add_argument("--objective", choices=("latency", "throughput"), default=None, help="layerwise: what to minimise")
    p.add_argument("-o", "--output", default="plan.json")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=run)


def _planner_options(args) -> dict:
    opts = {}
    for key in ("seed", "n", "m", "layers", "objective", "swarm", "iterations", "polish", "limit", "max_block"):
        v = getattr(args, key, None)
        if v is not None:
            opts[key] = v
    return opts


def run(args) -> int:
    from edgeslice.cost import ClusterCost
    from edgeslice.graph.trace import trace
    from edgeslice.planners import make_plan
    from edgeslice.planners._shared.common import evaluate

    graph, _ = trace(args.model, args.input, args.batch, args.weights)
    cluster = _cluster(args)
    cost = ClusterCost(cluster)
    opts = _planner_options(args)
    if args.planner not in ("random", "fl-psomw"):
        opts.pop("seed", None)
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
