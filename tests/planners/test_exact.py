"""Exact planners: numeric cores against brute force on random tables, planners against the simulator.

- :func:`chain_dp` (latency and throughput) and :func:`dads_cut` equal an
  independent brute force on hundreds of random instances;
- on chain models the DP's latency equals the simulated latency of its plan,
  and ``layerwise`` equals ``bruteforce`` (which simulates every assignment);
- the acceptance comparison on iot-edge with VGG-16: neurosurgeon ≤ min(local,
  edge) and layerwise ≤ neurosurgeon;
- every plan runs in-process and matches the whole model (DAG models included).
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from edgeslice.cluster.load import resolve_cluster
from edgeslice.cluster.model import Cluster, Device, Link
from edgeslice.cost import ClusterCost
from edgeslice.errors import EdgesliceError
from edgeslice.execute.check import check_plan
from edgeslice.planners import make_plan, planners
from edgeslice.planners._shared.chain import chain_dp
from edgeslice.planners._shared.common import evaluate, make, whole_segments
from edgeslice.planners._shared.tables import chain_arrays, is_chain
from edgeslice.planners.whole.dads import dads_arrays, dads_cut

TOL = 1e-9


# ---------------------------------------------------------------------------
# independent brute forces (written from the objective's definition, not the DP)
# ---------------------------------------------------------------------------


def _x(b, a, c, rate, lat, with_latency=True):
    if a == c:
        return 0.0
    return b / rate[a, c] + (lat[a, c] if with_latency else 0.0)


def brute_latency(T, B, rate, lat, ov, src, sink, allowed):
    L, D = T.shape
    best = np.inf
    for seq in itertools.product([d for d in range(D) if allowed[d]], repeat=L):
        t = _x(B[0], src, seq[0], rate, lat)
        for i, d in enumerate(seq):
            if i == 0 or seq[i - 1] != d:
                t += ov[d] + (_x(B[i], seq[i - 1], d, rate, lat) if i else 0.0)
            t += T[i, d]
        t += _x(B[L], seq[-1], sink, rate, lat)
        best = min(best, t)
    return best


def brute_throughput(T, B, rate, ov, src, sink, allowed):
    L, D = T.shape
    lat0 = np.zeros((D, D))
    devs = [d for d in range(D) if allowed[d]]
    best = np.inf
    for r in range(0, min(L - 1, len(devs) - 1) + 1):
        for cuts in itertools.combinations(range(1, L), r):
            edges = [0, *cuts, L]
            for perm in itertools.permutations(devs, r + 1):
                worst = max(_x(B[0], src, perm[0], rate, lat0, False), _x(B[L], perm[-1], sink, rate, lat0, False))
                for s, d in enumerate(perm):
                    a, b = edges[s], edges[s + 1]
                    worst = max(worst, ov[d] + sum(T[a:b, d]))
                    if s:
                        worst = max(worst, _x(B[a], perm[s - 1], d, rate, lat0, False))
                best = min(best, worst)
    return best


def _random_chain(rng: np.random.Generator):
    L, D = int(rng.integers(1, 8)), int(rng.integers(1, 4))
    T = rng.uniform(0, 1, (L, D))
    T[rng.uniform(size=(L, D)) < 0.1] = 0.0
    B = rng.uniform(0, 10, L + 1)
    rate = rng.uniform(1, 30, (D, D))
    lat = rng.uniform(0, 0.3, (D, D))
    np.fill_diagonal(rate, np.inf)
    np.fill_diagonal(lat, 0.0)
    ov = rng.uniform(0, 0.5, D) if rng.uniform() < 0.5 else float(rng.uniform(0, 0.5))
    allowed = np.ones(D, dtype=bool)
    if D > 1 and rng.uniform() < 0.25:
        allowed[int(rng.integers(D))] = False
    return T, B, rate, lat, ov, int(rng.integers(D)), int(rng.integers(D)), allowed


def _seq_latency(T, B, rate, lat, ov, src, sink, seq):
    L = len(seq)
    t = _x(B[0], src, seq[0], rate, lat)
    for i, d in enumerate(seq):
        if i == 0 or seq[i - 1] != d:
            t += ov[d] + (_x(B[i], seq[i - 1], d, rate, lat) if i else 0.0)
        t += T[i, d]
    return t + _x(B[L], seq[-1], sink, rate, lat)


def test_chain_dp_latency_equals_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(250):
        T, B, rate, lat, ov, src, sink, allowed = _random_chain(rng)
        ovd = np.broadcast_to(np.asarray(ov, float), (T.shape[1],))
        v, dev = chain_dp(T, B, rate, lat, ov, src, sink, "latency", allowed=allowed)
        want = brute_latency(T, B, rate, lat, ovd, src, sink, allowed)
        assert v == pytest.approx(want, rel=TOL, abs=TOL)
        assert all(allowed[d] for d in dev)
        assert _seq_latency(T, B, rate, lat, ovd, src, sink, dev.tolist()) == pytest.approx(v, rel=TOL, abs=TOL)


def test_chain_dp_throughput_equals_brute_force():
    rng = np.random.default_rng(2)
    for _ in range(250):
        T, B, rate, lat, ov, src, sink, allowed = _random_chain(rng)
        ovd = np.broadcast_to(np.asarray(ov, float), (T.shape[1],))
        v, dev = chain_dp(T, B, rate, lat, ov, src, sink, "throughput", allowed=allowed)
        want = brute_throughput(T, B, rate, ovd, src, sink, allowed)
        assert v == pytest.approx(want, rel=TOL, abs=TOL)
        # the returned placement: contiguous stages on distinct allowed devices, achieving v
        runs = [k for k, _ in itertools.groupby(dev.tolist())]
        assert len(runs) == len(set(runs)) and all(allowed[d] for d in runs)
        L = len(dev)
        stages = [(d, len(list(g))) for d, g in itertools.groupby(dev.tolist())]
        worst, a = max(_x(B[0], src, dev[0], rate, lat, False), _x(B[L], dev[-1], sink, rate, lat, False)), 0
        for s, (d, n) in enumerate(stages):
            worst = max(worst, ovd[d] + T[a:a + n, d].sum())
            if s:
                worst = max(worst, _x(B[a], stages[s - 1][0], d, rate, lat, False))
            a += n
        assert worst == pytest.approx(v, rel=TOL, abs=TOL)


def test_chain_dp_rejects_bad_input():
    with pytest.raises(ValueError, match="objective"):
        chain_dp(np.ones((2, 1)), np.ones(3), np.full((1, 1), np.inf), np.zeros((1, 1)), 0.0, 0, 0, "fastest")
    with pytest.raises(ValueError, match="L \\+ 1"):
        chain_dp(np.ones((2, 1)), np.ones(2), np.full((1, 1), np.inf), np.zeros((1, 1)), 0.0, 0, 0)


# ---------------------------------------------------------------------------
# DADS min-cut against brute force
# ---------------------------------------------------------------------------


def _random_dag(rng: random.Random):
    n = rng.randint(1, 10)
    edges = set()
    for v in range(n):
        srcs = {-1} if v == 0 or rng.random() < 0.15 else set()
        for _ in range(rng.choice([1, 1, 2, 3])):
            if v:
                srcs.add(rng.randrange(v))
        if not srcs:
            srcs.add(-1)
        edges |= {(u, v) for u in srcs}
    if rng.random() < 0.3 and n > 2:  # a node with many consumers
        hub = rng.randrange(n - 1)
        edges |= {(hub, v) for v in range(hub + 1, n)}
    return n, sorted(edges)


def brute_dads(n, edges, local_t, edge_t, up_t, down, up_in, out, keep):
    best = np.inf
    for bits in itertools.product((0, 1), repeat=n):  # 1 = edge
        if any(u >= 0 and bits[u] and not bits[v] for u, v in edges):
            continue  # data would flow edge -> local
        t = sum(edge_t[v] if bits[v] else local_t[v] for v in range(n))
        for u in {u for u, _ in edges}:
            if (u < 0 or not bits[u]) and any(bits[v] for w, v in edges if w == u):
                t += up_in if u < 0 else up_t[u]
        t += down if bits[out] else keep
        best = min(best, t)
    return best


def test_dads_cut_equals_brute_force():
    rng = random.Random(3)
    for _ in range(250):
        n, edges = _random_dag(rng)
        r = lambda k, hi=1.0: [rng.uniform(0, hi) if rng.random() > 0.1 else 0.0 for _ in range(k)]  # noqa: E731
        local_t, edge_t, up_t = r(n, 2.0), r(n, 0.5), r(n)
        down, up_in, keep = rng.uniform(0, 1), rng.uniform(0, 2), rng.choice([0.0, rng.uniform(0, 0.5)])
        out = n - 1 if rng.random() < 0.8 else rng.randrange(n)
        cost, on_edge = dads_cut(n, edges, local_t, edge_t, up_t, down, up_in=up_in, output=out, keep_out_t=keep)
        want = brute_dads(n, edges, local_t, edge_t, up_t, down, up_in, out, keep)
        assert cost == pytest.approx(want, rel=TOL, abs=TOL), (n, edges)
        assert not any(u >= 0 and u in on_edge and v not in on_edge for u, v in edges)


# ---------------------------------------------------------------------------
# planners on real models
# ---------------------------------------------------------------------------


_CLUSTERS = itertools.count()


def _random_cluster(rng: random.Random, n: int) -> Cluster:
    # Device names are unique per cluster: the cost memo on a (session-cached) graph is keyed by the cost
    # object's id() and the device *name*, so a fresh cost model that reuses a dead one's id would read
    # its stale times if names repeated with different speeds.
    k = next(_CLUSTERS)
    devs = tuple(Device(f"c{k}d{i}", gflops=rng.uniform(1, 80), cpu_load=rng.choice([0.0, 0.0, 0.4])) for i in range(n))
    names = [d.name for d in devs]
    overrides = tuple((frozenset(p), Link(rng.uniform(2, 400), rng.uniform(0, 5)))
                      for p in itertools.combinations(names, 2) if rng.random() < 0.5)
    src = rng.choice(names)
    sink = src if rng.random() < 0.6 else rng.choice(names)
    return Cluster("rand", devs, Link(rng.uniform(2, 400), rng.uniform(0, 5)), overrides, source=src, sink=sink)


def test_layerwise_equals_bruteforce_on_a_small_chain(seq6):
    g, _ = seq6
    assert len(g.layers) == 6 and is_chain(g)
    rng = random.Random(4)
    for trial in range(8):
        c = _random_cluster(rng, 2 + trial % 2)
        cost = ClusterCost(c)
        lw = evaluate(make_plan("layerwise", g, c, cost), g, c, cost)
        bf = evaluate(make_plan("bruteforce", g, c, cost), g, c, cost)
        assert lw == pytest.approx(bf, rel=TOL, abs=1e-12)
        v, _ = chain_dp(**chain_arrays(g, c, cost))
        assert v == pytest.approx(lw, rel=TOL, abs=1e-12)


@pytest.mark.parametrize("spec,shape", [("vgg16", (3, 32, 32)), ("alexnet", (3, 64, 64))])
def test_chain_dp_value_is_the_simulated_latency(traced, spec, shape):
    g, _ = traced(spec, shape)
    assert is_chain(g)
    rng = random.Random(5)
    for trial in range(6):
        c = _random_cluster(rng, 2 + trial % 3)
        cost = ClusterCost(c)
        v, _ = chain_dp(**chain_arrays(g, c, cost))
        plan = make_plan("layerwise", g, c, cost)
        lw = evaluate(plan, g, c, cost)
        assert v == pytest.approx(lw, rel=TOL)
        for other in ("local", "edge", "neurosurgeon"):  # their plans lie in the DP's space
            assert lw <= evaluate(make_plan(other, g, c, cost), g, c, cost) * (1 + TOL)


def test_iot_edge_vgg16_acceptance(traced):
    g, _ = traced("vgg16", (3, 224, 224))
    c = resolve_cluster("iot-edge")
    cost = ClusterCost(c)
    t = {name: evaluate(make_plan(name, g, c, cost), g, c, cost)
         for name in ("local", "edge", "neurosurgeon", "layerwise", "dads")}
    print("iot-edge vgg16 predicted latency (s):", {k: round(v, 5) for k, v in t.items()})
    assert t["neurosurgeon"] <= min(t["local"], t["edge"]) * (1 + TOL)
    assert t["layerwise"] <= t["neurosurgeon"] * (1 + TOL)


def test_neurosurgeon_is_the_best_single_split(seq6):
    g, _ = seq6
    rng = random.Random(6)
    for _ in range(4):
        c = _random_cluster(rng, 3)
        cost = ClusterCost(c)
        best = min(evaluate(make(g, c, whole_segments(g, [c.source] * k + [s] * (6 - k)), "x"), g, c, cost)
                   for k in range(7) for s in c.names)
        assert evaluate(make_plan("neurosurgeon", g, c, cost), g, c, cost) == pytest.approx(best, rel=TOL)


DAG_MODELS = [("resnet18", (3, 32, 32)), ("googlenet", (3, 64, 64))]


@pytest.mark.parametrize("spec,shape", DAG_MODELS)
def test_exact_planners_give_correct_plans_on_dag_models(traced, spec, shape):
    g, gm = traced(spec, shape)
    assert not is_chain(g)
    c = resolve_cluster("hetero3")
    runs = [("neurosurgeon", {}), ("layerwise", {}), ("layerwise", {"objective": "throughput"}), ("dads", {})]
    mine = {n for n, i in planners().items() if i.fn.__module__.startswith("edgeslice.planners.whole.")
            and n not in ("local", "edge")}
    assert mine == {n for n, _ in runs} | {"bruteforce"}
    for name, opts in runs:
        plan = make_plan(name, g, c, **opts)
        assert plan.planner == name
        assert check_plan(plan, graph=g, gm=gm)["ok"], (name, opts)
    with pytest.raises(EdgesliceError) as err:
        make_plan("bruteforce", g, c)
    msg = str(err.value)
    assert spec in msg and f"{len(g.layers)} layers" in msg and "3 devices" in msg and "200000" in msg


@pytest.mark.parametrize("spec,shape", DAG_MODELS)
def test_dads_alternating_runs_are_valid(traced, spec, shape):
    """Random layer costs make the cut alternate local / edge runs (GoogLeNet's parallel branches; in ResNet-18
    everything after the first edge layer depends on it, so only a downsample can split off); the plan still
    computes the model."""
    g, gm = traced(spec, shape)
    c = resolve_cluster("hetero3")
    arr = dads_arrays(g, c, ClusterCost(c), "pi4")
    rng = np.random.default_rng(7)
    arr["local_t"] = rng.uniform(0, 1, len(g.layers))
    arr["edge_t"] = rng.uniform(0, 1, len(g.layers))
    arr["up_t"] = rng.uniform(0, 0.05, len(g.layers))
    _, on_edge = dads_cut(**arr)
    per_layer = ["pi4" if i in on_edge else "jetson" for i in range(len(g.layers))]
    plan = make(g, c, whole_segments(g, per_layer), "dads")
    assert len(plan.segments) >= (4 if spec == "googlenet" else 2)
    assert check_plan(plan, graph=g, gm=gm)["ok"]


def test_vgg16_plans_run_correctly(traced):
    g, gm = traced("vgg16", (3, 32, 32))
    for cname in ("hetero3", "iot-edge"):
        c = resolve_cluster(cname)
        for name, opts in [("dads", {}), ("layerwise", {}), ("layerwise", {"objective": "throughput"})]:
            assert check_plan(make_plan(name, g, c, **opts), graph=g, gm=gm)["ok"], (cname, name)


def test_throughput_stages_use_distinct_devices_among_the_six_fastest(traced):
    g, gm = traced("alexnet", (3, 64, 64))
    c = resolve_cluster("mec")  # 8 devices: the DP considers 6, the source among them
    plan = make_plan("layerwise", g, c, objective="throughput")
    devs = [s.parts[0].device for s in plan.segments]
    assert len(devs) == len(set(devs))
    assert not {"iot3", "iot5"} & set(devs)  # the two slowest: 4 GFLOP/s at 30% load, 3.5 at 20%
    assert dict(plan.options)["objective"] == "throughput"
    assert check_plan(plan, graph=g, gm=gm)["ok"]


def test_one_device_cluster_and_bad_options(seq6):
    g, _ = seq6
    c = Cluster.uniform(1)
    for name, opts in [("neurosurgeon", {}), ("layerwise", {}), ("layerwise", {"objective": "throughput"}),
                       ("dads", {}), ("bruteforce", {})]:
        plan = make_plan(name, g, c, **opts)
        assert [s.parts[0].device for s in plan.segments] == ["d0"]
    two = Cluster.uniform(2)
    with pytest.raises(EdgesliceError, match="objective"):
        make_plan("layerwise", g, two, objective="fastest")
    with pytest.raises(EdgesliceError, match="limit of 10"):
        make_plan("bruteforce", g, two, limit=10)
