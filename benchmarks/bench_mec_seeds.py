"""MEC at the defaults: every learned agent trained under several seeds, judged on the same episodes.

One training run of an RL agent is a draw: the same MTL-A3C trained under two
seeds can end 10% apart.  This trains each agent (``bench mec``'s full budgets)
under ``--seeds`` training seeds, two at a time (one core each), evaluates each
on the bench's 5 evaluation episodes (seeds 10000-10004, never trained on) and
prints per seed and the mean, beside the exact optimum (paper mode) or window-opt (contention mode).

    python benchmarks/bench_mec_seeds.py [--seeds 3] [--algos mtl-a3c,a3c,dqn] [--mode paper|contention]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import time


def _one(job):
    algo, seed, episodes, mode = job
    import torch

    torch.set_num_threads(1)
    from edgeslice.planners.learned.agents import agent_policy, episodes_to_converge, train_agent
    from edgeslice.planners.learned.evaluate import evaluate

    t0 = time.perf_counter()
    net, curve, _ = train_agent(algo, mode, {"episodes": episodes, "seed": seed}, tasks=600)
    train_s = time.perf_counter() - t0
    r = evaluate(agent_policy(net), mode, episodes=5, tasks=600)
    return {"algo": algo, "seed": seed, "episodes": episodes, "train_s": round(train_s, 1),
            "episodes_to_converge": episodes_to_converge(curve), **r}


def main() -> int:
    from edgeslice.bench.mec import FULL
    from edgeslice.planners.learned.evaluate import evaluate, optimum_episode

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--algos", default="mtl-a3c,a3c,dqn")
    ap.add_argument("--json", default=None)
    ap.add_argument("--mode", choices=("paper", "contention"), default="paper",
                    help="contention: the reference is window-opt (offline), not an exact optimum")
    args = ap.parse_args()
    algos = args.algos.split(",")
    jobs = [(a, s, FULL["train"][a], args.mode) for a in algos for s in range(args.seeds)]
    if args.mode == "paper":
        opt = evaluate(None, "paper", episodes=5, tasks=600, plan_episode=optimum_episode)
    else:
        from edgeslice.bench.mec import WINDOW
        from edgeslice.planners.learned.reference import window_policy

        opt = evaluate(window_policy(WINDOW), "contention", episodes=5, tasks=600)
    t0 = time.perf_counter()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with mp.get_context("spawn").Pool(2) as pool:
        rows = []
        for r in pool.imap_unordered(_one, jobs):
            rows.append(r)
            print(f"{r['algo']:8s} seed {r['seed']}: {r['total_delay_s']:.4f} s/task, reward {r['reward']:.4f}, "
                  f"trained {r['train_s']:.0f} s", flush=True)
    ref = opt["total_delay_s"]
    print(f"\n{'optimum' if args.mode == 'paper' else 'window-opt'} {ref:.4f} s/task (reward {opt['reward']:.4f}); {time.perf_counter() - t0:.0f} s in all")
    summary = {}
    for a in algos:
        d = [r["total_delay_s"] for r in rows if r["algo"] == a]
        summary[a] = {"mean_total_delay_s": statistics.mean(d), "min": min(d), "max": max(d),
                      "gap_to_optimum_pct_mean": 100 * (statistics.mean(d) - ref) / ref,
                      "per_seed": sorted(d)}
        print(f"{a:8s} mean {statistics.mean(d):.4f} (min {min(d):.4f}, max {max(d):.4f}) s/task, "
              f"gap {summary[a]['gap_to_optimum_pct_mean']:+.1f}%")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"optimum": opt, "rows": rows, "summary": summary}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
