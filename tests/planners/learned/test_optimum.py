"""The paper-mode optimum is exact: per-task DP and Pareto front vs brute force, episode MILP vs brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgeslice.planners.learned.config import load_config
from edgeslice.planners.learned.env import MECEnv
from edgeslice.planners.learned.network import Network
from edgeslice.planners.learned.optimum import (
    _edge_costs,
    episode_optimum,
    pareto_front,
    path_cost,
    task_dp,
)


def _random_cfg(rng, **kw):
    n = int(rng.integers(1, 4))
    return load_config("paper", model=str(rng.choice(["alexnet", "resnet32", "nin"])), blocks=int(rng.integers(2, 5)),
                       edge_servers=n, es_hz=list(rng.uniform(2e9, 20e9, n)), es_gain_db=list(rng.uniform(-126, -116, n)),
                       local_hz=float(rng.uniform(0.3e9, 2e9)), deadline_s=(0.01, float(rng.uniform(0.02, 0.5))),
                       beta=float(rng.uniform(0, 3)), **kw)


def _all_paths(net):
    return list(itertools.product(range(net.N + 1), repeat=net.M))


@pytest.mark.parametrize("seed", range(40))
def test_task_dp_and_front_equal_brute_force(seed):
    rng = np.random.default_rng(seed)
    net = Network(_random_cfg(rng, tasks=3), seed=seed)
    lam = float(rng.uniform(0, 5))
    for t in range(net.T):
        C, E = _edge_costs(net, t)
        scored = [(path_cost(C, E, p), p) for p in _all_paths(net)]
        best = min(c + lam * e for (c, e), _ in scored)
        c, e, places = task_dp(net, t, lam)
        assert c + lam * e == pytest.approx(best, rel=1e-12, abs=1e-12)
        front = pareto_front(net, t)
        # every placement is dominated by (or equal to) a front point, and no front point dominates another
        for (c, e), _ in scored:
            assert any(fc <= c + 1e-12 and fe <= e + 1e-12 for fc, fe, _ in front)
        for i, (c1, e1, _) in enumerate(front):
            assert not any(c2 <= c1 and e2 <= e1 for j, (c2, e2, _) in enumerate(front) if j != i)


def _replay(cfg, seed, places):
    env = MECEnv(cfg)
    env.reset()
    env.net = Network(env.cfg, seed=seed)
    return -sum(env.run_task(p)["reward"] for p in places)


@pytest.mark.parametrize("seed", range(25))
def test_episode_optimum_equals_brute_force_with_a_binding_budget(seed):
    rng = np.random.default_rng(100 + seed)
    devices = int(rng.integers(1, 3))
    cfg = _random_cfg(rng, tasks=3, iot_devices=devices, energy_price=float(rng.uniform(0.5, 20)))
    net = Network(cfg, seed=seed)
    # a budget that binds: a fraction of what the cheapest-delay placements draw
    use = sum(task_dp(net, t)[1] for t in range(net.T))
    cfg = load_config(cfg, energy_budget_j=float(use * rng.uniform(0.2, 0.9) / devices))
    net = Network(cfg, seed=seed)
    opt = episode_optimum(net)
    # every combination of every task's placements, scored by the episode objective
    ce = []
    for t in range(net.T):
        C, E = _edge_costs(net, t)
        ce.append(np.array([path_cost(C, E, p) for p in _all_paths(net)]))
    grids = np.meshgrid(*[np.arange(len(x)) for x in ce], indexing="ij")
    cost = sum(ce[t][grids[t], 0] for t in range(net.T))
    over = 0.0
    for d in range(devices):
        e = sum(ce[t][grids[t], 1] for t in range(net.T) if net.device[t] == d)
        over = over + np.maximum(np.asarray(e) - cfg.energy_budget_j, 0.0)
    best = float(np.min(cost + cfg.energy_price * over))
    assert opt.objective == pytest.approx(best, rel=1e-9)
    assert _replay(cfg, seed, opt.places) == pytest.approx(opt.objective, rel=1e-9)


def test_optimum_beats_every_fixed_placement_at_the_defaults():
    cfg = load_config("paper")
    net = Network(cfg, seed=7)
    opt = episode_optimum(net)
    assert opt.method == "milp"  # the default budget binds
    for p in range(net.N + 1):
        assert opt.objective <= _replay(cfg, 7, [np.full(net.M, p)] * net.T) + 1e-9
