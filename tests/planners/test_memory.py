"""Memory-aware planning: every device's ``memory_mb`` is a constraint (note *resident*, program/memory.py).

- the exact planners stay exact under it: ``layerwise`` (DP, then a MILP when the DP's optimum does not fit)
  equals ``bruteforce`` (every assignment, misfits skipped) on random clusters with random memory limits, and
  the MILP equals a brute force written from its definition on random tables;
- every planner either returns a plan that fits every device or refuses in one line naming the device.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import numpy as np
import pytest

from edgeslice.cluster.model import Cluster, Device, Link
from edgeslice.cost import ClusterCost
from edgeslice.errors import EdgesliceError
from edgeslice.planners import make_plan, planners
from edgeslice.planners._shared.chain import chain_latency_milp
from edgeslice.planners._shared.common import evaluate
from edgeslice.program.lower import lower
from edgeslice.program.memory import MemoryFitError, layer_activation_bytes, misfits, resident


def _brute_milp(T, X, ov, src, sink, w, a, cap):
    L, D = T.shape
    best = None
    for seq in itertools.product(range(D), repeat=L):
        need = [sum(w[l] for l in range(L) if seq[l] == d) + max([a[l] for l in range(L) if seq[l] == d], default=0)
                for d in range(D)]
        if any(n > c for n, c in zip(need, cap)):
            continue
        t = X[0, src, seq[0]] + ov[seq[0]] + T[0, seq[0]]
        for k in range(1, L):
            if seq[k] != seq[k - 1]:
                t += X[k, seq[k - 1], seq[k]] + ov[seq[k]]
            t += T[k, seq[k]]
        t += X[L, seq[-1], sink]
        best = t if best is None else min(best, t)
    return best


@pytest.mark.parametrize("seed", range(30))
def test_memory_milp_equals_brute_force_on_random_tables(seed):
    rng = np.random.default_rng(seed)
    L, D = int(rng.integers(1, 6)), int(rng.integers(1, 4))
    T = rng.uniform(0.1, 2.0, (L, D))
    X = rng.uniform(0.0, 1.0, (L + 1, D, D))
    for k in range(L + 1):
        np.fill_diagonal(X[k], 0.0)
    ov = rng.uniform(0, 0.1, D)
    w, a = rng.integers(0, 10, L), rng.integers(0, 6, L)
    cap = rng.uniform(0, w.sum() + a.max() + 1, D)
    src, sink = int(rng.integers(D)), int(rng.integers(D))
    want = _brute_milp(T, X, ov, src, sink, w, a, cap)
    got = chain_latency_milp(T, X, ov, src, sink, w, a, cap)
    if want is None:
        assert got is None
    else:
        assert got is not None and got[0] == pytest.approx(want, rel=1e-7, abs=1e-9)
        dev = got[1]
        for d in range(D):  # the placement it returns respects the capacities
            on = [l for l in range(L) if dev[l] == d]
            assert sum(w[l] for l in on) + max([a[l] for l in on], default=0) <= cap[d] + 1e-6


def _cluster(rng: random.Random, k: int, n: int, total_bytes: float) -> Cluster:
    devs = tuple(Device(f"m{k}d{i}", gflops=rng.uniform(1, 80), memory_mb=rng.uniform(0.15, 1.1) * total_bytes / 1e6)
                 for i in range(n))
    return Cluster("mem", devs, Link(rng.uniform(2, 400), rng.uniform(0, 5)), source=devs[0].name, sink=devs[0].name)


@pytest.mark.parametrize("exact", ["layerwise", "nfl"])
def test_exact_planners_equal_bruteforce_under_random_memory_limits(seq6, exact):
    g, _ = seq6
    total = g.param_bytes + max(layer_activation_bytes(g, l.name) for l in g.layers)
    rng = random.Random(7)
    refused = solved = 0
    for trial in range(24):
        c = _cluster(rng, trial, 2 + trial % 2, total)
        cost = ClusterCost(c)
        try:
            bf_plan = make_plan("bruteforce", g, c, cost)
        except MemoryFitError:
            bf_plan = None
        try:
            lw_plan = make_plan(exact, g, c, cost)
        except MemoryFitError:
            lw_plan = None
        assert (bf_plan is None) == (lw_plan is None), trial
        if bf_plan is None:
            refused += 1
            continue
        solved += 1
        assert not misfits(lower(lw_plan, g), g, c)
        lw, bf = evaluate(lw_plan, g, c, cost), evaluate(bf_plan, g, c, cost)
        assert lw == pytest.approx(bf, rel=1e-7, abs=1e-12), trial
    assert refused and solved  # the limits both bind and leave room


def test_every_planner_fits_every_device_or_refuses_in_one_line(traced, tiny_agent):
    g, _ = traced("alexnet", (3, 64, 64))
    whole = g.param_bytes / 1e6
    base = Cluster.uniform(4)
    small = replace(base, name="small4", devices=tuple(replace(d, memory_mb=0.45 * whole) for d in base.devices))
    cost = ClusterCost(small)
    for name in planners():
        if name == "bruteforce":
            continue
        try:
            plan = make_plan(name, g, small, cost, **({"iterations": 3} if name == "fl-psomw" else {}),
                             **({"agent": tiny_agent} if name == "mtl-a3c" else {}))
        except MemoryFitError as exc:
            msg = str(exc)
            assert "\n" not in msg and "memory_mb" in msg and any(d.name in msg for d in small.devices), (name, msg)
            continue
        except EdgesliceError as exc:  # fl-bf refuses this size before memory matters (its --limit)
            assert name == "fl-bf" and "--limit" in str(exc)
            continue
        mem = resident(lower(plan, g), g)
        assert all(m.total <= 0.45 * whole * 1e6 for m in mem.values()), name


def test_resident_weights_are_each_devices_share(traced):
    g, _ = traced("alexnet", (3, 64, 64))
    c = Cluster.uniform(4)
    local = resident(lower(make_plan("local", g, c), g), g)
    assert local["d0"].weights == g.param_bytes and local["d1"].total == 0
    plan = make_plan("modnn", g, c)  # every layer split four ways by output rows or neurons
    mem = resident(lower(plan, g), g)
    assert sum(m.weights for m in mem.values()) >= g.param_bytes * 0.999


def _brute_dads(n, edges, local_t, edge_t, up_t, down_out_t, up_in, w, a, cap_local, cap_edge):
    from edgeslice.planners.whole.dads import dads_cost

    best = None
    for bits in itertools.product((0, 1), repeat=n):
        e = frozenset(v for v in range(n) if bits[v])
        loc = [v for v in range(n) if v not in e]
        if sum(w[v] for v in loc) + max([a[v] for v in loc], default=0) > cap_local:
            continue
        if sum(w[v] for v in e) + max([a[v] for v in e], default=0) > cap_edge:
            continue
        c = dads_cost(n, edges, local_t, edge_t, up_t, down_out_t, e, up_in=up_in)
        if c < float("inf"):
            best = c if best is None else min(best, c)
    return best


@pytest.mark.parametrize("seed", range(30))
def test_dads_memory_milp_equals_brute_force_on_random_dags(seed):
    from edgeslice.planners.whole.dads import dads_cut_memory

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 8))
    edges = [(-1, 0)] + [(int(rng.integers(-1, v)), v) for v in range(1, n)]
    edges += [(u, v) for u in range(n) for v in range(u + 2, n) if rng.random() < 0.2]  # skip connections
    local_t, edge_t, up_t = rng.uniform(0, 3, n), rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    w, a = rng.integers(0, 10, n), rng.integers(0, 5, n)
    cap_local, cap_edge = rng.uniform(0, w.sum() + 5), rng.uniform(0, w.sum() + 5)
    want = _brute_dads(n, edges, local_t, edge_t, up_t, 0.3, 0.5, w, a, cap_local, cap_edge)
    got = dads_cut_memory(n, edges, local_t, edge_t, up_t, 0.3, up_in=0.5, w=w, a=a, cap_local=cap_local, cap_edge=cap_edge)
    if want is None:
        assert got is None
    else:
        assert got is not None and got[0] == pytest.approx(want, rel=1e-7, abs=1e-9)


def test_neurosurgeon_takes_the_best_split_that_fits(traced):
    """With room on the server for the tail only, Neurosurgeon keeps the split that fits instead of refusing."""
    g, _ = traced("alexnet", (3, 64, 64))
    base = Cluster.uniform(2)
    fast = replace(base.devices[1], gflops=500.0)
    c = replace(base, name="ns-mem", devices=(base.devices[0], fast))
    cost = ClusterCost(c)
    free = make_plan("neurosurgeon", g, c, cost)
    need = resident(lower(free, g), g)
    assert need["d1"].weights > 0  # unconstrained, the server takes layers
    tight = replace(c, devices=(c.devices[0], replace(fast, memory_mb=0.5 * need["d1"].total / 1e6)))
    plan = make_plan("neurosurgeon", g, tight, ClusterCost(tight))
    assert not misfits(lower(plan, g), g, tight)
    # and it is the best of the splits that fit (each scored by the simulator, like the planner)
    L = len(g.layers)
    names = [l.name for l in g.layers]
    from edgeslice.planners._shared.common import make, whole_segments

    ok = []
    for k in range(L + 1):
        p = make(g, tight, whole_segments(g, ["d0"] * k + ["d1"] * (L - k)), "neurosurgeon")
        if not misfits(lower(p, g), g, tight):
            ok.append(evaluate(p, g, tight, ClusterCost(tight)))
    assert evaluate(plan, g, tight, ClusterCost(tight)) == pytest.approx(min(ok), rel=1e-12)
    assert len(names) == L


def test_the_source_holds_the_model_input(traced):
    g, _ = traced("alexnet", (3, 64, 64))
    base = Cluster.uniform(2)
    c = replace(base, devices=(base.devices[0], replace(base.devices[1], gflops=500.0)))
    mem = resident(lower(make_plan("edge", g, c), g), g)  # everything runs on d1; d0 only has the input
    assert mem["d0"].weights == 0 and mem["d0"].activations == 3 * 64 * 64 * 4
