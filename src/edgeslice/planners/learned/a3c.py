"""MTL-A3C (Li et al., TMC 2024) and single-head A3C: k workers, a global network, k-step returns, RMSProp.

``algo="mtl-a3c"`` places a whole task per step on :class:`~.env.MECEnv` with
M actor heads (the loss is the mean of the M heads' actor losses — advantage ×
log-prob plus an entropy bonus — plus the critic's MSE, plus the soft-sharing
term); ``algo="a3c"`` places one block per step on
:class:`~.env.BlockMECEnv` with one head.

Workers and parallelism.  ``workers`` A3C workers each own an environment
(seeded ``seed · 1000 + w``, new seed every episode) and roll out ``k`` steps
with the global network, then each applies its own gradient to the global
network in turn (its rollout was taken with parameters up to ``workers - 1``
updates old: A3C's staleness).  With ``processes=1`` (the default) the workers
interleave in one process in a fixed order, so the agent is **deterministic
under a seed**; ``processes=P`` splits them over P OS processes that update
one network in shared memory without locks (Hogwild, :mod:`.hogwild`): faster
on a machine with cores to spare, not deterministic.

Variants.  ``variant="on-policy"`` is plain A3C.  ``variant="replay"`` is the
paper's Algorithm 1: actions ε-greedy (per head, ε decayed linearly 1 → 0.01
over the first half of training), every (state, action, k-step return) kept in
a replay memory, and each update made on a minibatch of ``batch`` samples
drawn from it.

>>> agent, curve = train(TrainOptions(episodes=4, workers=2, seed=1), "paper", tasks=40)
>>> len(curve) >= 4 and all(k in curve[0] for k in ("episode", "reward", "delay_s"))
True
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgeslice.errors import OptionError
from edgeslice.planners.learned.config import MECConfig, load_config
from edgeslice.planners.learned.env import BlockMECEnv, MECEnv
from edgeslice.planners.learned.nets import ActorCritic


class TrainOptions(BaseModel):
    """Training options: the paper's values where it gives them (γ 0.95, batch 32-64, 8 workers) except lr.

    The paper's lr 0.01 diverges here (RMSProp, rewards of −0.7 to −10 s per
    task: 2.31 s/task after 40 episodes against 0.84 at lr 3e-4), so the
    default is ``lr=3e-4`` with rewards divided by ``reward_scale=10``.  Two
    choices of ours the paper does not specify, both on by default because
    without either the M heads settle on one fixed placement whatever the
    state (0.84-0.85 s/task against the optimum's 0.76): ``obs_norm``
    (standardise the state by its running statistics) and ``sampling="coupled"``
    (the heads of a task share one Gumbel draw, so its blocks explore
    together; see :func:`sample`).  ``normalize`` standardises the advantages
    of each update.  All measured in docs/mtl-a3c.md.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    algo: Literal["mtl-a3c", "a3c"] = "mtl-a3c"
    variant: Literal["on-policy", "replay"] = "on-policy"
    episodes: int = Field(1000, ge=1)
    workers: int = Field(8, ge=1, le=64)
    processes: int = Field(1, ge=1, le=64)
    k: int = Field(20, ge=1)
    lr: float = Field(3e-4, gt=0)
    gamma: float = Field(0.95, ge=0, le=1)
    entropy: float = Field(0.01, ge=0)
    value_coef: float = Field(0.5, ge=0)
    sharing: Literal["hard", "soft"] = "soft"
    soft_lambda: float = Field(1e-3, ge=0)
    hidden: int = Field(128, ge=4)
    batch: int = Field(32, ge=1)
    replay: int = Field(20_000, ge=1)
    eps_end: float = Field(0.01, ge=0, le=1)
    grad_clip: float = Field(5.0, gt=0)
    reward_scale: float = Field(10.0, gt=0)
    sampling: Literal["independent", "coupled"] = "coupled"
    normalize: bool = False
    obs_norm: bool = True
    lr_decay: bool = True
    seed: int = 0


def options(**kw) -> TrainOptions:
    """:class:`TrainOptions` from keywords, refusing an unknown or bad one in one line."""
    try:
        return TrainOptions(**kw)
    except ValidationError as e:
        err = e.errors()[0]
        raise OptionError(f"train: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None


def make_env(algo: str, cfg: MECConfig):
    return MECEnv(cfg) if algo == "mtl-a3c" else BlockMECEnv(cfg)


def build_net(opts: TrainOptions, env) -> ActorCritic:
    heads = env.M if opts.algo == "mtl-a3c" else 1
    return ActorCritic(env.obs_dim, heads, env.P, hidden=opts.hidden, sharing=opts.sharing,
                       normalize=opts.obs_norm)


class _Worker:
    """One A3C worker: its environment, its current observation and its running episode sums."""

    def __init__(self, algo: str, cfg: MECConfig, seed: int):
        self.env = make_env(algo, cfg)
        self.seed, self.ep = seed, 0
        self.obs, _ = self.env.reset(seed=seed * 1000)
        self.reward = self.delay = 0.0
        self.tasks = 0


def make_optimizer(net: ActorCritic, lr: float, states: list[dict] | None = None) -> torch.optim.RMSprop:
    """The trainer's RMSProp over ``net``; ``states`` (one dict per parameter, in order) is its state to use."""
    optim = torch.optim.RMSprop(net.parameters(), lr=lr, alpha=0.99, eps=1e-5)
    for p, st in zip(net.parameters(), states or ()):
        optim.state[p] = st
    return optim


def _loss(net, opts, obs, acts, returns):
    logits, v = net(obs)
    logp = torch.log_softmax(logits, -1)
    chosen = logp.gather(-1, acts.unsqueeze(-1)).squeeze(-1)  # (B, heads)
    adv = (returns - v).detach()
    if opts.normalize and adv.numel() > 1:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    actor = -(chosen * adv[:, None]).mean(0)  # one loss per head
    ent = -(logp.exp() * logp).sum(-1).mean(0)
    loss = (actor - opts.entropy * ent).mean() + opts.value_coef * ((returns - v) ** 2).mean()
    if opts.soft_lambda and net.dims["sharing"] == "soft":
        loss = loss + opts.soft_lambda * net.sharing_penalty()
    return loss


def sample(logits: torch.Tensor, gen: torch.Generator, *, coupled: bool = False) -> torch.Tensor:
    """One action per head from ``logits`` (batch, heads, places), by the Gumbel-max trick.

    ``coupled``: the heads of one sample share one Gumbel draw per place, so
    each head's action still follows its own softmax exactly, but heads whose
    distributions agree pick the same place — the task's blocks explore
    *together* ("all on ES n"), which independent heads almost never try.
    """
    B, H, P = logits.shape
    u = torch.rand((B, 1 if coupled else H, P), generator=gen).clamp_(1e-12, 1.0 - 1e-7)
    return (logits - torch.log(-torch.log(u))).argmax(-1)


def train(opts: TrainOptions, config: str | dict | MECConfig = "paper", *, progress: Callable | None = None,
          checkpoint: Callable | None = None, **overrides) -> tuple[ActorCritic, list[dict]]:
    """Train an agent; returns ``(network, learning curve)`` (one entry per finished episode, in order).

    ``progress(entry)`` is called after each episode; ``checkpoint(net, episodes)``
    every tenth of the training.
    """
    cfg = load_config(config, **overrides)
    torch.manual_seed(opts.seed)
    gen = torch.Generator().manual_seed(opts.seed)
    rng = np.random.default_rng(opts.seed)
    workers = [_Worker(opts.algo, cfg, opts.seed * 100 + w) for w in range(opts.workers)]
    net = build_net(opts, workers[0].env)
    if opts.processes > 1:
        from edgeslice.planners.learned.hogwild import train_processes

        return net, train_processes(opts, cfg, net, [w.seed for w in workers], progress=progress,
                                    checkpoint=checkpoint)
    optim = make_optimizer(net, opts.lr)
    return net, _loop(opts, net, optim, workers, gen, rng, progress, checkpoint, opts.episodes)


def _loop(opts, net, optim, workers, gen, rng, progress, checkpoint, episodes, counter=None, steps=None) -> list[dict]:
    curve: list[dict] = []
    memory: deque = deque(maxlen=opts.replay)
    # the lr and ε schedules run on worker steps (every worker's env.step counts), shared between processes
    steps_per_ep = workers[0].env.net.T * (1 if opts.algo == "mtl-a3c" else workers[0].env.M)
    total_steps = max(episodes * steps_per_ep, 1)
    done_steps = 0
    next_ckpt = max(episodes // 10, 1)
    t0 = time.perf_counter()
    while (counter.value if counter is not None else len(curve)) < episodes:
        W = len(workers)
        obs_buf = np.zeros((opts.k + 1, W, workers[0].env.obs_dim), np.float32)
        act_buf = np.zeros((opts.k, W, net.dims["heads"]), np.int64)
        rew_buf = np.zeros((opts.k, W), np.float32)
        done_buf = np.zeros((opts.k, W), np.float32)
        if steps is not None:
            done_steps = steps.value
        eps = max(opts.eps_end, 1.0 - done_steps / (0.5 * total_steps)) if opts.variant == "replay" else 0.0
        if opts.lr_decay:  # linearly to zero over the training, as Mnih et al.'s A3C
            for g in optim.param_groups:
                g["lr"] = opts.lr * max(1.0 - done_steps / total_steps, 0.0)
        for s in range(opts.k):
            obs = np.stack([w.obs for w in workers])
            obs_buf[s] = obs
            net.observe(obs)
            with torch.no_grad():
                logits, _ = net(torch.from_numpy(obs))
            a = sample(logits, gen, coupled=opts.sampling == "coupled").numpy()
            if eps > 0:
                flip = rng.random(a.shape) < eps
                a = np.where(flip, rng.integers(0, logits.shape[-1], a.shape), a)
            act_buf[s] = a
            for i, w in enumerate(workers):
                action = a[i] if opts.algo == "mtl-a3c" else int(a[i, 0])
                o, r, term, trunc, info = w.env.step(action)
                rew_buf[s, i] = r / opts.reward_scale
                w.reward += r
                if opts.algo == "mtl-a3c" or info.get("task_done"):
                    w.tasks += 1
                w.delay += info["delay_s"]
                if term or trunc:
                    done_buf[s, i] = 1.0
                    if counter is not None:
                        with counter.get_lock():
                            counter.value += 1
                            number = counter.value
                    else:
                        number = len(curve) + 1
                    entry = {"episode": number,
                             "reward": w.reward / max(w.tasks, 1), "delay_s": w.delay / max(w.tasks, 1),
                             "worker": w.seed, "elapsed_s": time.perf_counter() - t0}
                    curve.append(entry)
                    if progress is not None:
                        progress(entry)
                    w.ep += 1
                    o, _ = w.env.reset(seed=w.seed * 1000 + w.ep)
                    w.reward = w.delay = 0.0
                    w.tasks = 0
                w.obs = o
            if steps is not None:
                with steps.get_lock():
                    steps.value += W
            else:
                done_steps += W
        obs_buf[opts.k] = np.stack([w.obs for w in workers])
        with torch.no_grad():
            _, boot = net(torch.from_numpy(obs_buf[opts.k]))
        ret = np.zeros((opts.k, W), np.float32)
        R = boot.numpy()
        for s in range(opts.k - 1, -1, -1):
            R = rew_buf[s] + opts.gamma * R * (1.0 - done_buf[s])
            ret[s] = R
        for i in range(W):
            if opts.variant == "replay":
                for s in range(opts.k):
                    memory.append((obs_buf[s, i], act_buf[s, i], ret[s, i]))
                idx = rng.integers(0, len(memory), min(opts.batch, len(memory)))
                o = torch.from_numpy(np.stack([memory[j][0] for j in idx]))
                a = torch.from_numpy(np.stack([memory[j][1] for j in idx]))
                r = torch.from_numpy(np.array([memory[j][2] for j in idx], np.float32))
            else:
                o, a, r = (torch.from_numpy(obs_buf[: opts.k, i]), torch.from_numpy(act_buf[:, i]),
                           torch.from_numpy(ret[:, i]))
            optim.zero_grad()
            _loss(net, opts, o, a, r).backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), opts.grad_clip)
            optim.step()
        if checkpoint is not None and len(curve) >= next_ckpt:
            checkpoint(net, len(curve))
            next_ckpt += max(episodes // 10, 1)
    return curve[:episodes] if counter is None else curve


def act(net: ActorCritic, env) -> np.ndarray:
    """The agent's placement of the current task (the most probable place per block)."""
    with torch.no_grad():
        if isinstance(env, MECEnv) and net.dims["heads"] == env.M:
            logits, _ = net(torch.from_numpy(env.observe())[None])
            return logits[0].argmax(-1).numpy().astype(np.int64)
    raise OptionError("act: a multi-head agent places whole tasks; use block_policy for a single-head one")


def task_policy(net: ActorCritic) -> Callable:
    """``policy(env) -> places`` for :func:`~.evaluate.evaluate`, for either kind of agent.

    A single-head agent (``a3c``) places the task's blocks one after another
    on a :class:`~.env.BlockMECEnv` view of the same state.
    """
    if net.dims["heads"] > 1:
        return lambda env: act(net, env)

    def blockwise(env: MECEnv) -> np.ndarray:
        base = env.observe()
        tr = _Probe(env)
        out = np.zeros(env.M, np.int64)
        dim = env.obs_dim
        for m in range(env.M):
            o = np.zeros(dim + env.M + env.P, np.float32)
            o[:dim] = base
            o[dim + m] = 1.0
            o[dim + env.M + tr.prev] = 1.0
            with torch.no_grad():
                logits, _ = net(torch.from_numpy(o)[None])
            out[m] = int(logits[0, 0].argmax())
            tr.prev = int(out[m])
        return out

    return blockwise


class _Probe:
    __slots__ = ("prev",)

    def __init__(self, env):
        self.prev = 0
