"""The planning commands end to end: plan --cluster, simulate, compare, profile, bench."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

EXE = [sys.executable, "-m", "edgeslice.cli"]


def run(*args, cwd, ok=True):
    p = subprocess.run(EXE + list(args), cwd=cwd, capture_output=True, text=True, timeout=600)
    if ok:
        assert p.returncode == 0, p.stderr
    return p


def test_plan_simulate_gantt(tmp_path):
    out = run("plan", "--model", "alexnet", "--input", "3x96x96", "--cluster", "pi4x4", "--planner", "ftp", "--layers", "5",
              "-o", "p.json", "--json", cwd=tmp_path).stdout
    res = json.loads(out)
    assert res["planner"] == "ftp" and res["predicted_latency_s"] > 0 and res["planning_time_s"] >= 0
    sim = json.loads(run("simulate", "p.json", "--json", "--gantt", "t.png", cwd=tmp_path).stdout)
    assert sim["latency_s"] == pytest.approx(res["predicted_latency_s"])
    assert set(sim["per_device"]) == {"pi0", "pi1", "pi2", "pi3"}
    assert all(v["busy_s"] >= 0 and v["idle_s"] >= 0 for v in sim["per_device"].values())
    assert sim["bytes_total"] > 0
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run("simulate", "p.json", "--gantt", "t.html", "--requests", "3", "--interval", "0.05", cwd=tmp_path)
    page = (tmp_path / "t.html").read_text()
    assert "<svg" in page and "s0p0" in page


def test_compare_json_has_every_planner(tmp_path):
    res = json.loads(run("compare", "--model", "vgg16", "--input", "3x64x64", "--cluster", "iot-edge", "--json", cwd=tmp_path).stdout)
    for name in ("local", "edge", "neurosurgeon", "layerwise", "dads", "ftp", "modnn", "aofl", "hvpm"):
        r = res[name]
        assert {"predicted_latency_s", "speedup_vs_local", "bytes_moved", "planning_time_s"} <= set(r), name
    assert res["local"]["speedup_vs_local"] == pytest.approx(1.0)
    assert res["neurosurgeon"]["predicted_latency_s"] <= min(res["local"]["predicted_latency_s"], res["edge"]["predicted_latency_s"]) + 1e-12
    ok = [r["predicted_latency_s"] for r in res.values() if "predicted_latency_s" in r]
    assert res["hvpm"]["predicted_latency_s"] <= min(ok) * (1 + 1e-9)  # never slower than any planner (note hvpm)


def test_profile_feeds_a_cluster(tmp_path):
    run("profile", "--model", "alexnet", "--input", "3x64x64", "--repeat", "1", "-o", "prof.json", cwd=tmp_path)
    prof = json.loads((tmp_path / "prof.json").read_text())
    layer = prof["layers"]["features_0"]
    # measured at several tile sizes and fitted (no claim on the slope: a busy machine makes timings noisy)
    assert len(layer["samples"]) >= 3 and all(math.isfinite(v) for v in layer["fit"])
    (tmp_path / "c.yaml").write_text(
        "name: prof\ndevices:\n  - {name: a, gflops: 5, profile: prof.json}\n  - {name: b, gflops: 5, profile: prof.json, scale: 3}\n"
        "links:\n  default: {bandwidth_mbps: 100}\n")
    from edgeslice.cluster.load import load_cluster
    from edgeslice.cost import ClusterCost
    from edgeslice.graph import trace

    cluster = load_cluster(tmp_path / "c.yaml")
    cost = ClusterCost(cluster)
    g, _ = trace("alexnet", (3, 64, 64))
    l0 = g.layers[0]
    ta, tb = (cost.layer_time(l0, 1.0, cluster.device(n), 1) for n in ("a", "b"))
    assert tb == pytest.approx(3 * ta)
    a, b = layer["fit"]
    assert ta == pytest.approx(a + b)  # measured, not the nominal 5 GFLOPS


def test_bench_simulate(tmp_path):
    res = json.loads(run("bench", "simulate", "--json", "--seconds", "0.5", cwd=tmp_path).stdout)
    assert res["plans_per_s"] > 0 and res["distinct_plans"] > 1


@pytest.mark.parametrize("text,needle", [
    ("devices: [", "YAML syntax error"),
    ("name: x\n", "devices"),
    ("devices:\n  - {name: a, gflops: 1}\n  - {name: a, gflops: 2}\n", "listed twice"),
    ("devices:\n  - {name: a, gflops: 1}\nlinks:\n  default: {bandwidth_mbps: -5}\n", "bandwidth_mbps"),
    ("devices:\n  - {name: a, gflops: 1}\nlinks:\n  default: {bandwidth_mbps: 5}\n  overrides:\n    - {between: [a, zz], bandwidth_mbps: 1}\n", "zz"),
    ("devices:\n  - {name: a, gflops: 1}\nsource: cam\n", "cam"),
])
def test_bad_cluster_files_one_line(tmp_path, text, needle, capsys, monkeypatch):
    from edgeslice.cli import main

    (tmp_path / "bad.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    code = main(["compare", "--model", "alexnet", "--input", "3x64x64", "--cluster", "bad.yaml"])
    assert code == 2
    p = capsys.readouterr()
    err = p.err.strip()
    assert err.count("\n") == 0 and err.startswith("edgeslice: error:") and needle in err and "Traceback" not in p.err


def test_plan_passes_the_fl_planners_options(tmp_path):
    res = json.loads(run("plan", "--model", "alexnet", "--input", "3x64x64", "--cluster", "iot-edge", "--planner", "fl-psomw",
                         "--swarm", "6", "--iterations", "3", "--seed", "5", "--polish", "50", "-o", "p.json", "--json",
                         cwd=tmp_path).stdout)
    opts = json.loads((tmp_path / "p.json").read_text())["planner"]["options"]
    assert res["planner"] == "fl-psomw" and opts["swarm"] == 6 and opts["iterations"] == 3 and opts["seed"] == 5
    p = run("plan", "--model", "alexnet", "--input", "3x64x64", "--cluster", "iot-edge", "--planner", "fl-bf", "--limit", "10",
            "-o", "b.json", cwd=tmp_path, ok=False)
    assert p.returncode == 2 and "over --limit 10" in p.stderr and "fl-psomw" in p.stderr
    run("plan", "--model", "alexnet", "--input", "3x64x64", "--cluster", "iot-edge", "--planner", "fl-bf", "--limit", "1e7",
        "--max-block", "3", "-o", "b.json", cwd=tmp_path)
    assert json.loads((tmp_path / "b.json").read_text())["planner"]["options"]["max_block"] == 3
