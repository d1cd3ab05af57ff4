"""FCPM, the learned FLOPs + CPU-load predictor: fitted on some models, judged on others, used by planners.

The synthetic load profiles below follow a known law (a rate, a per-element cost, a per-kind factor, and a
load effect that is *not* 1 / (1 - load)) on the real layers of zoo models, so what FCPM must learn is known
and the tests need no measurement; one test measures for real on this machine (the loopback of the testbed).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from edgeslice.cluster.model import Cluster, Device, Link, Profile
from edgeslice.cost.base import ClusterCost
from edgeslice.cost.learned.collect import LOAD_PROFILE_FORMAT, model_spec, profile_here
from edgeslice.cost.learned.fcpm import CANDIDATES, FCPM, FCPMCost, family, select
from edgeslice.cost.learned.report import report
from edgeslice.cost.profiled import layer_features
from edgeslice.graph import trace

MODELS = ("alexnet@3x64x64", "resnet18@3x64x64", "mobilenet_v2@3x64x64", "vgg16@3x32x32")
LOADS = (0.0, 20.0, 40.0, 60.0, 80.0)


def law(lay: dict, fraction: float, load_pct: float) -> float:
    kind = {"linear": 2.5, "conv": 1.0}.get(lay["kind"], 1.6)
    t0 = 2e-4 + (lay["flops"] * fraction * kind / 4e9) + lay["out_elems"] * fraction * 3e-9
    return t0 / (1.0 - load_pct / 100.0) ** 0.6  # the scheduler gives us more than 1 - load


@pytest.fixture(scope="module")
def synthetic():
    return synthetic_profile()


def synthetic_profile() -> dict:
    rng = np.random.default_rng(0)
    models = {}
    for spec in MODELS:
        name, shape = model_spec(spec)
        g, _ = trace(name, shape)
        layers = {}
        for layer in g.layers:
            st = {"kind": layer.kind, "flops": layer.flops, **layer_features(layer)}
            st["samples"] = [[f, load, law(st, f, load) * float(rng.uniform(0.98, 1.02))]
                             for load in LOADS for f in (1.0, 0.5, 0.25)]
            layers[layer.name] = st
        models[spec] = {"model": name, "input": list(shape), "batch": 1, "layers": layers,
                        "whole": [[load, sum(law(v, 1.0, load) for v in layers.values())] for load in LOADS]}
    return {"format": LOAD_PROFILE_FORMAT, "version": 1, "device": "d0", "cpus": 0.25, "loads_set": list(LOADS),
            "effective_gflops": 4.0, "models": models, "batch": 1}


def test_features_know_the_kind_family():
    assert family("conv", 1, 3) == "conv" and family("conv", 32, 32) == "dwconv" and family("conv", 4, 64) == "gconv"
    assert family("maxpool", 1, 1) == "pool" and family("channel_shuffle", 1, 1) == "other"


def test_fcpm_learns_the_load_effect_on_held_out_models_and_loads(synthetic):
    train, test = ["alexnet@3x64x64", "mobilenet_v2@3x64x64", "vgg16@3x32x32"], ["resnet18@3x64x64"]
    out = report({"d0": synthetic}, train, test, train_loads=[0.0, 40.0, 80.0], kind="additive")
    fc, an, pr = out["fcpm"], out["analytic"], out["profiled"]
    assert set(out) >= {"fcpm", "analytic", "profiled"}
    assert set(fc["per_layer"]) >= {"mean", "min", "p5"} and set(fc["whole_model"]) >= {"mean", "min"}
    assert fc["per_layer"]["mean"] > 0.95 and fc["whole_model"]["mean"] > 0.95
    # the idle profile knows each layer exactly but not the load; at 60% and 80% FCPM is clearly better
    for lvl in ("60", "80"):
        assert out["by_load"][lvl]["fcpm"] > out["by_load"][lvl]["profiled"] + 0.1
        assert out["by_load"][lvl]["fcpm"] > out["by_load"][lvl]["analytic"]
    assert pr["per_layer"]["mean"] < fc["per_layer"]["mean"] and an["per_layer"]["mean"] < fc["per_layer"]["mean"]
    assert out["chosen_model"]["d0"] == "additive"


def test_selection_is_by_held_out_model_and_deterministic(synthetic):
    train = ["alexnet@3x64x64", "mobilenet_v2@3x64x64", "vgg16@3x32x32"]
    best, scores = select(synthetic, train, [0.0, 40.0, 80.0], candidates=("additive", "loglinear"))
    assert best == max(scores, key=scores.get) == "additive" and set(scores) == {"additive", "loglinear"}
    assert set(CANDIDATES) >= set(scores)
    row = [[10.0, 8.0, 8.0, 9.0, 0.3, 0.36, 2.2, 4.0, 4.0, 0.0] + [1.0] + [0.0] * 9]
    a = FCPM(synthetic, kind="gbrt", models=train[:2], loads=[0.0, 80.0]).predict(row)
    b = FCPM(synthetic, kind="gbrt", models=train[:2], loads=[0.0, 80.0]).predict(row)
    assert a == b


def test_a_device_with_a_load_profile_is_predicted_by_fcpm_at_its_current_load(synthetic):
    prof = Profile.from_data({**synthetic, "fcpm": {"model": "additive", "train_models": list(MODELS)}})
    cluster = Cluster("c", (Device("d0", gflops=4, profile="lp.json", profile_data=prof), Device("d1", gflops=4)),
                      Link(50.0))
    cost = ClusterCost(cluster)
    assert isinstance(cost.model_for(cluster.device("d0")), FCPMCost)
    g, _ = trace("resnet18", (3, 64, 64))
    conv = next(l for l in g.layers if l.kind == "conv" and l.flops > 1e7)
    times = [cost.layer_time(conv, 1.0, cluster.with_loads({"d0": x / 100}).device("d0"), 1) for x in LOADS]
    assert all(b > a for a, b in itertools.pairwise(times))  # the load is an input: more load, more time
    st = {"kind": conv.kind, "flops": conv.flops, **layer_features(conv)}
    for t, load in zip(times, LOADS):
        assert t == pytest.approx(law(st, 1.0, load), rel=0.1)
    # and the planners and simulator use it: a plan for the cluster predicts with FCPM
    from edgeslice.planners import make_plan
    from edgeslice.planners._shared.common import evaluate

    busy = cluster.with_loads({"d0": 0.8})
    t_busy = evaluate(make_plan("local", g, busy, cost=ClusterCost(busy)), g, busy, ClusterCost(busy))
    t_idle = evaluate(make_plan("local", g, cluster, cost=cost), g, cluster, cost)
    assert t_busy > 1.5 * t_idle


def test_profile_here_measures_under_a_real_pinned_load():
    prof = profile_here(["alexnet@3x64x64"], [0.0, 50.0], fractions=(1.0, 0.5), min_time_s=0.0, repeat=1)
    Profile.from_data(prof)  # a valid load profile
    m = prof["models"]["alexnet@3x64x64"]
    loads = sorted({s[1] for lay in m["layers"].values() for s in lay["samples"]})
    assert len(loads) == 2 and loads[0] == 0.0 and loads[1] > 0.0  # the generator's share, measured
    assert len(m["whole"]) == 2 and all(t > 0 and not math.isnan(t) for _, t in m["whole"])
    assert prof["loads_set"] == [0.0, 50.0]
