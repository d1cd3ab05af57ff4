"""The emulated testbed: namespaces, shaped per-pair links, CPU quotas and pinning — made, used, removed.

Tests that build a testbed need root, iproute2 and a cgroup CPU controller;
where those are missing they are skipped with the reason.  They use their own
tag (``t9``), so a user's testbed is never touched, and every test checks that
nothing it made survives.  Every process a test starts ends by itself (a
bounded sleep, a socket timeout) and is waited for, whatever the test's outcome.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edgeslice.cli import main
from edgeslice.cluster.load import parse_cluster
from edgeslice.errors import TestbedError
from edgeslice.testbed import cgroups, net

TAG = "t9"


WHY = net.unavailable(TAG)
needs_testbed = pytest.mark.skipif(WHY is not None, reason=f"testbed unavailable: {WHY}")


def _cluster(bw=(20, 40), cpus=0.2, latency=0.0, name="tb3", n=3):
    devs = [{"name": f"d{i}", "gflops": 5, "cpus": cpus} for i in range(n)]
    return parse_cluster({"name": name, "devices": devs,
                          "links": {"default": {"bandwidth_mbps": bw[0], "latency_ms": latency},
                                    "overrides": [{"between": ["d0", "d1"], "bandwidth_mbps": bw[1]}]}}, "test")


def _leftovers() -> list[str]:
    left = [ns for ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
            if ns.startswith(f"es{TAG}-")]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    left += [w for w in links.split() if w.startswith(f"es{TAG}")]
    left += [str(p) for p in (net.CG1_ROOT / f"edgeslice-{TAG}", net.CPUSET_ROOT / f"edgeslice-{TAG}",
                              net.CPUACCT_ROOT / f"edgeslice-{TAG}", net.STATE_DIR / f"testbed-{TAG}.json") if p.exists()]
    return left


@pytest.fixture
def clean():
    net.down(TAG)
    yield
    net.down(TAG)
    assert _leftovers() == []


@contextlib.contextmanager
def _started(argv, **kw):
    """A process the test starts; whatever happens, it is ended and waited for (no zombie, no straggler)."""
    p = subprocess.Popen(argv, **kw)
    try:
        yield p
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
        for f in (p.stdout, p.stderr):
            if f:
                f.close()


SLEEP = "import time; print('in', flush=True); time.sleep(60)"  # ends by itself if nothing ends it


# ---- refusals that need no root -------------------------------------------------------------

def test_refuses_without_root_naming_the_capability(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(TestbedError, match="needs root.*CAP_NET_ADMIN"):
        net.preflight()


def test_refuses_without_a_cpu_controller(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(net, "CG1_ROOT", tmp_path / "v1")
    monkeypatch.setattr(net, "CG2_ROOT", tmp_path / "v2")
    with pytest.raises(TestbedError, match="no cgroup CPU controller"):
        net.preflight()


def test_cli_refusal_is_one_line(monkeypatch, capsys):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["testbed", "up", "testbed4", "--tag", TAG]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs root" in err[0]


def test_bad_tag_and_bad_pin():
    with pytest.raises(TestbedError, match="tag"):
        net.down("no/way")
    with pytest.raises(TestbedError, match="this machine has CPUs"):
        net._pin_cpus(_cluster(), "999")


def test_a_group_that_cannot_go_is_named_and_keeps_only_its_parents(tmp_path):
    base = tmp_path / "edgeslice-x"
    for d in ("a", "b/c", "d"):
        (base / d).mkdir(parents=True)
    (base / "b" / "c" / "stray").write_text("")  # rmdir refuses it, as the kernel refuses a busy group
    gone, left = cgroups.remove(base, deadline=0.0)
    assert sorted(p.relative_to(base).as_posix() for p in gone) == ["a", "d"]
    assert len(left) == 1 and left[0].startswith(f"cgroup {base / 'b' / 'c'} (")
    assert (base / "b" / "c").is_dir()


def test_run_testbed_without_a_testbed_says_how(clean, tmp_path, capsys, traced):
    if WHY is not None:
        pytest.skip(WHY)
    from edgeslice.planners import make_plan

    g, _ = traced("alexnet", (3, 64, 64))
    plan = make_plan("local", g, devices=2)
    p = tmp_path / "p.json"
    plan.save(p)
    assert main(["run", str(p), "--cluster", "local4", "--testbed", "--tag", TAG]) == 2
    assert "no testbed is up" in capsys.readouterr().err


# ---- building, using, removing ---------------------------------------------------------------

@needs_testbed
def test_up_shapes_every_pair_pins_and_is_idempotent(clean):
    c = _cluster()
    tb, made = net.up(c, tag=TAG)
    assert made and tb.devices == ("d0", "d1", "d2") and tb.cpuset == "0"  # 0.6 CPU in all: one host CPU
    st = net.status(TAG)
    assert st["up"] and st["cluster"] == "tb3" and st["bridge"]
    by = {d["device"]: d for d in st["devices"]}
    assert set(by) == {"d0", "d1", "d2"}
    for name, d in by.items():
        assert d["address"] == f"10.77.0.{int(name[1]) + 1}/24"
        assert d["cpus"] == pytest.approx(0.2) and d["cpuset"] == "0"
        rates = {l["peer"]: l["rate"] for l in d["links"]}
        want = {p: ("40Mbit" if {name, p} == {"d0", "d1"} else "20Mbit") for p in by if p != name}
        assert rates == want
    assert net.up(c, tag=TAG)[1] is False  # the same cluster again: nothing rebuilt
    c2 = _cluster(bw=(10, 10), name="other", n=2)
    tb2, made2 = net.up(c2, tag=TAG)  # another cluster replaces it
    assert made2 and tb2.devices == ("d0", "d1")
    assert {d["device"] for d in net.status(TAG)["devices"]} == {"d0", "d1"}
    gone = net.down(TAG)
    assert any("namespace" in g for g in gone) and _leftovers() == []
    assert net.down(TAG) == []  # nothing left to remove


@needs_testbed
def test_down_after_a_crash_finds_everything_by_name(clean):
    tb, _ = net.up(_cluster(), tag=TAG)
    with _started(tb.wrap("d1", [sys.executable, "-c", SLEEP]), stdout=subprocess.PIPE, text=True) as p:
        assert p.stdout.readline() == "in\n"  # it is inside the device: in its cgroups and its namespace
        (net.STATE_DIR / f"testbed-{TAG}.json").unlink()  # as if `up` had crashed before writing its state
        assert net.current(TAG) is None
        gone = net.down(TAG)
        assert p.wait(timeout=30) == -signal.SIGKILL  # the process left in the device was killed
    assert f"namespace es{TAG}-d1" in gone and f"cgroup {net.CG1_ROOT / f'edgeslice-{TAG}' / 'd1'}" in gone
    assert _leftovers() == []


@needs_testbed
def test_down_while_processes_are_still_entering_leaves_nothing(clean):
    tb, _ = net.up(_cluster(), tag=TAG)
    argv = [sys.executable, "-c", SLEEP]
    with contextlib.ExitStack() as stack:  # started and, at once, the testbed taken down under them
        ps = [stack.enter_context(_started(tb.wrap(d, argv, defer_cgroups=defer), stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL))
              for d, defer in (("d0", False), ("d1", True), ("d2", False))]
        net.down(TAG)
        assert _leftovers() == []
        assert all(p.wait(timeout=30) != 0 for p in ps)  # killed, or refused entry: none runs on


@needs_testbed
def test_down_names_what_it_could_not_remove(clean):
    tb, _ = net.up(_cluster(), tag=TAG)
    roots = [net.CG1_ROOT / f"edgeslice-{TAG}", net.CPUSET_ROOT / f"edgeslice-{TAG}"]
    if tb.cpuacct:  # the device's CPU accounting (its measured load) is a group of its own too
        roots.append(net.CPUACCT_ROOT / f"edgeslice-{TAG}")
    with _started(tb.wrap("d1", [sys.executable, "-c", SLEEP]), stdout=subprocess.PIPE, text=True) as p:
        assert p.stdout.readline() == "in\n"
        with pytest.MonkeyPatch.context() as mp, pytest.raises(net.LeftoversError) as err:
            mp.setattr(os, "kill", lambda pid, sig: None)  # a process that will not die
            net.down(TAG, wait_s=0.2)
        msg = str(err.value)
        for root in roots:
            assert f"cgroup {root / 'd1'} (processes {p.pid} are still in it)" in msg
        assert f"namespace es{TAG}-d1 (its name is removed, but processes {p.pid} are still in it)" in msg
        assert len(err.value.left) == len(roots) + 1 and f"down --tag {TAG}" in msg
        assert f"cgroup {roots[0] / 'd0'}" in err.value.gone and f"link es{TAG}v1" in err.value.gone
        assert net.down(TAG) == [f"cgroup {g}" for root in roots for g in (root / "d1", root)]  # now it can go
        assert p.wait(timeout=30) == -signal.SIGKILL


@needs_testbed
def test_processes_run_inside_their_device_and_talk_over_its_link(clean):
    tb, _ = net.up(_cluster(cpus=0.3), tag=TAG)
    here = os.readlink("/proc/self/ns/net")
    code = "import os; print(os.readlink('/proc/self/ns/net')); print(open('/proc/self/cgroup').read())"
    out = subprocess.run(tb.wrap("d2", [sys.executable, "-c", code]), capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0] != here
    assert f"edgeslice-{TAG}/d2" in out
    # both ends give up by themselves (socket timeouts); the server listens before the client starts
    server = ("import socket\n"
              "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.settimeout(60)\n"
              "s.bind(('0.0.0.0', 5999)); s.listen(1)\n"
              "print('listening', flush=True)\n"
              "c, a = s.accept(); c.settimeout(60); d = b''\n"
              "while len(d) < 100000:\n"
              "    b = c.recv(65536)\n"
              "    if not b: break\n"
              "    d += b\n"
              "c.sendall(str(len(d)).encode() + b' from ' + a[0].encode())")
    client = ("import socket; c = socket.create_connection(('10.77.0.2', 5999), timeout=60); "
              "c.sendall(b'x' * 100000); print(c.recv(100).decode())")
    with _started(tb.wrap("d1", [sys.executable, "-c", server]), stdout=subprocess.PIPE, text=True) as srv:
        assert srv.stdout.readline() == "listening\n"
        res = subprocess.run(tb.wrap("d0", [sys.executable, "-c", client]), capture_output=True, text=True, timeout=120)
        assert srv.wait(timeout=120) == 0
    assert res.stdout.strip() == "100000 from 10.77.0.1"


@needs_testbed
def test_latency_the_kernel_cannot_add_is_reported(clean):
    tb, _ = net.up(_cluster(latency=5.0), tag=TAG)
    qd = subprocess.run(["tc", "-n", tb.namespace("d0"), "qdisc", "show", "dev", net.IFACE], capture_output=True,
                        text=True).stdout
    if "netem" in qd:
        assert not any("not emulated" in n for n in tb.notes)
    else:
        assert any("latency (5 ms) is not emulated" in n for n in tb.notes)


@needs_testbed
def test_a_plan_runs_inside_the_testbed_with_the_same_output(clean, tmp_path, traced):
    from edgeslice.planners import make_plan
    from edgeslice.runtime.launch import run_plan

    cfile = tmp_path / "c.yaml"
    cfile.write_text("name: tbrun\ndevices:\n" + "".join(f"  - {{name: d{i}, gflops: 5, cpus: 0.3}}\n" for i in range(3))
                     + "links:\n  default: {bandwidth_mbps: 200}\n")
    from edgeslice.cluster.load import load_cluster

    c = load_cluster(cfile)
    tb, _ = net.up(c, tag=TAG)
    g, _ = traced("alexnet", (3, 64, 64))
    plan = make_plan("random", g, c, seed=4)
    path = tmp_path / "plan.json"
    plan.save(path)
    res = run_plan(str(path), cluster=str(cfile), requests=2, testbed=tb, out=str(tmp_path / "run"), timeout=60)
    assert res["ok"], res["rel_err"]
    here = os.readlink("/proc/self/ns/net")
    spaces = {d: w["netns"] for d, w in res["where"].items()}
    assert here not in spaces.values() and len(set(spaces.values())) == len(plan.devices)
    for d, w in res["where"].items():
        assert w["cpu_cgroup"].endswith(f"edgeslice-{TAG}/{d}")  # joined after loading, before running


@needs_testbed
def test_calibration_writes_a_cluster_of_measured_devices_and_links(clean, tmp_path):
    from edgeslice.cluster.load import load_cluster
    from edgeslice.testbed.calibrate import calibrate

    c = _cluster(bw=(100, 100), cpus=0.3, n=2)
    tb, _ = net.up(c, tag=TAG)
    path = calibrate(tb, c, "alexnet", (3, 64, 64), 1, outdir=tmp_path / "cal", min_time_s=0.005, repeat=1)
    cal = load_cluster(path)
    assert cal.names == c.names and cal.source == c.source
    for d in cal.devices:
        prof = json.loads(Path(d.profile).read_text())
        assert prof["model"] == "alexnet" and prof["min_time_s"] == 0.005 and d.cpus == 0.3
        assert d.gflops == pytest.approx(prof["effective_gflops"], rel=1e-3)
    pairs = json.loads((tmp_path / "cal" / "links.json").read_text())
    assert {(p["src"], p["dst"]) for p in pairs} == {("d0", "d1"), ("d1", "d0")}
    assert all(len(p["samples"]) == 4 and p["rate_mbps"] > 0 for p in pairs)
    assert cal.link("d0", "d1").bandwidth_mbps == pytest.approx(sum(p["rate_mbps"] for p in pairs) / 2, rel=1e-3)
    stamp = path.stat().st_mtime_ns
    assert calibrate(tb, c, "alexnet", (3, 64, 64), 1, outdir=tmp_path / "cal", min_time_s=0.005) == path
    assert path.stat().st_mtime_ns == stamp  # reused, not measured again


@needs_testbed
def test_cli_up_status_bench_down(clean, tmp_path, capsys):
    yaml_path = tmp_path / "c.yaml"
    # most of a core each: the profile and the runs take a third of the time they take under 0.3-CPU quotas
    yaml_path.write_text("name: clitb\ndevices:\n  - {name: a, gflops: 5, cpus: 0.9}\n  - {name: b, gflops: 5, cpus: 0.9}\n"
                         "links:\n  default: {bandwidth_mbps: 100}\n")
    assert main(["testbed", "up", str(yaml_path), "--tag", TAG]) == 0
    assert main(["testbed", "up", str(yaml_path), "--tag", TAG]) == 0
    assert "already up" in capsys.readouterr().out
    assert main(["testbed", "status", "--json", "--tag", TAG]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["cluster"] == "clitb" and [d["device"] for d in st["devices"]] == ["a", "b"]
    assert main(["bench", "testbed", "--cluster", str(yaml_path), "--model", "alexnet", "--input", "3x64x64",
                 "--planners", "local,ftp", "--repeat", "2", "--calibration", str(tmp_path / "cal"),
                 "--out", str(tmp_path / "bench"), "--json", "--tag", TAG]) == 0
    res = json.loads(capsys.readouterr().out)
    assert list(res) == ["local", "ftp"]
    for r in res.values():
        assert r["output_ok"] and len(r["measured_latencies_s"]) == 2
        assert {"predicted_latency_s", "measured_latency_s", "speedup_vs_local"} <= set(r)
    assert res["local"]["speedup_vs_local"] == 1.0
    assert (tmp_path / "cal" / "bench" / "bench-testbed.png").stat().st_size > 0  # the default chart, its folder made
    assert main(["testbed", "down", "--tag", TAG]) == 0
    assert "removed" in capsys.readouterr().out
