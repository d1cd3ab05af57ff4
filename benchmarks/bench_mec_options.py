"""One learned MEC agent trained with chosen options: its evaluated delay and its learning curve, in one line.

For trying training options (``k``, ``lr``, ``episodes``, ...) before changing a default: trains ``ALGO`` on
600-task episodes of the paper mode (with ``--set key=value`` config overrides, e.g. ``blocks=20``), judges
the greedy agent on ``--eval`` evaluation episodes (seeds 10000..., never trained on) and prints the
training time, the evaluated total delay per task, ``episodes_to_converge`` and the smoothed training delay
at each tenth of the training.

    python benchmarks/bench_mec_options.py mtl-a3c --opt k=5 --opt lr=1e-3 --opt episodes=200 [--set blocks=20]
"""

from __future__ import annotations

import argparse
import json
import os
import time


def _kv(items):
    out = {}
    for it in items:
        k, _, v = it.partition("=")
        out[k] = json.loads(v) if v[:1].isdigit() or v in ("true", "false") or v[:1] == "-" else v
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("algo", choices=("mtl-a3c", "a3c", "dqn"))
    ap.add_argument("--opt", action="append", default=[], help="a training option, key=value")
    ap.add_argument("--set", action="append", default=[], help="a config override, key=value")
    ap.add_argument("--eval", type=int, default=2, help="evaluation episodes")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from edgeslice.planners.learned.agents import (
        agent_policy,
        episodes_to_converge,
        train_agent,
    )
    from edgeslice.planners.learned.evaluate import evaluate

    opts, over = _kv(args.opt), _kv(args.set)
    t0 = time.perf_counter()
    net, curve, _ = train_agent(args.algo, "paper", opts, tasks=600, **over)
    train_s = time.perf_counter() - t0
    r = evaluate(agent_policy(net), "paper", episodes=args.eval, tasks=600, **over)
    d = np.array([c["delay_s"] for c in curve])
    w = max(len(d) // 10, 1)
    smooth = [round(float(d[i - w:i].mean()), 3) for i in range(w, len(d) + 1, w)]
    print(f"{args.algo} {opts} {over}: trained {train_s:.0f} s, evaluated {r['total_delay_s']:.4f} s/task, "
          f"converged by {episodes_to_converge(curve)}/{len(curve)}; smoothed training delay {smooth}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
