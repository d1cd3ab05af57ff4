"""The contention-mode references: the window optimum is exact (brute force), the pure pricing agrees with the
environment's, and no other policy beats the window optimum on its window."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgeslice.planners.learned.config import load_config
from edgeslice.planners.learned.env import MECEnv
from edgeslice.planners.learned.heuristics import queue_dp
from edgeslice.planners.learned.network import advance
from edgeslice.planners.learned.reference import (
    lookahead_policy,
    window_optimum,
    window_policy,
)


def _random_env(rng, seed):
    n = int(rng.integers(1, 4))
    cfg = load_config("contention", model=str(rng.choice(["alexnet", "resnet32", "nin"])),
                      blocks=int(rng.integers(2, 4)), edge_servers=n, es_hz=list(rng.uniform(2e9, 20e9, n)),
                      es_gain_db=list(rng.uniform(-126, -116, n)), local_hz=float(rng.uniform(0.3e9, 2e9)),
                      iot_devices=int(rng.integers(1, 4)), channels=str(rng.choice(["es", "link"])),
                      rate=float(rng.uniform(5, 200)), deadline_s=(0.01, float(rng.uniform(0.02, 0.5))),
                      energy_budget_j=float(rng.uniform(0.0, 2.0)), beta=float(rng.uniform(0, 3)), tasks=8)
    env = MECEnv(cfg)
    env.reset(seed=seed)
    for _ in range(int(rng.integers(0, 4))):  # queues and budgets already in use
        env.run_task(rng.integers(0, env.P, env.M))
    return env


def _brute_force(env, window):
    net, t0, saved = env.net, env.t, env.net.state()
    tasks = min(window, net.T - t0)
    best = float("inf")
    for combo in itertools.product(itertools.product(range(env.P), repeat=env.M), repeat=tasks):
        cost = -sum(env.run_task(p)["reward"] for p in combo)
        env.t = t0
        net.restore(saved)
        best = min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(30))
def test_window_optimum_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    env = _random_env(rng, seed)
    window = 3 if env.P ** (3 * env.M) <= 1000 else 2
    before = env.net.state()
    cost, places = window_optimum(env.net, env.t, window)
    assert env.net.state() == before  # a search, not a placement
    assert cost == pytest.approx(_brute_force(env, window), rel=1e-12, abs=1e-12)
    # the places it returns cost what it says, priced by the environment itself
    t0 = env.t
    assert -sum(env.run_task(p)["reward"] for p in places) == pytest.approx(cost, rel=1e-12, abs=1e-12)
    assert env.t == t0 + len(places)


@pytest.mark.parametrize("seed", range(10))
def test_advance_is_the_environments_pricing(seed):
    rng = np.random.default_rng(100 + seed)
    env = _random_env(rng, seed)
    net = env.net
    for t in range(env.t, net.T):
        dev = int(net.device[t])
        chan, es, loc = tuple(net.chan_free), tuple(net.es_free), net.local_free[dev]
        tr, q, ready, joules = net.task(t), 0, float(net.arrival[t]), 0.0
        for m in range(env.M):
            p = int(rng.integers(0, env.P))
            ready, chan, es, loc, j = advance(net, t, m, q, p, ready, chan, es, loc)
            joules += j
            tr.place(m, p)
            q = p
            assert (ready, chan, es, loc) == (tr.ready, tuple(net.chan_free), tuple(net.es_free), net.local_free[dev])
        assert joules == pytest.approx(tr.energy, rel=1e-12, abs=1e-15)
        tr.finish()
        env.t += 1


@pytest.mark.parametrize("seed", range(8))
def test_no_policy_beats_the_window_optimum_on_its_window(seed):
    rng = np.random.default_rng(200 + seed)
    env = _random_env(rng, seed)
    window = 2
    cost, _ = window_optimum(env.net, env.t, window)
    for policy in (queue_dp, lookahead_policy(horizon=2, candidates=3), window_policy(1)):
        t0, saved = env.t, env.net.state()
        other = 0.0
        for _ in range(min(window, env.net.T - t0)):
            other -= env.run_task(policy(env))["reward"]
        env.t = t0
        env.net.restore(saved)
        assert cost <= other + 1e-12
