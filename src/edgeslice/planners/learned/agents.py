"""One door to the three learned MEC agents: train any of them, turn any into a policy, judge a learning curve.

``mtl-a3c`` (the paper's: M heads, one task per step), ``a3c`` (one head, one
block per step) and ``dqn`` (the paper's DQN baseline, ours) train with
:func:`train_agent` from one dict of options (each algorithm's own typed
options class checks it), and :func:`agent_policy` turns the trained network
into a ``policy(env) -> places`` for :func:`~.evaluate.evaluate`.

>>> from edgeslice.planners.learned.env import MECEnv
>>> net, curve, opts = train_agent("dqn", "paper", {"episodes": 1, "actors": 1}, tasks=10)
>>> opts["actors"], len(agent_policy(net)(MECEnv("paper", tasks=10)))
(1, 6)
>>> episodes_to_converge([{"reward": r} for r in (-9, -5, -2, -1.005, -1.0, -1.0)])
4
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgeslice.errors import OptionError
from edgeslice.planners.learned.config import MECConfig

ALGOS = ("mtl-a3c", "a3c", "dqn")


def train_agent(algo: str, config: str | dict | MECConfig = "paper", options: dict | None = None, *,
                progress: Callable | None = None, checkpoint: Callable | None = None, **overrides):
    """Train ``algo``; returns ``(network, learning curve, the options used as a dict)``."""
    options = dict(options or {})
    if algo == "dqn":
        from edgeslice.planners.learned.dqn import dqn_options, train_dqn

        opts = dqn_options(**options)
        net, curve = train_dqn(opts, config, progress=progress, checkpoint=checkpoint, **overrides)
    elif algo in ("mtl-a3c", "a3c"):
        from edgeslice.planners.learned.a3c import options as a3c_options
        from edgeslice.planners.learned.a3c import train

        opts = a3c_options(**{"algo": algo, **options})
        net, curve = train(opts, config, progress=progress, checkpoint=checkpoint, **overrides)
    else:
        raise OptionError(f"train: no learned agent {algo!r} (have {', '.join(ALGOS)})")
    return net, curve, opts.model_dump()


def agent_policy(net) -> Callable:
    """``policy(env) -> places`` for a trained network of any of the three algorithms."""
    from edgeslice.planners.learned.a3c import task_policy

    return task_policy(net)


def episodes_to_converge(curve: list[dict], tol: float = 0.01, window: int | None = None) -> int:
    """The first episode from which the smoothed reward stays within ``tol`` (relative) of its final value.

    Smoothing is a trailing mean over ``window`` episodes (default a tenth of
    the curve, at least one); "final" is the smoothed value at the last episode.
    """
    r = np.array([c["reward"] for c in curve], float)
    if not len(r):
        return 0
    w = window or max(len(r) // 10, 1)
    smooth = np.convolve(r, np.ones(w) / w, mode="full")[: len(r)]
    smooth[: w - 1] = [r[: i + 1].mean() for i in range(min(w - 1, len(r)))]
    final = smooth[-1]
    off = np.abs(smooth - final) > tol * max(abs(final), 1e-12)
    bad = np.nonzero(off)[0]
    return int(bad[-1] + 2) if len(bad) else 1
