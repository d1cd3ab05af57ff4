"""CPU quotas for the testbed's devices, and taking them down again without a race.

:mod:`edgeslice.testbed.net` makes one cgroup per device (and one per device in
the ``cpuset`` hierarchy when it pins); this module sets their quotas and removes
them.

Removing them follows note "removal is bounded, retried and named" in
:mod:`edgeslice.testbed.procs`: what is in a group is killed and waited for,
and ``rmdir`` is retried while the kernel says ``EBUSY`` (a process still
exiting), until one deadline; what is left then is returned by name.
"""

from __future__ import annotations

import errno
import os
import time
from functools import partial
from pathlib import Path

from edgeslice.cluster.model import Cluster
from edgeslice.errors import TestbedError
from edgeslice.testbed.procs import kill_until_empty

MEMBER_FILES = ("cgroup.procs", "tasks")  # tasks: every thread (v1); a dying leader can leave procs before its threads


def enable_v2_cpu(root: Path, base: Path) -> None:
    """Let the groups under ``base`` (cgroup v2) have the ``cpu`` controller."""
    for p in (root, base):
        ctl = p / "cgroup.subtree_control"
        if "cpu" not in ctl.read_text().split():
            ctl.write_text("+cpu")


def set_quota(cg: Path, mode: str, cpus: float | None, period_us: int) -> None:
    """Limit group ``cg`` to ``cpus`` CPUs (None: unlimited) over ``period_us`` (v1 ``cfs_*``, v2 ``cpu.max``)."""
    quota = None if cpus is None else max(1000, round(cpus * period_us))
    if mode == "v1":
        (cg / "cpu.cfs_period_us").write_text(str(period_us))
        (cg / "cpu.cfs_quota_us").write_text(str(-1 if quota is None else quota))
    else:
        (cg / "cpu.max").write_text(f"{'max' if quota is None else quota} {period_us}")


def mode(v1_root: Path, v2_root: Path) -> str | None:
    """"v1" or "v2": which hierarchy has the ``cpu`` controller (None: neither)."""
    if (v1_root / "cpu.cfs_quota_us").exists():
        return "v1"
    ctl = v2_root / "cgroup.controllers"
    if ctl.exists() and "cpu" in ctl.read_text().split():
        return "v2"
    return None


def pin_cpus(cluster: Cluster, pin: str, cpuset_root: Path) -> str | None:
    """The host CPU list the devices are pinned to (cpuset syntax), or None (see :mod:`edgeslice.testbed.net`)."""
    ncpu = os.cpu_count() or 1
    if pin == "none":
        return None
    if pin == "auto":
        total = sum(d.cpus or 0 for d in cluster.devices)
        if any(d.cpus is None for d in cluster.devices) or total > 1.0 or ncpu < 2 or not cpuset_root.is_dir():
            return None
        return "0"
    try:
        cpus = sorted({int(x) for x in pin.split(",")})
    except ValueError:
        raise TestbedError(f"--pin {pin!r}: give host CPU numbers like 0 or 0,1, or 'auto' or 'none'") from None
    bad = [c for c in cpus if not 0 <= c < ncpu]
    if bad:
        raise TestbedError(f"--pin {pin!r}: this machine has CPUs 0-{ncpu - 1}, not {bad[0]}")
    if not cpuset_root.is_dir():
        raise TestbedError("--pin needs the cgroup v1 cpuset controller (/sys/fs/cgroup/cpuset), which is not mounted")
    return ",".join(map(str, cpus))


def groups(base: Path) -> list[Path]:
    """``base`` and every group below it, deepest first (the order they can be removed in)."""
    if not base.is_dir():
        return []
    found = [base]
    for dirpath, dirnames, _ in os.walk(base):
        found += [Path(dirpath) / d for d in dirnames]
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def members(cg: Path) -> set[int]:
    """The processes and threads in group ``cg`` (empty if it is gone)."""
    out: set[int] = set()
    for name in MEMBER_FILES:
        try:
            out.update(int(x) for x in (cg / name).read_text().split())
        except (OSError, ValueError):
            pass
    return out


def remove(base: Path, deadline: float) -> tuple[list[Path], list[str]]:
    """Remove group ``base`` and everything below it, killing what is in them; return (removed, not removed: why).

    ``rmdir`` of a group whose last process is still exiting says ``EBUSY``: it is
    retried (killing whatever is in the group again) until ``deadline``.
    """
    gone: list[Path] = []
    stuck: list[Path] = []
    reasons: list[str] = []
    for cg in groups(base):
        if any(cg in s.parents for s in stuck):
            continue  # a group left behind keeps its parents: report it, not them
        while True:
            left = kill_until_empty(partial(members, cg), deadline)
            try:
                cg.rmdir()
                gone.append(cg)
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                busy = exc.errno == errno.EBUSY
                if busy and time.monotonic() < deadline:
                    time.sleep(0.005)
                    continue
                why = (f"processes {', '.join(map(str, sorted(left)))} are still in it" if left
                       else "busy: the kernel still counts an exiting process in it" if busy
                       else exc.strerror or str(exc))
                stuck.append(cg)
                reasons.append(f"cgroup {cg} ({why})")
                break
    return gone, reasons
