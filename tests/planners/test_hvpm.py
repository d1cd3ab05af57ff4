"""hvpm (OfpCNN's hybrid horizontal + vertical partitioning): never slower than the other planners, correct, memory-aware.

The guarantee (note *hvpm* in :mod:`edgeslice.planners.hybrid.hvpm`): on its own cost model, hvpm's
simulated latency is at most that of every other planner that returns a plan.  Most comparisons here
run through ``compare`` with the seed planners memoised (:func:`shared`): hvpm's seeds and the
comparison then share each planner's plan instead of computing the same deterministic plan twice
(the FL searches dominate the time); one comparison runs without it.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from edgeslice.cluster.load import builtin_clusters, resolve_cluster
from edgeslice.cluster.model import Cluster, Device, Link
from edgeslice.cost import ClusterCost
from edgeslice.errors import EdgesliceError
from edgeslice.execute.check import check_plan
from edgeslice.graph.trace import trace_module
from edgeslice.planners import PLANNERS, make_plan, planner_options, planners
from edgeslice.planners._shared.common import evaluate
from edgeslice.planners.compare import compare, default_planners
from edgeslice.planners.hybrid.dp import layout_dp
from edgeslice.planners.hybrid.hvpm import SEEDS, hvpm_solve
from edgeslice.planners.hybrid.space import subsets
from edgeslice.program.lower import lower
from edgeslice.program.memory import MemoryFitError, resident
from edgeslice.program.program import ComputeTask

REL = 1e-9


@pytest.fixture
def shared(monkeypatch):
    """Memoise every seed planner for this test: ``compare`` and hvpm's seeds get the same plan objects."""
    planners()
    for name in SEEDS:
        info = PLANNERS[name]
        memo: dict = {}

        def fn(graph, cluster, cost, opts, _fn=info.fn, _memo=memo):
            key = (id(graph), id(cluster), id(cost), opts)
            if key not in _memo:
                try:
                    _memo[key] = (graph, cluster, cost, _fn(graph, cluster, cost, opts), None)
                except EdgesliceError as exc:  # a refusal is remembered too, and raised again
                    _memo[key] = (graph, cluster, cost, None, exc)
            hit = _memo[key]
            if hit[4] is not None:
                raise hit[4]
            return hit[3]

        monkeypatch.setitem(PLANNERS, name, replace(info, fn=fn))


def tiny():
    """Conv, pool, conv, then a Linear tail: every kind of HVPM segment, small enough for the FL searches on 8 devices."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2, padding=1),
                          nn.Flatten(), nn.Linear(4 * 6 * 6, 10)).eval()
    return trace_module(model, (3, 12, 12), spec="tiny")


def never_slower(g, c, cost=None) -> dict:
    cost = cost or ClusterCost(c)
    res = compare(g, c, cost)
    assert res["hvpm"].ok, res["hvpm"].error
    h = res["hvpm"].latency_s
    assert h == pytest.approx(evaluate(res["hvpm"].plan, g, c, cost), rel=1e-12)
    for name, r in res.items():
        if r.ok:
            assert h <= r.latency_s * (1 + REL), (c.name, name, h, r.latency_s)
    return res


def test_the_seeds_are_every_other_compared_planner():
    assert set(SEEDS) == set(default_planners()) - {"hvpm"}
    assert "hvpm" in planners() and planners()["hvpm"].options.__name__ == "HvpmOptions"


@pytest.mark.parametrize("name", sorted(builtin_clusters()))
def test_never_slower_than_any_planner_on_every_bundled_cluster(traced, shared, name):
    c = resolve_cluster(name)
    if name == "mec":  # eight devices: the FL searches take minutes on a zoo model
        never_slower(tiny()[0], c)
        return
    res = never_slower(traced("alexnet", (3, 64, 64))[0], c)
    if name == "testbed4":  # four equal devices: the DP's mix of strips, vertical runs and split FC layers wins outright
        others = min(r.latency_s for n, r in res.items() if r.ok and n != "hvpm")
        assert res["hvpm"].latency_s < 0.95 * others
    if name in ("hetero3", "testbed-hetero", "iot-edge"):
        never_slower(traced("resnet18", (3, 32, 32))[0], c)
    if name in ("iot-edge", "testbed-fl"):
        never_slower(traced("vgg16", (3, 32, 32))[0], c)


def test_never_slower_without_shared_plans(traced):
    never_slower(traced("alexnet", (3, 64, 64))[0], resolve_cluster("testbed-hetero"))


def _random_cluster(rng, k: int) -> Cluster:
    n = int(rng.integers(2, 6))
    devs = tuple(Device(f"r{k}d{i}", gflops=float(rng.uniform(0.005, 0.3)), cpu_load=float(rng.uniform(0, 0.8)))
                 for i in range(n))
    base = Link(float(rng.uniform(5, 500)), float(rng.uniform(0, 0.5)))
    overrides = tuple((frozenset((a.name, b.name)), Link(float(rng.uniform(5, 500)), float(rng.uniform(0, 0.5))))
                      for a, b in itertools.combinations(devs, 2) if rng.random() < 0.5)
    src = devs[int(rng.integers(n))].name
    return Cluster(f"rand{k}", devs, base, overrides, source=src, sink=src,
                   medium="shared" if rng.random() < 0.2 else "switched")


def test_never_slower_on_random_heterogeneous_clusters(shared):
    g, _ = tiny()
    rng = np.random.default_rng(11)
    for k in range(50):
        never_slower(g, _random_cluster(rng, k))


@pytest.mark.parametrize("spec,shape,cluster", [("alexnet", (3, 64, 64), "testbed-hetero"), ("vgg16", (3, 32, 32), "pi4x4"),
                                                ("resnet18", (3, 32, 32), "testbed4"), ("googlenet", (3, 32, 32), "local4")])
def test_plans_compute_the_model(traced, spec, shape, cluster):
    g, gm = traced(spec, shape)
    c = resolve_cluster(cluster)
    for seeds in (False, True) if spec == "alexnet" else (False,):
        plan = make_plan("hvpm", g, c, seeds=seeds)
        assert plan.planner == "hvpm" and dict(plan.options)["seeds"] is seeds
        res = check_plan(plan, graph=g, gm=gm)
        assert res["ok"] and res["rel_err"] <= 1e-5, (spec, seeds, res["rel_err"])


def test_the_dp_alone_mixes_cuts_and_spares_a_loaded_device(traced):
    g, gm = traced("vgg16", (3, 64, 64))
    devs = tuple(Device(f"d{i}", gflops=10, cpu_load=0.9 if i == 2 else 0.0) for i in range(4))
    c = Cluster("loaded", devs, Link(1000, 0.05), source="d0", sink="d0")
    cost = ClusterCost(c)
    r = hvpm_solve(g, c, cost, planner_options("hvpm", seeds=False))
    assert r.origin == "dp" and set(r.candidates) == {"dp"}
    assert check_plan(r.plan, graph=g, gm=gm)["ok"]
    cuts = {s.cut for s in r.plan.segments}
    assert "spatial" in cuts and "whole" in cuts  # horizontal and vertical segments in one plan
    flops = dict.fromkeys(c.names, 0)
    for t in lower(r.plan, g).tasks:
        if isinstance(t, ComputeTask):
            flops[t.device] += t.flops
    assert flops["d2"] < min(flops[d] for d in ("d0", "d1", "d3"))
    assert r.latency_s < evaluate(make_plan("local", g, c, cost), g, c, cost) / 2


def test_memory_a_device_too_small_for_anything_is_avoided_or_named(traced):
    g, _ = traced("alexnet", (3, 64, 64))
    base = resolve_cluster("testbed4")
    tiny_d3 = replace(base, devices=tuple(replace(d, memory_mb=1e-3) if d.name == "d3" else d for d in base.devices))
    for seeds in (False, True):
        plan = make_plan("hvpm", g, tiny_d3, seeds=seeds)
        mem = resident(lower(plan, g), g)
        assert mem["d3"].total == 0, seeds
        assert all(m.total <= tiny_d3.device(n).memory_mb * 1e6 for n, m in mem.items())
    tiny_src = replace(base, devices=tuple(replace(d, memory_mb=1e-3) if d.name == "d0" else d for d in base.devices))
    with pytest.raises(MemoryFitError) as err:  # the input itself appears on d0
        make_plan("hvpm", g, tiny_src, seeds=False)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("hvpm: device 'd0'") and "memory_mb" in msg


def test_memory_the_dp_prices_weights_on_a_device_that_overflows(traced):
    g, _ = traced("alexnet", (3, 64, 64))
    whole = g.param_bytes / 1e6
    c = Cluster("m", (Device("s", gflops=2, memory_mb=4096), Device("f", gflops=50, memory_mb=0.6 * whole)),
                Link(100, 1), source="s", sink="s")
    r = hvpm_solve(g, c, ClusterCost(c), planner_options("hvpm", seeds=False))
    assert isinstance(r.candidates["dp"], str) and "'f'" in r.candidates["dp"]  # the unpriced optimum overflows f
    assert r.origin.startswith("dp+memory")
    assert resident(lower(r.plan, g), g)["f"].total <= 0.6 * whole * 1e6


def test_subsets_all_for_small_clusters_fastest_prefixes_for_large():
    assert len(subsets(Cluster.uniform(4), 5)) == 11
    mec = resolve_cluster("mec")
    big = subsets(mec, 5)
    assert all(len(s) >= 2 for s in big) and len(big) == len(set(big)) <= 2 * (len(mec.devices) - 1)
    fast = sorted(mec.names, key=lambda n: -mec.device(n).gflops * (1 - mec.device(n).cpu_load))
    assert tuple(sorted(mec.names.index(n) for n in fast[:2])) in big
    assert tuple(range(len(mec.devices))) in big


def _brute_paths(boundary, src, dst, w, start, final):
    best = final[start] if boundary[start] == max(boundary) else np.inf
    for e in range(len(src)):
        if src[e] == start:
            best = min(best, w[e] + _brute_paths(boundary, src, dst, w, dst[e], final))
    return best


@pytest.mark.parametrize("seed", range(40))
def test_layout_dp_equals_brute_force_on_random_tables(seed):
    rng = np.random.default_rng(seed)
    K = int(rng.integers(1, 5))
    per = rng.integers(1, 4, K + 1)
    per[0] = 1
    boundary = np.repeat(np.arange(K + 1), per)
    edges = [(a, b) for a in range(len(boundary)) for b in range(len(boundary))
             if boundary[a] < boundary[b] and rng.random() < 0.6]
    src = [a for a, _ in edges]
    dst = [b for _, b in edges]
    w = rng.uniform(0, 2, len(edges))
    w[rng.random(len(edges)) < 0.1] = np.inf
    final = np.where(boundary == K, rng.uniform(0, 1, len(boundary)), np.inf)
    want = _brute_paths(boundary, src, dst, w, 0, final)
    got = layout_dp(boundary, src, dst, w, 0, final)
    if not np.isfinite(want):
        assert got.edges == () and not np.isfinite(got.value)
        return
    assert got.value == pytest.approx(want, rel=1e-12)
    s, total = 0, 0.0  # the path is a real path of that cost
    for e in got.edges:
        assert src[e] == s
        total += w[e]
        s = dst[e]
    assert boundary[s] == K and total + final[s] == pytest.approx(got.value, rel=1e-12)
