"""``edgeslice bench mec``: the comparisons of Li et al. (TMC 2024) on our MEC environment.

At the defaults (paper mode: N = 4 ESs, M = 6 blocks of VGG-16, rate 60) the
three learned agents are trained (MTL-A3C, single-head A3C, DQN) and every
method is evaluated on the same ``eval_episodes`` seeded episodes, which
training never sees: ``total_delay_s``, ``edge_delay_s``, ``local_delay_s``,
``miss_rate``, ``energy_j`` and ``reward`` per task (see
:mod:`~edgeslice.planners.learned.evaluate`), ``gap_to_optimum_pct`` (total
delay against the exact optimum's) and, for the learned agents,
``episodes_to_converge`` (the first episode from which the smoothed training
reward stays within 1% of its final value) and ``train_s``.

Sweeps (one parameter at a time from the defaults): ``edge_servers`` N,
``blocks`` M, ``deadline_s`` τ (every block's deadline τ) — each point with
freshly trained agents on a smaller budget — and ``rate``, which in the paper
mode changes nothing (no queueing: the instance is the same), so the default
agents are evaluated there.  ``contention`` compares every method, agents
trained in that mode, our ``queue-dp`` (online: it sees the queues as they
stand) and two offline references that also see the coming tasks
(:mod:`~edgeslice.planners.learned.reference`): ``window-opt``, the exact
best placement of every window of ``WINDOW`` tasks, receding, and our
``lookahead`` heuristic.  There is no exact episode optimum in that mode;
gaps are to ``window-opt``.

``quick=True`` runs a small version (short episodes, few points) in well under
three minutes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from edgeslice.planners.learned.agents import (
    agent_policy,
    episodes_to_converge,
    train_agent,
)
from edgeslice.planners.learned.config import load_config
from edgeslice.planners.learned.evaluate import evaluate, optimum_episode
from edgeslice.planners.learned.heuristics import POLICIES, rpdi_factory
from edgeslice.planners.learned.reference import lookahead_policy, window_policy

LEARNED = ("mtl-a3c", "a3c", "dqn")
HEURISTICS = ("greedy", "apdi", "rpdi", "local", "edge")
METHODS = (*LEARNED, *HEURISTICS, "queue-dp", "lookahead", "window-opt", "optimum")
WINDOW = 3  # tasks per exact window in contention mode: 3 s per 100 tasks at the defaults here, 4 takes 30 s

# Training budgets (episodes) per agent; the learning curves flatten well before them (see docs/mtl-a3c.md).
FULL = dict(tasks=600, eval_episodes=5, train={"mtl-a3c": 1000, "a3c": 200, "dqn": 40},
            sweep_train={"mtl-a3c": 1000, "a3c": 60, "dqn": 12},
            sweeps={"edge_servers": [2, 3, 4, 5, 6, 7, 8, 9], "blocks": [3, 6, 10, 15, 20],
                    "deadline_s": [1, 3, 5, 7], "rate": [40, 60, 80, 100]})
QUICK = dict(tasks=100, eval_episodes=2, train={"mtl-a3c": 400, "a3c": 60, "dqn": 16},
             sweep_train={"mtl-a3c": 150, "a3c": 20, "dqn": 6},
             sweeps={"edge_servers": [2, 6], "blocks": [3, 10], "deadline_s": [1, 7], "rate": [40, 100]})
TRAIN_OPTS = {"mtl-a3c": {}, "a3c": {}, "dqn": {}}


def _policy(name: str) -> Callable | None:
    if name == "rpdi":
        return rpdi_factory(0)  # fresh, so every evaluation draws the same places
    return POLICIES.get(name)


def _row(res: dict, ref: float | None) -> dict:
    out = dict(res)
    out["gap_to_optimum_pct"] = None if not ref else round(100.0 * (res["total_delay_s"] - ref) / ref, 3)
    return out


def compare(cfg, *, train: dict, eval_episodes: int, agents: dict | None = None, progress: Callable = print,
            where: str = "") -> tuple[dict, dict, dict]:
    """Every method on ``cfg``: ``(rows by method, learning curves, trained agents)``.

    ``agents`` (name → network) are evaluated as they are instead of being trained.
    """
    rows: dict[str, dict] = {}
    curves: dict[str, list] = {}
    nets = dict(agents or {})
    paper = cfg.mode == "paper"
    if paper:
        t0 = time.perf_counter()
        rows["optimum"] = evaluate(None, cfg, episodes=eval_episodes, plan_episode=optimum_episode)
        rows["optimum"]["solve_s"] = round(time.perf_counter() - t0, 2)
    for name in (*HEURISTICS, "queue-dp"):
        rows[name] = evaluate(_policy(name), cfg, episodes=eval_episodes)
    if not paper:
        for name, policy in (("lookahead", lookahead_policy()), ("window-opt", window_policy(WINDOW))):
            t0 = time.perf_counter()
            rows[name] = {**evaluate(policy, cfg, episodes=eval_episodes), "solve_s": round(time.perf_counter() - t0, 2)}
            progress(f"{where}{name}: {rows[name]['total_delay_s']:.4f} s/task")
    for name in LEARNED:
        extra = {}
        if name not in nets:
            t0 = time.perf_counter()
            net, curve, _ = train_agent(name, cfg, {**TRAIN_OPTS[name], "episodes": train[name]})
            extra = {"train_s": round(time.perf_counter() - t0, 2), "episodes_to_converge": episodes_to_converge(curve),
                     "train_episodes": len(curve)}
            nets[name], curves[name] = net, curve
        rows[name] = {**evaluate(agent_policy(nets[name]), cfg, episodes=eval_episodes), **extra}
        progress(f"{where}{name}: {rows[name]['total_delay_s']:.4f} s/task"
                 + (f" (trained {extra['train_s']:.0f} s)" if extra else ""))
    ref = rows["optimum" if paper else "window-opt"]["total_delay_s"]
    out = {}
    for name in METHODS:
        if name in rows:
            r = _row(rows[name], ref)
            r.setdefault("episodes_to_converge", None)
            out[name] = r
    return out, curves, nets


def bench_mec(*, quick: bool = False, progress: Callable = print) -> dict:
    """The whole comparison (see the module docstring) as one JSON-ready dict."""
    plan = QUICK if quick else FULL
    t_all = time.perf_counter()
    base = load_config("paper", tasks=plan["tasks"])
    progress(f"defaults: paper mode, N={base.edge_servers}, M={base.blocks}, {base.model}, rate {base.rate:g}, "
             f"{plan['tasks']} tasks/episode, {plan['eval_episodes']} evaluation episodes")
    defaults, curves, nets = compare(base, train=plan["train"], eval_episodes=plan["eval_episodes"], progress=progress,
                                     where="defaults ")
    train_s = {k: defaults[k]["train_s"] for k in LEARNED}
    sweeps: dict[str, dict] = {}
    for param, values in plan["sweeps"].items():
        methods: dict[str, list] = {}
        for v in values:
            over = {"deadline_s": (float(v), float(v))} if param == "deadline_s" else {param: v}
            cfg = load_config(base, **over)
            reuse = nets if param == "rate" else None  # paper mode: the rate changes nothing
            rows, _, _ = compare(cfg, train=plan["sweep_train"], eval_episodes=plan["eval_episodes"], agents=reuse,
                                 progress=progress, where=f"{param}={v} ")
            for name, r in rows.items():
                methods.setdefault(name, []).append(r)
        sweeps[param] = {"values": values, "methods": methods}
    ccfg = load_config("contention", tasks=plan["tasks"])
    contention, ccurves, _ = compare(ccfg, train=plan["train"], eval_episodes=plan["eval_episodes"], progress=progress,
                                     where="contention ")
    return {"quick": quick, "config": base.model_dump(mode="json"), "defaults": defaults, "sweeps": sweeps,
            "contention": contention, "train_s": train_s, "curves": {**{k: _slim(c) for k, c in curves.items()},
                                                                    **{f"contention {k}": _slim(c) for k, c in ccurves.items()}},
            "bench_s": round(time.perf_counter() - t_all, 1)}


def _slim(curve: list[dict]) -> list[dict]:
    return [{"episode": c["episode"], "reward": round(c["reward"], 6), "delay_s": round(c["delay_s"], 6)} for c in curve]
