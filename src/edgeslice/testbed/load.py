"""Background CPU load on the testbed's devices: start, change and stop the generators, and measure the load.

``edgeslice testbed load DEVICE PERCENT`` (and a device's ``load:`` schedule in the
cluster file, started by ``testbed up``) runs :mod:`edgeslice.testbed.loadgen`
inside that device — its cgroups and namespace, like any process on it — so the
load competes with inference for the device's own CPU quota, not the host's.
Each generator's pid and schedule are kept in ``/run/edgeslice/load-<tag>.json``;
a generator lives in the device's cgroup, so ``testbed down`` (which kills
everything in the testbed's cgroups) never leaves one behind, state file or not.

The load a device *carries* is measured from its cgroup's own accounting
(v1 ``cpuacct.usage``, v2 ``cpu.stat`` ``usage_usec``): CPU time used over a
window ÷ (window × the device's quota), in percent of the device.

A schedule is ``((t_s, percent), ...)`` from when the generator starts (the last
step holds):

>>> parse_schedule(60)
((0.0, 60.0),)
>>> parse_schedule([[0, 0], [10, 80]])
((0.0, 0.0), (10.0, 80.0))
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from edgeslice.errors import TestbedError
from edgeslice.testbed import procs
from edgeslice.testbed.net import STATE_DIR, Testbed


def parse_schedule(value, where: str = "load") -> tuple[tuple[float, float], ...]:
    """A percent (constant) or ``[[t_s, percent], ...]`` as a sorted schedule (a TestbedError saying what is wrong)."""
    def pct(v, at):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 100:
            raise TestbedError(f"{where}: {at} must be a percent of the device's CPU between 0 and 100, got {v!r}")
        return float(v)

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return ((0.0, pct(value, "the load")),)
    if not isinstance(value, (list, tuple)) or not value:
        raise TestbedError(f"{where}: give a percent (e.g. 60) or steps [[t_s, percent], ...], got {value!r}")
    steps = []
    for i, s in enumerate(value):
        if not (isinstance(s, (list, tuple)) and len(s) == 2):
            raise TestbedError(f"{where}: step {i} must be [t_s, percent], got {s!r}")
        t, v = s
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t < float("inf"):
            raise TestbedError(f"{where}: step {i}'s time must be seconds >= 0, got {t!r}")
        steps.append((float(t), pct(v, f"step {i}'s load")))
    return tuple(sorted(steps))


def _state(tag: str) -> Path:
    return STATE_DIR / f"load-{tag}.json"


def _read(tag: str) -> dict:
    try:
        return json.loads(_state(tag).read_text())
    except (OSError, ValueError):
        return {}


def _write(tag: str, data: dict) -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    if data:
        tmp = _state(tag).with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, _state(tag))
    else:
        _state(tag).unlink(missing_ok=True)


def _running(pid: int) -> bool:
    """True once ``pid`` *is* the generator: python running the module (not the shell or ``ip netns exec`` on the
    way to it, whose arguments name it too: they run before the process has joined the device's cgroups)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return cmd[1:3] == [b"-m", b"edgeslice.testbed.loadgen"] and procs._alive(pid)


def generators(tag: str = "0") -> dict:
    """The generators running on testbed ``tag``: device → ``{"pid", "schedule", "started"}`` (stale entries dropped)."""
    return {dev: g for dev, g in _read(tag).items() if isinstance(g, dict) and _running(int(g.get("pid", -1)))}


def stop(tb: Testbed, device: str, *, wait_s: float = 5.0) -> bool:
    """Stop ``device``'s generator (True if one was running)."""
    tb.index(device)
    data = _read(tb.tag)
    g = data.pop(device, None)
    _write(tb.tag, data)
    if not g or not _running(int(g["pid"])):
        return False
    pid = int(g["pid"])
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    left = procs.wait_exited({pid}, time.monotonic() + wait_s)
    if left:
        raise TestbedError(f"the load generator of device {device!r} (pid {pid}) did not exit; `edgeslice testbed down` "
                           "removes everything on the testbed")
    return True


def start(tb: Testbed, device: str, schedule, *, cpus: float | None = None, period_ms: float = 20.0,
          stop_after_s: float | None = None) -> int:
    """Start a generator following ``schedule`` inside ``device`` (replacing its old one); return its pid.

    ``cpus`` is the device's quota the percent is of (default: what the testbed set; 1.0 when unlimited);
    ``stop_after_s`` ends it by itself after that long (tests; default: it runs until stopped).
    """
    sched = parse_schedule(schedule, f"load of device {device!r}")
    stop(tb, device)
    if cpus is None:
        cpus = tb.cpus[tb.index(device)] or 1.0
    argv = [sys.executable, "-m", "edgeslice.testbed.loadgen", "--schedule", json.dumps([list(s) for s in sched]),
            "--cpus", str(cpus), "--period-ms", str(period_ms)]
    if stop_after_s is not None:
        argv += ["--stop-after", str(stop_after_s)]
    env = {**os.environ, **tb.env()}
    p = subprocess.Popen(tb.wrap(device, argv), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    data = _read(tb.tag)
    data[device] = {"pid": p.pid, "schedule": [list(s) for s in sched], "cpus": cpus, "started": time.time()}
    _write(tb.tag, data)
    # the shell joins the cgroups, then execs into the namespace and python: wait until it is the generator
    deadline = time.monotonic() + 10.0
    while not _running(p.pid):
        if p.poll() is not None:
            raise TestbedError(f"the load generator of device {device!r} exited at once (status {p.returncode}); "
                               "is the testbed up? (`edgeslice testbed status`)")
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    return p.pid


def set_load(tb: Testbed, device: str, schedule, *, stop_after_s: float | None = None) -> int | None:
    """Give ``device`` the load ``schedule`` (a percent, or steps); 0 stops its generator.  Returns the pid (None: none)."""
    sched = parse_schedule(schedule, f"load of device {device!r}")
    if all(v == 0 for _, v in sched):
        stop(tb, device)
        return None
    return start(tb, device, sched, stop_after_s=stop_after_s)


def stop_all(tb: Testbed) -> list[str]:
    """Stop every generator on the testbed; return the devices that had one."""
    return [d for d in list(_read(tb.tag)) if d in tb.devices and stop(tb, d)]


def _usage_s(tb: Testbed, device: str) -> float | None:
    cg = tb.cpuacct_group(device)
    if cg is None:
        return None
    try:
        if tb.cgroup_mode == "v2":
            for line in (cg / "cpu.stat").read_text().splitlines():
                k, v = line.split()
                if k == "usage_usec":
                    return int(v) / 1e6
            return None
        return int((cg / "cpuacct.usage").read_text()) / 1e9
    except (OSError, ValueError):
        return None


def measure(tb: Testbed, devices=None, *, window_s: float = 0.5) -> dict[str, float | None]:
    """Each device's measured load over ``window_s``: percent of its quota its cgroup used (None: no accounting)."""
    devices = list(devices if devices is not None else tb.devices)
    t0 = time.monotonic()
    before = {d: _usage_s(tb, d) for d in devices}
    if not any(v is not None for v in before.values()):
        return {d: None for d in devices}
    time.sleep(window_s)
    dt = time.monotonic() - t0
    out: dict[str, float | None] = {}
    for d in devices:
        after = _usage_s(tb, d)
        if before[d] is None or after is None:
            out[d] = None
            continue
        quota = tb.cpus[tb.index(d)] or 1.0
        out[d] = round(100.0 * (after - before[d]) / (dt * quota), 1)
    return out
