"""edgeslice's runtime beside torch.distributed.pipelining: the same 2-stage split of ResNet-50.

Both split ResNet-50 (224×224, batch 1 per request) before ``layer3.0`` into
two stages on two processes (gloo, one thread each), input on stage 0 and
output on stage 1, and are measured in one run:

- latency: one request at a time (torch: a schedule step with 1 microbatch);
- throughput: K requests streamed through the pipeline (torch: GPipe with K
  microbatches of 1; edgeslice: K requests with up to K in flight).

Issue "Run any plan for real" requires ours not to be slower.

    .venv/bin/python benchmarks/bench_pipelining.py [--requests 8] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

SPLIT = "layer3.0"


def _torch_stage(rank: int, port: int, k: int, repeat: int, q) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2, timeout=timedelta(seconds=300))
    from torch.distributed.pipelining import ScheduleGPipe, SplitPoint, pipeline

    from edgeslice.models import load_model

    model = load_model("resnet50")
    pipe = pipeline(model, mb_args=(torch.randn(1, 3, 224, 224),), split_spec={SPLIT: SplitPoint.BEGINNING})
    stage = pipe.build_stage(rank, torch.device("cpu"))
    results = {}
    for name, n in (("latency", 1), ("throughput", k)):
        sched = ScheduleGPipe(stage, n_microbatches=n)
        times = []
        for i in range(repeat + 1):
            dist.barrier()
            t = time.perf_counter()
            with torch.no_grad():
                sched.step(torch.randn(n, 3, 224, 224)) if rank == 0 else sched.step()
            dist.barrier()
            if i:  # the first step warms up
                times.append(time.perf_counter() - t)
        results[name] = statistics.median(times)
    dist.destroy_process_group()
    if rank == 1:
        q.put(results)


def torch_pipelining(k: int, repeat: int) -> dict:
    from edgeslice.runtime.launch import free_port

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_torch_stage, args=(r, port, k, repeat, q)) for r in range(2)]
    for p in procs:
        p.start()
    res = q.get(timeout=1200)
    for p in procs:
        p.join(60)
    return {"latency_s": res["latency"], "throughput_rps": k / res["throughput"]}


def edgeslice_runtime(k: int, repeat: int) -> dict:
    from edgeslice.graph import trace
    from edgeslice.planners import make_plan
    from edgeslice.plan.plan import Part, Segment
    from edgeslice.runtime.launch import run_plan

    graph, _ = trace("resnet50", (3, 224, 224))
    cut = next(i for i, l in enumerate(graph.layers) if l.target.startswith(SPLIT + ".") or l.target.startswith(SPLIT.replace(".", "_")))
    names = [l.name for l in graph.layers]
    base = make_plan("local", graph, devices=2)
    plan = replace(base, sink="d1", planner="bench-2stage", segments=(
        Segment(names[0], names[cut - 1], "whole", (Part("d0"),)),
        Segment(names[cut], names[-1], "whole", (Part("d1"),))))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plan.json"
        plan.save(path)
        lat = run_plan(str(path), requests=repeat + 1, inflight=1, threads=1, out=str(Path(tmp) / "lat"))
        thr = run_plan(str(path), requests=k, inflight=k, threads=1, out=str(Path(tmp) / "thr"))
        assert lat["ok"] and thr["ok"]
        return {"latency_s": statistics.median(lat["latencies_s"][1:]), "throughput_rps": thr["throughput_rps"],
                "rel_err": max(lat["rel_err"], thr["rel_err"])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3, help="alternate the two systems this many times (ABAB...)")
    args = ap.parse_args()
    rounds = []
    for r in range(args.rounds):  # alternate, so both see the same background load on a shared machine
        theirs = torch_pipelining(args.requests, args.repeat)
        ours = edgeslice_runtime(args.requests, args.repeat)
        rounds.append((ours, theirs))
        print(f"round {r}: edgeslice {ours['latency_s'] * 1e3:.1f} ms / {ours['throughput_rps']:.3f} req/s; "
              f"torch {theirs['latency_s'] * 1e3:.1f} ms / {theirs['throughput_rps']:.3f} req/s", flush=True)
    med = lambda xs: statistics.median(xs)  # noqa: E731
    ours = {k: med([o[k] for o, _ in rounds]) for k in ("latency_s", "throughput_rps", "rel_err")}
    theirs = {k: med([t[k] for _, t in rounds]) for k in ("latency_s", "throughput_rps")}
    res = {"edgeslice": ours, "torch_pipelining": theirs, "rounds": args.rounds,
           "latency_ratio": med([o["latency_s"] / t["latency_s"] for o, t in rounds]),
           "throughput_ratio": med([o["throughput_rps"] / t["throughput_rps"] for o, t in rounds])}
    print(f"ResNet-50 224x224, 2 stages split before {SPLIT}, 2 processes, gloo, 1 thread each")
    print(f"{'':20s} {'latency (ms)':>14s} {'throughput (req/s)':>20s}")
    print(f"{'edgeslice':20s} {ours['latency_s'] * 1e3:14.1f} {ours['throughput_rps']:20.3f}")
    print(f"{'torch pipelining':20s} {theirs['latency_s'] * 1e3:14.1f} {theirs['throughput_rps']:20.3f}")
    print(f"median per-round ratio ours/theirs: latency {res['latency_ratio']:.3f} (lower is better), "
          f"throughput {res['throughput_ratio']:.3f} (higher is better)")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
