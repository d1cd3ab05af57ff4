"""How long tracing and lowering take: VGG-16, 4 devices, a 4×4 grid over its first 10 layers.

Prints one line per stage (median of repeated runs) and a JSON line.  Target
(issue "Spine 1"): lowering under 50 ms.

    .venv/bin/python benchmarks/bench_lowering.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from edgeslice.bench.simulate import grid_plan
from edgeslice.graph.trace import trace_module
from edgeslice.models import load_model
from edgeslice.program import lower


def timed(fn, repeat):
    out, times = None, []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    model, t_build = timed(lambda: load_model("vgg16"), 1)
    (graph, _), t_trace = timed(lambda: trace_module(model, (3, 224, 224), 1, spec="vgg16"), max(3, args.repeat // 4))
    plan = grid_plan(graph)
    def cold():
        graph.memo.clear()  # no memoised region analysis: what the first lowering of a plan costs
        return lower(plan, graph)

    prog, t_lower = timed(cold, args.repeat)
    _, t_warm = timed(lambda: lower(plan, graph), args.repeat)
    res = {
        "model_build_s": t_build,
        "trace_s": t_trace,
        "lower_s": t_lower,
        "lower_warm_s": t_warm,
        "tasks": len(prog.tasks),
        "transfers": len(prog.transfers),
        "halo_flops_pct": 100 * (prog.flops - graph.flops) / graph.flops,
        "target_lower_s": 0.05,
    }
    print(f"VGG-16 224x224, 4 devices, 4x4 grid over first 10 layers ({len(prog.tasks)} tasks, {len(prog.transfers)} transfers)")
    print(f"  build model (random weights)  {t_build * 1e3:8.1f} ms")
    print(f"  trace (fx + fake-tensor shapes + FLOPs) {t_trace * 1e3:8.1f} ms  (median)")
    print(f"  lower plan → program (cold)   {t_lower * 1e3:8.1f} ms  (median of {args.repeat}; target < 50 ms)")
    print(f"  lower again (geometry memoised) {t_warm * 1e3:6.2f} ms  (what a planner re-placing tiles pays)")
    print(f"  halo recomputation            {res['halo_flops_pct']:8.2f} % of model FLOPs")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
