"""Background CPU load on testbed devices: started inside the device, measured from its cgroup, gone with `down`.

Needs the testbed (root, namespaces, cgroup v1 cpu + cpuacct); skipped with the reason elsewhere.  Own tag
(``t8``); every generator is started with a bounded life (``stop_after_s``) so it ends by itself whatever the test
does, and the fixture checks nothing survives.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from edgeslice.cli import main
from edgeslice.cluster.load import parse_cluster
from edgeslice.errors import TestbedError
from edgeslice.testbed import load, net

TAG = "t8"
WHY = net.unavailable(TAG)
needs_testbed = pytest.mark.skipif(WHY is not None, reason=f"testbed unavailable: {WHY}")


def _cluster(**extra):
    devs = [{"name": "d0", "gflops": 5, "cpus": 0.2}, {"name": "d1", "gflops": 5, "cpus": 0.2, **extra}]
    return parse_cluster({"name": "ld2", "devices": devs, "links": {"default": {"bandwidth_mbps": 50}}}, "test")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return load._running(pid)


@pytest.fixture
def clean():
    net.down(TAG)
    yield
    net.down(TAG)
    assert not (net.STATE_DIR / f"testbed-{TAG}.json").exists()
    assert not (net.CPUACCT_ROOT / f"edgeslice-{TAG}").exists()
    assert not (net.STATE_DIR / f"load-{TAG}.json").exists()


def test_schedule_parsing_names_what_is_wrong():
    assert load.parse_schedule(40) == ((0.0, 40.0),)
    assert load.parse_schedule([[10, 80], [0, 0]]) == ((0.0, 0.0), (10.0, 80.0))
    for bad, words in ((120, "between 0 and 100"), ([], "a percent"), ([[1]], "step 0 must be"),
                       ([[-1, 5]], "time must be seconds"), (True, "a percent")):
        with pytest.raises(TestbedError, match=words):
            load.parse_schedule(bad)


@needs_testbed
def test_a_load_runs_inside_the_device_is_measured_and_goes_with_down(clean):
    tb, _ = net.up(_cluster(), tag=TAG)
    assert tb.cpuacct or tb.cgroup_mode == "v2"
    pid = load.set_load(tb, "d1", 50, stop_after_s=60)
    assert _alive(pid)
    # it is in d1's cgroup (so under d1's quota), not d0's
    assert pid in {int(x) for x in (tb.cgroup("d1") / "cgroup.procs").read_text().split()}
    assert load.generators(TAG)["d1"]["schedule"] == [[0.0, 50.0]]
    time.sleep(0.5)
    m = load.measure(tb, window_s=1.0)
    assert m["d0"] == 0.0 and m["d1"] > 25.0  # accounted to d1 only (the figure itself is not asserted: shared host)
    st = net.status(TAG)
    row = {d["device"]: d for d in st["devices"]}
    assert row["d1"]["load_set"] == [[0.0, 50.0]] and row["d0"]["load_set"] is None
    assert row["d1"]["load_measured"] is not None
    # a new load replaces the old generator; 0 stops it
    pid2 = load.set_load(tb, "d1", 20, stop_after_s=60)
    assert pid2 != pid and not _alive(pid) and _alive(pid2)
    assert load.set_load(tb, "d1", 0) is None and not _alive(pid2) and "d1" not in load.generators(TAG)
    pid3 = load.set_load(tb, "d0", 30, stop_after_s=60)
    net.down(TAG)
    assert not _alive(pid3)  # `down` kills everything in the devices' cgroups, the generators too


@needs_testbed
def test_cli_load_and_a_cluster_file_schedule(clean, tmp_path, capsys):
    f = tmp_path / "c.yaml"
    f.write_text(json.dumps({"name": "ld2", "devices": [{"name": "d0", "gflops": 5, "cpus": 0.2},
                                                         {"name": "d1", "gflops": 5, "cpus": 0.2, "load": 40}],
                             "links": {"default": {"bandwidth_mbps": 50}}}))
    assert main(["testbed", "up", str(f), "--tag", TAG, "--json"]) == 0
    up = json.loads(capsys.readouterr().out)
    pid = up["load_generators"]["d1"]
    assert list(up["load_generators"]) == ["d1"] and _alive(pid)
    try:
        assert main(["testbed", "load", "d0", "25", "--tag", TAG, "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["device"] == "d0" and out["schedule"] == [[0.0, 25.0]] and _alive(out["pid"])
        assert main(["testbed", "load", "d0", "0", "--tag", TAG, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["pid"] is None and not _alive(out["pid"])
        assert main(["testbed", "load", "d7", "10", "--tag", TAG]) == 2
        assert "device 'd7' is not on the testbed" in capsys.readouterr().err
    finally:
        net.down(TAG)
    assert not _alive(pid)
