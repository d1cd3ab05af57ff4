"""Chosen points of ``bench mec``'s paper-mode sweeps, two at a time: every method at each point.

``edgeslice bench mec`` runs every sweep point one after another (about an
hour here).  This runs the points you name with the same budgets
(``bench.mec.FULL["sweep_train"]``, 600-task episodes, 5 evaluation
episodes, training seed 0) in a pool of ``--jobs`` processes with one torch
thread each, and prints a table of total delay per task.

    python benchmarks/bench_mec_points.py edge_servers=2 edge_servers=8 blocks=3 blocks=10 deadline_s=7
        [--jobs 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time


def _point(spec: str):
    import torch

    torch.set_num_threads(1)
    from edgeslice.bench.mec import FULL, compare
    from edgeslice.planners.learned.config import load_config

    param, _, v = spec.partition("=")
    value = float(v) if param == "deadline_s" else int(v)
    over = {"deadline_s": (value, value)} if param == "deadline_s" else {param: value}
    t0 = time.perf_counter()
    rows, _, _ = compare(load_config("paper", tasks=FULL["tasks"], **over), train=FULL["sweep_train"],
                         eval_episodes=FULL["eval_episodes"], progress=lambda _m: None)
    return spec, {k: r["total_delay_s"] for k, r in rows.items()}, round(time.perf_counter() - t0, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("points", nargs="+", help="PARAM=VALUE, PARAM one of edge_servers, blocks, deadline_s, rate")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    for p in args.points:
        if p.partition("=")[0] not in ("edge_servers", "blocks", "deadline_s", "rate") or "=" not in p:
            ap.error(f"{p!r}: give PARAM=VALUE with PARAM one of edge_servers, blocks, deadline_s, rate")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from edgeslice.bench.mec import METHODS

    with mp.get_context("spawn").Pool(args.jobs) as pool:
        res = pool.map(_point, args.points)
    names = [m for m in METHODS if m in res[0][1]]
    print("| point | " + " | ".join(names) + " | s |")
    print("|" + "---|" * (len(names) + 2))
    for spec, row, s in res:
        best = min(row[n] for n in ("mtl-a3c", "a3c", "dqn"))
        cells = [(f"**{row[n]:.4f}**" if n == "mtl-a3c" and row[n] == best else f"{row[n]:.4f}") for n in names]
        print(f"| {spec} | " + " | ".join(cells) + f" | {s} |")
    for other in ("a3c", "dqn", "greedy", "apdi", "rpdi"):
        n = sum(row["mtl-a3c"] <= row[other] for _, row, _ in res)
        print(f"MTL-A3C <= {other}: {n}/{len(res)} points")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({spec: {"total_delay_s": row, "s": s} for spec, row, s in res}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
