"""Block decisions per second of the two MEC environments (issue 16: at least 20,000 here).

Steps ``BlockMECEnv`` (one block per step) with random actions for a few
seconds in each mode and prints decisions per second; ``MECEnv`` (one task per
step, M decisions each) the same.  Run: ``.venv/bin/python benchmarks/bench_mec_env.py``.
"""

from __future__ import annotations

import json
import time

import numpy as np

from edgeslice.planners.learned.env import BlockMECEnv, MECEnv


def rate(env, seconds: float = 3.0) -> float:
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    per_step = env.M if isinstance(env, MECEnv) else 1
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a = rng.integers(0, env.P, env.M) if per_step > 1 else int(rng.integers(0, env.P))
        _, _, term, _, _ = env.step(a)
        steps += 1
        if term:
            env.reset(seed=steps)
    return steps * per_step / (time.perf_counter() - t0)


if __name__ == "__main__":
    out = {f"{kind}/{mode}": round(rate(cls(mode))) for mode in ("paper", "contention")
           for kind, cls in (("block", BlockMECEnv), ("task", MECEnv))}
    for k, v in out.items():
        print(f"{k}: {v:,} block decisions per second")
    print(json.dumps(out))
