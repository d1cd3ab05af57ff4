"""The MEC environment of Li et al. (TMC 2024) as gymnasium environments, in two modes.

:class:`MECEnv` decides one task per step (the paper's multi-task action: one
place among N + 1 for each of the M blocks, ``MultiDiscrete([N+1] * M)``);
:class:`BlockMECEnv` decides one block per step (``Discrete(N+1)``, what a
single-head A3C or a DQN places), with the block's index and the previous
block's place in the observation.  Both price placements with
:mod:`~edgeslice.planners.learned.network`, so a task placed either way costs
the same.

Reward of a task: ``-(Σ_m L_m + β Σ_m max(0, L_m - τ_m) + energy_price · overdraft)``
where overdraft is the energy the task draws beyond its device's remaining
budget ``E_r`` (so an episode pays ``energy_price · max(0, Σ energy - E_max)``).

Observation (floats, the paper's state plus two of ours, marked): per block
``c_m`` (÷ the mean block), ``log(1 + I_m / 1 MB)``, ``τ_m`` (÷ the largest
deadline); per ES ``R_n`` (÷ the highest rate); ``E_r / E_max``; the share of
the episode left (ours: without it the value of the budget is not Markov);
in ``contention`` mode also each ES's and each channel's backlog and the
device's own (seconds, ours: the queues are the state there).

>>> from gymnasium.utils.env_checker import check_env
>>> env = MECEnv("paper", tasks=20)
>>> check_env(env, skip_render_check=True)
>>> obs, info = env.reset(seed=1)
>>> obs.shape == env.observation_space.shape
True
>>> _, r, term, trunc, info = env.step(np.zeros(6, dtype=np.int64))  # all six blocks on the device
>>> bool(abs(-r - info["delay_s"] - info["penalty_s"] - info["overdraft_j"]) < 1e-9)
True
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from edgeslice.planners.learned.config import MECConfig, load_config
from edgeslice.planners.learned.network import Network, penalty

HIGH = 50.0  # observation bound (backlogs are clipped to it)


class MECEnv(gym.Env):
    """One task per step; an episode is ``config.tasks`` tasks.  ``info`` holds the task's delays."""

    metadata = {"render_modes": []}

    def __init__(self, config: str | dict | MECConfig = "paper", **overrides):
        self.cfg = load_config(config, **overrides)
        cfg = self.cfg
        self.net = Network(cfg, seed=0)
        self.M, self.N = self.net.M, self.net.N
        self.P = self.N + 1
        self.contention = cfg.mode == "contention"
        self._cref = max(sum(self.net.cyc) / self.M, 1.0)
        self._static = np.concatenate([
            np.asarray(self.net.cyc) / self._cref,
            np.log1p(np.asarray(self.net.inb) / 1e6),
        ]).astype(np.float32)
        self.obs_dim = 3 * self.M + self.N + 2 + (2 * self.N + 1 if self.contention else 0)
        self.observation_space = spaces.Box(-HIGH, HIGH, (self.obs_dim,), np.float32)
        self.action_space = spaces.MultiDiscrete([self.P] * self.M)
        self.t = 0

    # -- the pieces a policy reads -------------------------------------------------------------

    def observe(self) -> np.ndarray:
        net, cfg, t = self.net, self.cfg, min(self.t, self.net.T - 1)
        dev = int(net.device[t])
        parts = [self._static, net.tau[t] / cfg.deadline_s[1], net.R[t] / cfg.rate_range_Bps[1],
                 [net.energy_left[dev] / max(cfg.energy_budget_j, 1e-9), (net.T - self.t) / net.T]]
        if self.contention:
            now = float(net.arrival[t])
            chans = [net.chan_free[net.channel(dev, n, True)] for n in range(net.N)]  # this device's uplinks
            parts += [[f - now for f in net.es_free], [f - now for f in chans],
                      [net.local_free[dev] - now]]
        o = np.concatenate([np.asarray(p, dtype=np.float32).ravel() for p in parts])
        return np.clip(np.maximum(o, -1.0), -HIGH, HIGH).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        s = int(self.np_random.integers(0, 2**31 - 1))
        self.net = Network(self.cfg, seed=s)
        self.t = 0
        return self.observe(), {}

    def run_task(self, places) -> dict:
        """Place the current task's blocks at ``places`` and account for it; returns the task's figures."""
        net, cfg = self.net, self.cfg
        tr = net.task(self.t)
        pen = misses = 0.0
        tau = net.tau[self.t]
        for m in range(self.M):
            L = tr.place(m, int(places[m]))
            p = penalty(L, tau[m])
            pen += p
            misses += p > 0
        over = tr.finish()
        self.t += 1
        delay = sum(tr.delays)
        reward = -(delay + cfg.beta * pen + cfg.energy_price * over)
        return {"reward": reward, "delay_s": delay, "edge_delay_s": tr.edge, "local_delay_s": tr.local,
                "penalty_s": pen, "misses": int(misses), "energy_j": tr.energy, "overdraft_j": over}

    def step(self, action):
        info = self.run_task(np.asarray(action).ravel())
        done = self.t >= self.net.T
        return self.observe(), float(info["reward"]), done, False, info


class BlockMECEnv(gym.Env):
    """One block per step: the same network and reward, split over the task's M decisions.

    A block's reward is ``-(L_m + β max(0, L_m - τ_m))``; the last block of a
    task also pays the task's energy overdraft, so the rewards of a task's M
    steps add up to the task's reward in :class:`MECEnv`.
    """

    metadata = {"render_modes": []}

    def __init__(self, config: str | dict | MECConfig = "paper", **overrides):
        self.inner = MECEnv(config, **overrides)
        self.cfg, self.M, self.N, self.P = self.inner.cfg, self.inner.M, self.inner.N, self.inner.P
        self.obs_dim = self.inner.obs_dim + self.M + self.P
        self.observation_space = spaces.Box(-HIGH, HIGH, (self.obs_dim,), np.float32)
        self.action_space = spaces.Discrete(self.P)
        self._task = None

    @property
    def net(self) -> Network:
        return self.inner.net

    def observe(self) -> np.ndarray:
        o = np.zeros(self.obs_dim, np.float32)
        o[: self.inner.obs_dim] = self._base
        m = self._task.m if self._task is not None else 0
        o[self.inner.obs_dim + m] = 1.0
        prev = self._task.prev if self._task is not None else 0
        o[self.inner.obs_dim + self.M + prev] = 1.0
        return o

    def _begin(self) -> None:
        self._base = self.inner.observe()
        self._task = self.inner.net.task(self.inner.t)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.inner.reset(seed=int(self.np_random.integers(0, 2**31 - 1)))
        self._begin()
        return self.observe(), {}

    def step(self, action):
        inner, tr = self.inner, self._task
        m = tr.m
        L = tr.place(m, int(action))
        p = penalty(L, inner.net.tau[inner.t, m])
        r = -(L + self.cfg.beta * p)
        info = {"delay_s": L, "penalty_s": p}
        done = False
        if tr.m == self.M:
            over = tr.finish()
            r -= self.cfg.energy_price * over
            info.update(task_done=True, overdraft_j=over, edge_delay_s=tr.edge, local_delay_s=tr.local,
                        energy_j=tr.energy)
            inner.t += 1
            done = inner.t >= inner.net.T
            if not done:
                self._begin()
        return self.observe(), float(r), done, False, info


def episode_seconds(cfg: MECConfig) -> float:
    """How long an episode lasts in simulated time (``tasks / rate``)."""
    return cfg.tasks / cfg.rate if cfg.rate > 0 else math.inf
