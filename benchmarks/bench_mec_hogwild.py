"""MTL-A3C trained in one process against Hogwild over several: training speed and the agent it gives.

The same options (``bench mec``'s defaults but ``--episodes``), trained once with
``processes=1`` (the deterministic trainer, one torch thread) and once with each
``--processes`` value (one torch thread per process), one after the other, then
each agent judged on the bench's 5 evaluation episodes (paper mode, 600 tasks).
Prints episodes per second and its ratio to one process: what parallelism the
machine gave.

    python benchmarks/bench_mec_hogwild.py [--episodes 400] [--processes 2] [--seed 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time


def main() -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from edgeslice.planners.learned.agents import (
        agent_policy,
        episodes_to_converge,
        train_agent,
    )
    from edgeslice.planners.learned.evaluate import evaluate, optimum_episode

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=400)
    ap.add_argument("--processes", default="2", help="comma-separated process counts to set beside 1")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    opt = evaluate(None, "paper", episodes=5, tasks=600, plan_episode=optimum_episode)["total_delay_s"]
    rows = []
    for p in [1] + [int(x) for x in args.processes.split(",")]:
        t0 = time.perf_counter()
        net, curve, _ = train_agent("mtl-a3c", "paper", {"episodes": args.episodes, "seed": args.seed,
                                                         "processes": p}, tasks=600)
        s = time.perf_counter() - t0
        r = evaluate(agent_policy(net), "paper", episodes=5, tasks=600)
        rows.append({"processes": p, "train_s": round(s, 1), "episodes_per_s": round(args.episodes / s, 3),
                     "total_delay_s": round(r["total_delay_s"], 4),
                     "gap_to_optimum_pct": round(100 * (r["total_delay_s"] / opt - 1), 2),
                     "episodes_to_converge": episodes_to_converge(curve)})
    base = rows[0]["episodes_per_s"]
    print(f"MTL-A3C, paper defaults, {args.episodes} episodes, seed {args.seed}; optimum {opt:.4f} s/task; "
          f"{os.cpu_count()} CPUs")
    print("| processes | train s | episodes/s | speed vs 1 | total s/task | gap to optimum | converged by |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        r["speedup"] = round(r["episodes_per_s"] / base, 2)
        print(f"| {r['processes']} | {r['train_s']} | {r['episodes_per_s']} | {r['speedup']}x | "
              f"{r['total_delay_s']:.4f} | {r['gap_to_optimum_pct']:+.1f}% | {r['episodes_to_converge']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"episodes": args.episodes, "seed": args.seed, "optimum_s": opt, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
