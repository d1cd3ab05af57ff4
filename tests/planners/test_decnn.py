"""DeCNN (issue 14): channel-group plans of decoupled models, the exact exchange at a shuffle, naive splitting.

Outputs are compared with the whole model; the shuffle's region rule with autograd; transfers and the
reduction cost exactly.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
import torch

from edgeslice.cluster.model import Cluster
from edgeslice.cost import ClusterCost
from edgeslice.execute.check import check_plan
from edgeslice.models.decoupled import ChannelShuffle
from edgeslice.planners import make_plan
from edgeslice.planners.channel.decnn import breaks, model_groups
from edgeslice.program import lower
from edgeslice.program import regions as R
from edgeslice.program.program import ComputeTask
from edgeslice.sim.simulate import simulate

VARIANTS = {"resnet18_decoupled": (3, 64, 64), "resnet50_decoupled": (3, 64, 64),
            "resnet50_decoupled_x175": (3, 64, 64), "vgg16_bn_decoupled": (3, 64, 64)}


@pytest.mark.parametrize("spec", list(VARIANTS))
@pytest.mark.parametrize("batch", [1, 2])
def test_every_decoupled_variant_verifies_in_process(traced, spec, batch):
    g, gm = traced(spec, VARIANTS[spec], batch)
    plan = make_plan("decnn", g, devices=4)
    res = check_plan(plan, graph=g, gm=gm)
    assert res["ok"] and res["rel_err"] <= 1e-5, res
    assert {p.device for s in plan.segments for p in s.parts} == {"d0", "d1", "d2", "d3"}


def test_decoupled_resnet_is_one_channel_segment_per_stage_and_exchanges_only_at_shuffles(traced):
    g, _ = traced("resnet50_decoupled", (3, 64, 64))
    plan = make_plan("decnn", g, devices=4, stem="split")
    assert [s.cut for s in plan.segments] == ["channel"] * 4 + ["input"]
    shuffles = [l.name for l in g.layers if l.kind == "permute"]
    assert len(shuffles) == 3 and [s.first for s in plan.segments[1:4]] == shuffles
    for s in plan.segments[:4]:  # group i on device i
        n = g.layer(s.last).out_shape[0] // 4
        assert [(p.device, p.channels) for p in s.parts] == [(f"d{i}", (i * n, (i + 1) * n)) for i in range(4)]
    prog = lower(plan, g)
    feeds = {g.layer(sh).inputs[0] for sh in shuffles}
    for t in prog.transfers:
        # the input image to every device, the shuffles' all-to-all, the partial sums to the sink: nothing else
        assert t.tensor in feeds | {"input", "fc"}, t
    for sh in shuffles:
        src = g.layer(sh).inputs[0]
        c, h, w = g.layer(src).out_shape
        xs = [t for t in prog.transfers if t.tensor == src]
        assert len(xs) == 12  # every ordered pair once
        for t in xs:  # one group's share of the peer's group: C / g**2 channels, the whole plane
            assert t.region[1:] == ((0, h), (0, w)) and t.region[0][1] - t.region[0][0] == c // 16
            assert t.nbytes == c // 16 * h * w * 4
        # each device receives exactly the channels the permutation brings to its group and holds no others
        perm = g.layer(sh).attr("perm")
        for i in range(4):
            got = {ch for t in xs if t.dst == f"d{i}" for ch in range(*t.region[0])}
            own = set(range(i * c // 4, (i + 1) * c // 4))
            assert got | (set(perm[i * c // 4 : (i + 1) * c // 4]) & own) == set(perm[i * c // 4 : (i + 1) * c // 4])


def test_the_stem_is_planned_three_ways_and_the_fastest_kept(traced):
    g, gm = traced("resnet18_decoupled", (3, 64, 64))
    cluster = Cluster.uniform(4)
    cost = ClusterCost(cluster)
    split = make_plan("decnn", g, cluster, cost, stem="split")
    source = make_plan("decnn", g, cluster, cost, stem="source")
    strips = make_plan("decnn", g, cluster, cost, stem="strips")
    auto = make_plan("decnn", g, cluster, cost)
    assert source.segments[0].cut == "whole" and source.segments[0].last == "maxpool"
    assert strips.segments[0].cut == "spatial" and strips.segments[0].last == "maxpool"
    assert [p.rows for p in strips.segments[0].parts] == [(0, 4), (4, 8), (8, 12), (12, 16)]
    assert split.segments[0].cut == "channel"
    times = {p.options: simulate(lower(p, g), g, cluster, cost).latency_s for p in (split, source, strips)}
    best = min((split, source, strips), key=lambda p: times[p.options])
    assert auto.segments == best.segments
    for p in (source, strips):
        assert check_plan(p, graph=g, gm=gm)["ok"]
    # the strips' output reaches each group's device as exactly that group's channels of each strip
    prog = lower(strips, g)
    xs = [t for t in prog.transfers if t.tensor == "maxpool"]
    assert len(xs) == 12 and all(t.region[0][1] - t.region[0][0] == 24 and t.region[1][1] - t.region[1][0] == 4 for t in xs)


def test_naive_channel_split_of_an_ordinary_model_gathers_at_every_mixing_layer(traced):
    g, gm = traced("resnet18", (3, 32, 32))
    assert model_groups(g) == 1
    plan = make_plan("decnn", g, devices=4)
    assert check_plan(plan, graph=g, gm=gm)["ok"]
    convs = [l for l in g.layers if l.kind == "conv"]
    assert len(plan.segments) >= len(convs)  # no two convolutions share a segment
    index = {l.name: i for i, l in enumerate(g.layers)}
    for s in plan.segments:
        inside = g.layers[index[s.first] : index[s.last] + 1]
        assert sum(l.kind in ("conv", "linear") for l in inside) <= 1
    dec, _ = traced("resnet18_decoupled", (3, 32, 32))
    moved = sum(t.nbytes for t in lower(plan, g).transfers)
    moved_dec = sum(t.nbytes for t in lower(make_plan("decnn", dec, devices=4), dec).transfers)
    assert moved > 4 * moved_dec  # decoupling is what cuts the traffic


def test_fewer_groups_than_devices_leaves_the_slowest_idle_and_shares_follow_speed(traced):
    g, gm = traced("resnet18_decoupled:g=2", (3, 32, 32))
    base = Cluster.uniform(4)
    devs = tuple(replace(d, gflops=f) for d, f in zip(base.devices, (4.0, 1.0, 8.0, 2.0)))
    cluster = replace(base, devices=devs)
    plan = make_plan("decnn", g, cluster)
    assert {p.device for s in plan.segments for p in s.parts} == {"d0", "d2"}  # the two fastest
    assert check_plan(plan, graph=g, gm=gm)["ok"]
    g4, gm4 = traced("resnet18_decoupled", (3, 32, 32))
    devs = tuple(replace(d, gflops=f) for d, f in zip(base.devices, (6.0, 1.0, 1.0, 0.1)))
    plan = make_plan("decnn", g4, replace(base, devices=devs))
    seg = plan.segments[1]
    n = g4.layer(seg.last).out_shape[0] // 4  # whole groups: 3 to the fast device, 1 to the next
    assert [(p.device, p.channels) for p in seg.parts] == [("d0", (0, 3 * n)), ("d1", (3 * n, 4 * n))]
    assert check_plan(plan, graph=g4, gm=gm4)["ok"]


def test_the_sink_pays_for_adding_up_partial_sums(traced):
    g, _ = traced("resnet18_decoupled", (3, 32, 32))
    cluster = Cluster.uniform(4)
    cost = ClusterCost(cluster)
    prog = lower(make_plan("decnn", g, cluster, cost), g)
    out = prog.tasks[-1]
    assert out.need.reduce and len(out.need.pieces) == 4
    tl = simulate(prog, g, cluster, cost)
    last = max(e.end for e in tl.events)
    adds = 3 * 1000 * g.batch
    assert tl.latency_s == pytest.approx(last + adds / (cluster.device("d0").gflops * 1e9), rel=1e-12)
    assert simulate(prog, g, cluster, cost, arrivals=(0.0, 10.0)).latencies[0] == pytest.approx(tl.latency_s, rel=1e-12)


def test_breaks_marks_exactly_the_layers_that_read_across_groups(traced):
    g, _ = traced("resnet50_decoupled", (3, 64, 64))
    broken = {l.name for l in g.layers if breaks(l, 4)}
    kinds = {g.layer(n).kind for n in broken}
    assert kinds == {"conv", "permute", "linear"}
    assert all(g.layer(n).geometry.groups == 1 for n in broken if g.layer(n).kind == "conv")
    assert all(not breaks(l, 4) for l in g.layers if l.kind == "conv" and l.geometry.groups == 4)


@pytest.mark.parametrize("seed", range(20))
def test_shuffle_reads_are_exactly_the_channels_autograd_finds(seed):
    rng = random.Random(seed)
    groups = rng.choice([2, 3, 4, 6])
    c = groups * rng.randint(1, 4) * groups
    from edgeslice.graph.trace import trace_module

    g, _ = trace_module(ChannelShuffle(groups), (c, 3, 2), spec="shuffle")
    (lay,) = [l for l in g.layers if l.kind == "permute"]
    c0 = rng.randrange(c)
    c1 = rng.randint(c0 + 1, c)
    h0, w0 = rng.randrange(3), rng.randrange(2)
    out = ((c0, c1), (h0, 3), (w0, 2))
    x = torch.randn(1, c, 3, 2, requires_grad=True)
    y = ChannelShuffle(groups)(x)
    y[0, c0:c1, h0:, w0:].sum().backward()
    read = {tuple(i) for i in torch.nonzero(x.grad[0]).tolist()}
    boxes = R.exact_reads(lay, out) or (R.backward(lay, out)[1][0],)
    got = {(ch, i, j) for b in boxes for ch in range(*b[0]) for i in range(*b[1]) for j in range(*b[2])}
    assert got == read
    assert sum(R.volume(b) for b in boxes) == len(read)  # disjoint


def test_exact_needs_are_the_hull_when_all_channels_are_read(traced):
    from edgeslice.program.lower import exact_needs

    g, _ = traced("resnet18_decoupled", (3, 32, 32))
    prog = lower(make_plan("decnn", g, devices=4, stem="split"), g)
    sh = next(l for l in g.layers if l.kind == "permute")
    t = next(t for t in prog.tasks if isinstance(t, ComputeTask) and t.segment == 1 and t.device == "d1")
    assert len(exact_needs(g, t.steps, sh.inputs[0])) == 4  # one run inside each producer's group
    whole = tuple(s._replace(region=R.full(g.layer(s.layer).out_shape)) if s.layer == sh.name else s for s in t.steps)
    assert exact_needs(g, whole, sh.inputs[0]) is None


def test_bench_decnn_json_has_the_contract_fields_and_every_row_verified(tmp_path):
    import json

    from _cli import _run

    r = _run(tmp_path, ["bench", "decnn", "--json", "--models", "resnet50", "--cluster", "testbed4,pi4x4", "--input",
                        "3x64x64", "--out", str(tmp_path / "b")])
    assert r.returncode == 0, r
    res = json.loads(r.stdout)
    rows = res["rows"]
    assert {(x["model"], x["planner"]) for x in rows} == {
        (m, p) for m in ("resnet50_decoupled", "resnet50") for p in ("decnn", "modnn", "ftp-2x2", "aofl", "local")}
    assert len(rows) == 20
    for x in rows:
        assert {"model", "planner", "predicted_latency_s", "measured_latency_s", "throughput_rps", "peak_mem_mb",
                "mb_moved", "verified"} <= set(x)
        assert x["verified"] is True and x["measured_latency_s"] is None
        assert set(x["peak_mem_mb"]) == {"d0", "d1", "d2", "d3"} or x["cluster"] == "pi4x4"
    s = res["summary"]
    assert {"speedup_vs_whole", "throughput_speedup_vs_whole", "mem_fraction_of_whole"} <= set(s)
    whole = next(x for x in rows if x["cluster"] == "testbed4" and x["model"] == "resnet50_decoupled" and x["planner"] == "local")
    dec = next(x for x in rows if x["cluster"] == "testbed4" and x["model"] == "resnet50_decoupled" and x["planner"] == "decnn")
    assert s["speedup_vs_whole"] == whole["predicted_latency_s"] / dec["predicted_latency_s"]
    assert (tmp_path / "b" / "decnn.png").stat().st_size > 0
