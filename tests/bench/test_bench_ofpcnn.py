"""``bench ofpcnn`` end to end on predicted figures, with synthetic load profiles (no testbed, no measurement)."""

from __future__ import annotations

import json

from edgeslice.bench.ofpcnn import bench_ofpcnn, chart
from edgeslice.cost.learned.collect import LOAD_PROFILE_FORMAT
from edgeslice.cost.profiled import layer_features
from edgeslice.graph import trace

LOADS = (0.0, 40.0, 80.0)


def _profile(device: str) -> dict:
    g, _ = trace("alexnet", (3, 64, 64))
    layers = {}
    for layer in g.layers:
        st = {"kind": layer.kind, "flops": layer.flops, **layer_features(layer)}
        t0 = lambda f: 1e-4 + layer.flops * f / 3e9 + st["out_elems"] * f * 2e-9  # noqa: E731
        st["samples"] = [[f, load, t0(f) / (1.0 - load / 100.0) ** 0.6] for load in LOADS for f in (1.0, 0.5, 0.25)]
        layers[layer.name] = st
    return {"format": LOAD_PROFILE_FORMAT, "version": 1, "device": device, "cpus": 0.25, "loads_set": list(LOADS),
            "effective_gflops": 3.0, "batch": 1, "fcpm": {"model": "additive"},
            "models": {"alexnet@3x64x64": {"model": "alexnet", "input": [3, 64, 64], "batch": 1, "layers": layers,
                                           "whole": []}}}


def test_bench_ofpcnn_predicted_rows_and_summary(tmp_path):
    for d in ("d0", "d1", "d2", "d3"):
        (tmp_path / f"loadprofile-{d}.json").write_text(json.dumps(_profile(d)))
    res = bench_ofpcnn(model="alexnet", input_shape=(3, 64, 64), clusters=("testbed4", "testbed-hetero"), levels=(60.0,),
                       profiles=str(tmp_path), planners=("hvpm", "aofl", "modnn", "local"), out=str(tmp_path / "out"))
    rows = res["rows"]
    for r in rows:
        assert {"cluster", "loads", "planner", "cost", "predicted_latency_s", "measured_latency_s", "verified"} <= set(r)
        assert r["measured_latency_s"] is None and r["verified"] is None and r["predicted_latency_s"] > 0
    # per scenario: hvpm planned with FCPM at the loads, and every planner load-blind
    loaded = [r for r in rows if r["cluster"] == "testbed4" and r["loads"] == {"d1": 60.0}]
    assert sorted((r["planner"], r["cost"]) for r in loaded) == [
        ("aofl", "load-blind"), ("hvpm", "fcpm"), ("hvpm", "load-blind"), ("local", "load-blind"), ("modnn", "load-blind")]
    hv = next(r for r in loaded if r["cost"] == "fcpm")
    local = next(r for r in loaded if r["planner"] == "local")
    assert hv["predicted_latency_s"] <= local["predicted_latency_s"] * (1 + 1e-9)
    # a load-blind plan is judged at the real load: more than its planner believed where it uses d1
    modnn = next(r for r in loaded if r["planner"] == "modnn")
    assert modnn["predicted_latency_s"] > modnn["blind_predicted_latency_s"]
    # the hetero cluster has no load profiles of its own: it borrows them, and says so
    assert {r["profile"] for r in rows if r["cluster"] == "testbed-hetero"} == {"borrowed"}
    s = next(s for s in res["summary"] if s["cluster"] == "testbed4" and s["loads"] == {"d1": 60.0})
    assert s["speedup_vs_best_other"] == s["best_other_latency_s"] / s["hvpm_fcpm_latency_s"]
    chart(res, str(tmp_path / "c.png"))
    assert (tmp_path / "c.png").stat().st_size > 1000
