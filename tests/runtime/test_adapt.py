"""``run --adapt`` on the emulated testbed: a device loaded mid-stream, and a device killed mid-stream.

Needs the testbed (root); skipped with the reason elsewhere.  Own tag (``t7``); generators have a bounded life
and everything is taken down by the fixture.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

from edgeslice.cluster.load import parse_cluster
from edgeslice.cost import ClusterCost
from edgeslice.graph import trace
from edgeslice.planners import make_plan
from edgeslice.program.lower import lower
from edgeslice.runtime.adapt import AdaptOptions, adapt
from edgeslice.testbed import load, net

TAG = "t7"
WHY = net.unavailable(TAG)
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"testbed unavailable: {WHY}")
MODEL = ("vgg16", (3, 64, 64))  # the load test: enough compute per request for a load to show
LIGHT = ("resnet18", (3, 128, 128))  # the failure test: 47 MB of weights to write and map per epoch, not 553


def _cluster(cpus: float = 0.25):
    # a quarter CPU each for the load test: three devices and d1's load generator sit well inside two cores
    devs = [{"name": f"d{i}", "gflops": 7.8, "cpus": cpus} for i in range(3)]
    return parse_cluster({"name": "ad3", "devices": devs, "links": {"default": {"bandwidth_mbps": 200}}}, "test")


@pytest.fixture
def tb(request):
    net.down(TAG)
    t, _ = net.up(_cluster(getattr(request, "param", 0.25)), tag=TAG)
    yield t
    net.down(TAG)
    assert not (net.STATE_DIR / f"load-{TAG}.json").exists()


def _plan(tmp_path, model=MODEL, cpus: float = 0.25):
    g, _ = trace(*model)
    c = _cluster(cpus)
    plan = make_plan("aofl", g, c, ClusterCost(c))
    path = tmp_path / "plan.json"
    path.write_text(plan.to_json())
    return g, path


def _flops_on(plan_json: str, graph, device: str) -> int:
    from edgeslice.plan.plan import Plan

    prog = lower(Plan.from_json(plan_json), graph)
    return sum(t.flops for t in prog.computes if t.device == device)


def test_a_device_loaded_mid_stream_gets_less_work(tb, tmp_path):
    g, path = _plan(tmp_path)

    def between(epoch):
        if epoch == 0:  # after the first epoch: d1 turns 70% busy with other work
            load.set_load(tb, "d1", 70, stop_after_s=240)

    res = adapt(str(path), requests=6, options=AdaptOptions(epoch=2, threshold=0.5), testbed=tb,
                out=str(tmp_path / "run"), timeout=60, between=between)
    assert res["done"] == 6 and res["all_verified"] and [e["requests"] for e in res["epochs"]] == [[0, 2], [2, 4], [4, 6]]
    sw = [s for s in res["switches"] if "load d1" in s["why"]]
    assert len(sw) == 1 and sw[0]["at_request"] == 4, res["switches"]
    # the new plan moves work off the loaded device
    before = (tmp_path / "run" / f"plan-{sw[0]['plan_index'] - 1}.json").read_text()
    after = (tmp_path / "run" / f"plan-{sw[0]['plan_index']}.json").read_text()
    assert _flops_on(after, g, "d1") < 0.8 * _flops_on(before, g, "d1")
    # at the figures measured then, the re-made plan is predicted faster than the old one.  (Measured, the epoch
    # after the switch was faster than the one before it in 3 runs of 4 on this shared machine: too noisy to assert
    # on 2 requests of a small model; the figures are in benchmarks/RESULTS.md.)
    assert sw[0]["new_predicted_latency_s"] <= sw[0]["old_predicted_latency_s"]
    assert json.loads((tmp_path / "run" / "adapt.json").read_text())["switches"] == res["switches"]


@pytest.mark.parametrize("tb", [1.0], indirect=True, ids=["one-cpu-each"])  # no load here: workers start faster
def test_a_device_killed_mid_stream_is_dropped_and_the_stream_finishes(tb, tmp_path):
    _, path = _plan(tmp_path, LIGHT, 1.0)
    run = tmp_path / "run"
    killed = {}

    def kill_d2_in_epoch_1():
        pids = run / "epoch-1" / "pids.json"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if pids.exists():
                try:
                    pid = json.loads(pids.read_text())["d2"]
                except (ValueError, KeyError):
                    time.sleep(0.05)
                    continue
                status = run / "epoch-1" / "status-2"
                while time.monotonic() < deadline and not (status.exists() and "request" in status.read_text()):
                    time.sleep(0.02)
                os.kill(pid, signal.SIGKILL)
                killed["pid"] = pid
                return
            time.sleep(0.05)

    threads = []

    def between(epoch):
        if epoch == 0:
            t = threading.Thread(target=kill_d2_in_epoch_1, daemon=True)
            t.start()
            threads.append(t)

    res = adapt(str(path), requests=4, options=AdaptOptions(epoch=2, threshold=10.0), testbed=tb, out=str(run),
                timeout=20, between=between)
    for t in threads:
        t.join(timeout=30)
    assert killed, "the test did not get to kill d2"
    assert res["done"] == 4 and res["all_verified"]
    sw = [s for s in res["switches"] if s["why"] == "device d2 failed"]
    assert len(sw) == 1 and sw[0]["new_devices"] == ["d0", "d1"] and sw[0]["at_request"] == 2
    assert [e["requests"] for e in res["epochs"]] == [[0, 2], [2, 4]]  # the interrupted requests ran again
    assert res["epochs"][-1]["devices"] == ["d0", "d1"]
