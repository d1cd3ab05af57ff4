"""The runtime: real worker processes exchanging tensors over torch.distributed (gloo) on loopback.

Every run is compared with the whole model on the same inputs.  Faults: a
killed worker and a stopped one are reported by name within the timeout, and
no worker process survives.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from edgeslice.planners import make_plan
from edgeslice.runtime.launch import run_plan


def _plan(traced, tmp_path, spec, shape, planner="random", devices=3, name="plan.json", **opts):
    g, _ = traced(spec, shape)
    plan = make_plan(planner, g, devices=devices, **opts)
    path = tmp_path / name
    plan.save(path)
    return plan, str(path)


def _assert_gone(pids, tries: int = 50) -> None:
    """Every process in ``pids`` has ended (waiting up to ``tries`` × 0.1 s for each)."""
    for pid in pids:
        for _ in range(tries):
            if not _alive(pid):
                break
            time.sleep(0.1)
        assert not _alive(pid), f"worker {pid} survived"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "zombie" not in f.read().lower()
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("spec,shape,planner,opts", [
    ("vgg16", (3, 32, 32), "ftp", {"n": 2, "m": 2}),
    ("resnet50", (3, 64, 64), "random", {"seed": 11}),
    ("googlenet", (3, 64, 64), "random", {"seed": 5}),
    ("resnet18", (3, 48, 48), "random", {"seed": 3}),
])
def test_multiprocess_run_matches_the_model(traced, tmp_path, spec, shape, planner, opts):
    plan, path = _plan(traced, tmp_path, spec, shape, planner, devices=4 if planner == "ftp" else 3, **opts)
    res = run_plan(path, requests=2, out=str(tmp_path / "run"), timeout=60)
    assert res["rel_err"] <= 1e-5, res["rel_err"]
    used = {p.device for s in plan.segments for p in s.parts}
    assert sum(res["bytes_sent"].values()) == sum(res["bytes_received"].values()) > 0
    assert len(used) > 1
    assert all(v > 0 for v in res["peak_mem_mb"].values())
    assert len(res["latencies_s"]) == 2 and res["predicted_latency_s"] > 0


def test_random_plans_mixing_spatial_and_channel_cuts(traced, tmp_path):
    g, _ = traced("alexnet", (3, 96, 80))
    seen = set()
    for seed in range(40):
        plan = make_plan("random", g, devices=3, seed=seed)
        cuts = {s.cut for s in plan.segments}
        if {"spatial", "channel"} <= cuts and cuts - seen:
            seen |= cuts
            path = tmp_path / f"p{seed}.json"
            plan.save(path)
            res = run_plan(str(path), requests=1, out=str(tmp_path / f"run{seed}"))
            assert res["rel_err"] <= 1e-5
        if {"spatial", "channel", "input"} <= seen:
            break
    assert {"spatial", "channel", "input"} <= seen


def test_pipelining_with_sink_apart_from_source(traced, tmp_path):
    g, _ = traced("alexnet", (3, 96, 96))
    plan = replace(make_plan("random", g, devices=3, seed=8), sink="d2")
    path = tmp_path / "p.json"
    plan.save(path)
    res = run_plan(str(path), requests=5, inflight=2, out=str(tmp_path / "run"))
    assert res["rel_err"] <= 1e-5 and len(res["latencies_s"]) == 5 and res["throughput_rps"] > 0


def test_worker_refuses_a_plan_for_another_model_or_cluster(traced, tmp_path):
    _, path = _plan(traced, tmp_path, "alexnet", (3, 64, 64), seed=1)
    base = [sys.executable, "-m", "edgeslice.runtime.worker", "--plan", path, "--rank", "0", "--world", "3", "--out", str(tmp_path)]
    p = subprocess.run(base + ["--cluster", "pi4x4"], capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "not in cluster 'pi4x4'" in p.stderr and "Traceback" not in p.stderr
    p = subprocess.run(base + ["--model", "resnet18"], capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "made for model 'alexnet'" in p.stderr and "Traceback" not in p.stderr


def _start_long_run(traced, tmp_path, timeout):
    _, path = _plan(traced, tmp_path, "alexnet", (3, 96, 96), "ftp", devices=3, n=3, m=1)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "edgeslice.cli", "run", path, "--requests", "5000", "--timeout", str(timeout), "--out", str(out)]
    launcher = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:  # wait until the workers are mid-run
        st = [(out / f"status-{r}") for r in range(3)]
        if all(s.exists() and "request" in s.read_text() for s in st):
            break
        assert launcher.poll() is None, launcher.communicate()
        time.sleep(0.2)
    pids = json.loads((out / "pids.json").read_text())
    return launcher, pids


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_or_sighup_of_run_leaves_no_worker(traced, tmp_path, sig):
    launcher, pids = _start_long_run(traced, tmp_path, 30)
    launcher.send_signal(sig)
    try:
        _, err = launcher.communicate(timeout=60)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 128 + sig and "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"edgeslice: terminated by signal {int(sig)}; every worker was ended"
    _assert_gone(pids.values(), tries=50)


def test_a_worker_dies_with_its_launcher_even_when_the_launcher_is_killed(traced, tmp_path):
    launcher, pids = _start_long_run(traced, tmp_path, 30)
    launcher.kill()  # SIGKILL: no handler runs; the kernel ends the workers (PR_SET_PDEATHSIG)
    launcher.communicate(timeout=60)
    _assert_gone(pids.values(), tries=100)


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_a_dead_or_silent_worker_is_named_and_nothing_survives(traced, tmp_path, how):
    timeout = 6
    launcher, pids = _start_long_run(traced, tmp_path, timeout)
    victim = pids["d1"]
    t0 = time.monotonic()
    os.kill(victim, signal.SIGKILL if how == "kill" else signal.SIGSTOP)
    try:
        _, err = launcher.communicate(timeout=timeout + 60)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    elapsed = time.monotonic() - t0
    assert launcher.returncode != 0
    line = err.strip().splitlines()[-1]
    assert line.startswith("edgeslice: error:") and "Traceback" not in err
    if how == "kill":
        assert "'d1'" in line and "SIGKILL" in line and "request" in line
    else:
        assert "'d1'" in line and "stopped answering" in line  # found at the end of the chain of waits
        assert elapsed < timeout + 30
    _assert_gone(pids.values(), tries=50)


def test_run_uses_the_cluster_the_plan_carries(tmp_path, capsys, monkeypatch):
    """A local4-named file with other speeds and cpus: the launcher, the workers and the prediction all use it."""
    from edgeslice.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text(
        "name: local4\ndevices:\n  - {name: d0, gflops: 4, cpus: 0.45}\n  - {name: d1, gflops: 25, cpus: 2}\n"
        "links:\n  default: {bandwidth_mbps: 300, latency_ms: 0.05}\n")
    assert main(["plan", "--model", "alexnet", "--input", "3x64x64", "--cluster", "mine.yaml", "--planner", "aofl",
                 "-o", "p.json", "--json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    (tmp_path / "mine.yaml").unlink()  # nothing may look the cluster up by name or file again
    code = main(["run", "p.json", "--json", "--out", "run", "--timeout", "60"])
    out = capsys.readouterr()
    assert code == 0, out.err
    res = json.loads(out.out)
    assert res["ok"] and res["devices"] == ["d0", "d1"]
    assert res["predicted_latency_s"] == pytest.approx(planned["predicted_latency_s"], rel=1e-12, abs=0)
    reports = [json.loads((tmp_path / "run" / f"report-{r}.json").read_text()) for r in range(2)]
    threads = {r["device"]: r["threads"] for r in reports}
    assert threads == {"d0": 1, "d1": 2}  # d1's cpus: 2 from the plan's cluster (the bundled local4 says 0.45)
