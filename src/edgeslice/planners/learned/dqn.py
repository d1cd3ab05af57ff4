"""The paper's "distributed DQN" baseline: several actors feeding one replay memory, one learner.

Ours (a standard double DQN; stable-baselines3 is not in the package
registry here): ``actors`` copies of :class:`~.env.BlockMECEnv` (seeded like
A3C's workers) step in lockstep with one Q-network, ε-greedy (ε decayed
linearly 1 → ``eps_end`` over the first ``explore`` share of training); every
transition goes to one replay memory; after each lockstep the learner takes
one minibatch gradient step on the Huber loss of the double-DQN target
``r + γ Q_target(s', argmax_a Q(s', a))``, and copies its weights into the
target network every ``target_every`` updates.  One block per decision, so
its agent places a task the way single-head A3C does.  Deterministic under a
seed.

>>> q, curve = train_dqn(DQNOptions(episodes=2, actors=2, seed=1), "paper", tasks=20)
>>> len(curve), sorted(curve[0])[:3]
(2, ['delay_s', 'elapsed_s', 'episode'])
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch import nn

from edgeslice.errors import OptionError
from edgeslice.planners.learned.config import MECConfig, load_config
from edgeslice.planners.learned.env import BlockMECEnv


class DQNOptions(BaseModel):
    """DQN's options (ours; the paper gives none for its DQN baseline)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    episodes: int = Field(60, ge=1)
    actors: int = Field(8, ge=1, le=64)
    lr: float = Field(1e-3, gt=0)
    gamma: float = Field(0.95, ge=0, le=1)
    batch: int = Field(64, ge=1)
    replay: int = Field(50_000, ge=1)
    target_every: int = Field(250, ge=1)
    explore: float = Field(0.5, gt=0, le=1)
    eps_end: float = Field(0.02, ge=0, le=1)
    hidden: int = Field(128, ge=4)
    reward_scale: float = Field(1.0, gt=0)
    seed: int = 0


def dqn_options(**kw) -> DQNOptions:
    """:class:`DQNOptions` from keywords, refusing an unknown or bad one in one line."""
    try:
        return DQNOptions(**kw)
    except ValidationError as e:
        err = e.errors()[0]
        raise OptionError(f"train dqn: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None


class QNet(nn.Module):
    """``obs → Q(obs, ·)`` over the N + 1 places; ``forward`` returns ``(q[:, None, :], q.max)`` like ActorCritic."""

    def __init__(self, obs_dim: int, places: int, *, hidden: int = 128):
        super().__init__()
        self.dims = dict(obs_dim=obs_dim, places=places, hidden=hidden, heads=1, kind="q")
        self.body = nn.Sequential(nn.Linear(obs_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                  nn.Linear(hidden, places))

    def q(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.body(x)
        return q[:, None, :], q.max(-1).values


def train_dqn(opts: DQNOptions, config: str | dict | MECConfig = "paper", *, progress: Callable | None = None,
              checkpoint: Callable | None = None, **overrides) -> tuple[QNet, list[dict]]:
    """Train a DQN agent; returns ``(Q-network, learning curve)`` like :func:`~.a3c.train`."""
    cfg = load_config(config, **overrides)
    torch.manual_seed(opts.seed)
    rng = np.random.default_rng(opts.seed)
    envs = [BlockMECEnv(cfg) for _ in range(opts.actors)]
    seeds = [opts.seed * 100 + w for w in range(opts.actors)]
    obs = np.stack([e.reset(seed=s * 1000)[0] for e, s in zip(envs, seeds)])
    eps_no = [0] * opts.actors
    sums = [[0.0, 0.0, 0] for _ in envs]  # reward, delay, tasks
    dim, P = envs[0].obs_dim, envs[0].P
    q = QNet(dim, P, hidden=opts.hidden)
    target = QNet(dim, P, hidden=opts.hidden)
    target.load_state_dict(q.state_dict())
    optim = torch.optim.Adam(q.parameters(), lr=opts.lr)
    cap = opts.replay
    mem_o = np.zeros((cap, dim), np.float32)
    mem_o2 = np.zeros((cap, dim), np.float32)
    mem_a = np.zeros(cap, np.int64)
    mem_r = np.zeros(cap, np.float32)
    mem_d = np.zeros(cap, np.float32)
    size = head = 0
    total = opts.episodes * cfg.tasks * envs[0].M / opts.actors  # lockstep steps, about
    step = updates = 0
    curve: list[dict] = []
    next_ckpt = max(opts.episodes // 10, 1)
    t0 = time.perf_counter()
    while len(curve) < opts.episodes:
        eps = max(opts.eps_end, 1.0 - step / (opts.explore * total))
        with torch.no_grad():
            greedy = q.q(torch.from_numpy(obs)).argmax(-1).numpy()
        explore = rng.random(opts.actors) < eps
        acts = np.where(explore, rng.integers(0, P, opts.actors), greedy)
        nxt = np.empty_like(obs)
        for i, env in enumerate(envs):
            o2, r, term, _, info = env.step(int(acts[i]))
            mem_o[head], mem_a[head], mem_r[head], mem_o2[head], mem_d[head] = obs[i], acts[i], r / opts.reward_scale, o2, float(term)
            head, size = (head + 1) % cap, min(size + 1, cap)
            s = sums[i]
            s[0] += r
            s[1] += info["delay_s"]
            s[2] += bool(info.get("task_done"))
            if term:
                entry = {"episode": len(curve) + 1, "reward": s[0] / max(s[2], 1), "delay_s": s[1] / max(s[2], 1),
                         "worker": seeds[i], "elapsed_s": time.perf_counter() - t0}
                curve.append(entry)
                if progress is not None:
                    progress(entry)
                eps_no[i] += 1
                o2, _ = env.reset(seed=seeds[i] * 1000 + eps_no[i])
                sums[i] = [0.0, 0.0, 0]
            nxt[i] = o2
        obs = nxt
        step += 1
        if size >= opts.batch:
            idx = rng.integers(0, size, opts.batch)
            o, a = torch.from_numpy(mem_o[idx]), torch.from_numpy(mem_a[idx])
            r, o2, d = torch.from_numpy(mem_r[idx]), torch.from_numpy(mem_o2[idx]), torch.from_numpy(mem_d[idx])
            with torch.no_grad():
                a2 = q.q(o2).argmax(-1, keepdim=True)
                y = r + opts.gamma * (1.0 - d) * target.q(o2).gather(-1, a2).squeeze(-1)
            loss = nn.functional.smooth_l1_loss(q.q(o).gather(-1, a[:, None]).squeeze(-1), y)
            optim.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(q.parameters(), 10.0)
            optim.step()
            updates += 1
            if updates % opts.target_every == 0:
                target.load_state_dict(q.state_dict())
        if checkpoint is not None and len(curve) >= next_ckpt:
            checkpoint(q, len(curve))
            next_ckpt += max(opts.episodes // 10, 1)
    q.eval()
    return q, curve[: opts.episodes]
