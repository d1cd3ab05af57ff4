"""The emulated testbed: one network namespace, one shaped link set and one CPU quota per device.

A cluster file becomes, on this one machine:

- a **network namespace** per device (``es<tag>-<device>``) holding one veth
  interface ``eslink`` with the address ``10.77.0.<i+1>/24``; the other ends
  hang on a bridge ``es<tag>br`` in the root namespace;
- **per-pair links**: the cluster's links are point-to-point and directional
  (the simulator's ``a->b`` resources), so each namespace's egress gets an HTB
  class per peer, rate = ceil = the link's bandwidth, selected by the peer's
  address (u32 filter).  Traffic a→b is therefore shaped once, on a's side, at
  the a–b link's rate, independently of a's traffic to others — exactly the
  ``switched`` medium.  Where the kernel has ``netem``, the link's latency is
  added under the class; where it has not (these machines), the latency is
  recorded as *not emulated* and ``status`` says so;
- a **cgroup CPU quota** per device from its ``cpus`` (cgroup v1 ``cpu``
  controller, ``cfs_quota_us`` of a 10 ms ``cfs_period_us``, which throttles
  more smoothly than the default 100 ms; cgroup v2 ``cpu.max`` otherwise);
- **pinning** (cgroup v1 ``cpuset``): a quota is CPU *time*, and on a virtual
  machine two busy vCPUs may share one physical core — on the development
  machines two processes on the two vCPUs each run 1.6-1.9x slower than one
  alone.  A device's 0.25 CPU is then only 0.25 of a core while the others are
  idle.  So by default (``pin="auto"``), when the quotas add up to at most one
  CPU, every device is pinned to one host CPU: they time-share it and each gets
  exactly its quota of a full-speed CPU, whatever the others do.  ``pin`` may
  also name host CPUs (``"0"``, ``"0,1"``) or be ``"none"``.

Processes start inside a device with :meth:`Testbed.wrap`: a shell joins the
cgroup, then ``ip netns exec`` enters the namespace.  Workers find each other
through ``GLOO_SOCKET_IFNAME=eslink`` and the addresses above.

Everything made is named from the tag, so :func:`down` finds and removes it
from the system itself — after a crash, a killed run, or with the state file
(``/run/edgeslice/testbed-<tag>.json``) lost.  It first kills every process in
the testbed's cgroups and namespaces and waits until they have left, retries
what the kernel still calls busy, and names whatever it could not remove in a
:class:`LeftoversError` (see :mod:`edgeslice.testbed.procs`, note "removal is
bounded, retried and named").  :func:`up` is idempotent: the
same cluster twice is a no-op, a different one replaces the old.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from edgeslice.cluster.model import Cluster
from edgeslice.errors import TestbedError
from edgeslice.testbed import cgroups, procs

STATE_DIR = Path(os.environ.get("EDGESLICE_STATE_DIR", "/run/edgeslice"))
IFACE = "eslink"
SUBNET = "10.77.0"
PERIOD_US = 10_000
CG1_ROOT = Path("/sys/fs/cgroup/cpu")
CG2_ROOT = Path("/sys/fs/cgroup")
CPUSET_ROOT = Path("/sys/fs/cgroup/cpuset")
CPUACCT_ROOT = Path("/sys/fs/cgroup/cpuacct")  # cgroup v1: CPU time used per group (the measured load)
NETNS_DIR = Path("/run/netns")  # where `ip netns` keeps the namespaces' names
DOWN_WAIT_S = 5.0  # how long `down` waits for processes to leave and for the kernel to let go


class LeftoversError(TestbedError):
    """:func:`down` could not remove everything; ``left`` names each thing and why, ``gone`` what it did remove."""

    def __init__(self, tag: str, gone: list[str], left: list[str]):
        self.gone, self.left = gone, left
        super().__init__(f"testbed {tag!r} is not fully down: could not remove {'; '.join(left)} (removed {len(gone)} "
                         f"other things); run `edgeslice testbed down --tag {tag}` again, or end those processes and "
                         "remove what is named by hand")


def _names(tag: str) -> dict:
    if not (1 <= len(tag) <= 4 and tag.isalnum()):
        raise TestbedError(f"testbed tag {tag!r} must be 1-4 letters or digits (it is part of interface names)")
    return {"bridge": f"es{tag}br", "veth": f"es{tag}v", "ns": f"es{tag}-", "cgroup": f"edgeslice-{tag}"}


def _sh(*cmd: str, what: str = "", check: bool = True) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise TestbedError(f"`{cmd[0]}` is not installed; the testbed needs iproute2 (`ip`, `tc`): apt-get install iproute2") from None
    if check and r.returncode != 0:
        err = (r.stderr or r.stdout).strip().splitlines()
        raise TestbedError(f"{what or 'command'} failed: `{' '.join(cmd)}`: {err[-1] if err else 'exit ' + str(r.returncode)}")
    return r


def preflight() -> None:
    """Refuse, naming the missing capability, where a testbed cannot be built."""
    if os.geteuid() != 0:
        raise TestbedError("the testbed needs root (CAP_NET_ADMIN for namespaces and links, CAP_SYS_ADMIN for cgroups); "
                           "run it as root or with sudo")
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            raise TestbedError(f"`{tool}` is not installed; the testbed needs iproute2: apt-get install iproute2")
    if cgroups.mode(CG1_ROOT, CG2_ROOT) is None:
        raise TestbedError("no cgroup CPU controller is mounted (looked for /sys/fs/cgroup/cpu/cpu.cfs_quota_us and a "
                           "cgroup v2 'cpu' controller); CPU quotas cannot be emulated")


def unavailable(tag: str = "0") -> str | None:
    """Why a testbed cannot be brought up here (not root, no cgroup CPU controller, no namespaces), or None."""
    try:
        preflight()
    except TestbedError as exc:
        return str(exc)
    probe = f"es{tag}-probe"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return f"cannot create network namespaces here: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


@dataclass(frozen=True)
class Testbed:
    """A testbed that is up: what :func:`up` made, as recorded in its state file."""

    tag: str
    cluster: str
    digest: str
    devices: tuple[str, ...]
    cpus: tuple[float | None, ...]
    cgroup_mode: str
    notes: tuple[str, ...]
    source_file: str | None = None
    cpuset: str | None = None
    cpuacct: bool = False  # a cgroup v1 cpuacct group per device (v2 accounts in the cpu group itself)

    def index(self, device: str) -> int:
        try:
            return self.devices.index(device)
        except ValueError:
            raise TestbedError(f"device {device!r} is not on the testbed of cluster {self.cluster!r} "
                               f"({', '.join(self.devices)}); bring up the right cluster with `edgeslice testbed up`") from None

    def namespace(self, device: str) -> str:
        self.index(device)
        return _names(self.tag)["ns"] + device

    def address(self, device: str) -> str:
        return f"{SUBNET}.{self.index(device) + 1}"

    def cgroup(self, device: str) -> Path:
        self.index(device)
        base = CG1_ROOT if self.cgroup_mode == "v1" else CG2_ROOT
        return base / _names(self.tag)["cgroup"] / device

    def cpuset_group(self, device: str) -> Path | None:
        return CPUSET_ROOT / _names(self.tag)["cgroup"] / device if self.cpuset else None

    def cpuacct_group(self, device: str) -> Path | None:
        """Where ``device``'s CPU time is accounted (v1 ``cpuacct.usage``; v2: its cpu group's ``cpu.stat``)."""
        if self.cgroup_mode == "v2":
            return self.cgroup(device)
        return CPUACCT_ROOT / _names(self.tag)["cgroup"] / device if self.cpuacct else None

    def cgroup_procs(self, device: str) -> list[Path]:
        """The ``cgroup.procs`` files a process joins to run under ``device``'s quota (and pinning, and accounting)."""
        out = [self.cgroup(device) / "cgroup.procs"]
        if self.cpuset:
            out.append(self.cpuset_group(device) / "cgroup.procs")
        if self.cpuacct and self.cgroup_mode == "v1":
            out.append(self.cpuacct_group(device) / "cgroup.procs")
        return out

    def wrap(self, device: str, argv: list[str], *, defer_cgroups: bool = False) -> list[str]:
        """The command line that runs ``argv`` inside ``device``: its cgroups, then its namespace.

        With ``defer_cgroups`` the process enters only the namespace and inherits the cgroups'
        ``cgroup.procs`` files open as descriptors 3 (and 4), named in ``$EDGESLICE_JOIN_CGROUP_FDS``
        (``ip netns exec`` remounts /sys, so the paths are not visible inside).  The runtime worker
        writes its pid there once it has loaded the model: start-up is not slowed to the device's
        quota, and what is measured, the inference, runs under it.
        """
        files = self.cgroup_procs(device)
        if defer_cgroups:
            opens = " ".join(f'{3 + i}>"{p}"' for i, p in enumerate(files))
            return ["sh", "-c", f'exec {opens}; exec ip netns exec "$0" "$@"', self.namespace(device), *argv]
        join = " && ".join(f'echo $$ > "{p}"' for p in files)
        return ["sh", "-c", f'{join} && exec ip netns exec "$0" "$@"', self.namespace(device), *argv]

    def join_env(self, device: str) -> dict:
        """Environment naming the descriptors a deferred process joins its cgroups through (see :meth:`wrap`)."""
        return {"EDGESLICE_JOIN_CGROUP_FDS": ",".join(str(3 + i) for i in range(len(self.cgroup_procs(device))))}

    def env(self) -> dict:
        """Environment for processes on the testbed: gloo talks over the shaped interface, one thread per process."""
        return {"GLOO_SOCKET_IFNAME": IFACE, "OMP_NUM_THREADS": "1"}

    def to_dict(self) -> dict:
        return {"tag": self.tag, "cluster": self.cluster, "digest": self.digest, "devices": list(self.devices),
                "cpus": list(self.cpus), "cgroup_mode": self.cgroup_mode, "notes": list(self.notes),
                "source_file": self.source_file, "cpuset": self.cpuset, "cpuacct": self.cpuacct}


def digest(cluster: Cluster, pin: str = "auto") -> str:
    """What the testbed emulates of a cluster; equal digests mean nothing to rebuild."""
    parts = [cluster.medium, f"pin={pin}"]
    for d in cluster.devices:
        parts.append(f"{d.name}:{d.cpus}")
    for a in cluster.names:
        for b in cluster.names:
            if a != b:
                l = cluster.link(a, b)
                parts.append(f"{a}-{b}:{l.bandwidth_mbps}:{l.latency_ms}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _state_path(tag: str) -> Path:
    return STATE_DIR / f"testbed-{tag}.json"


def current(tag: str = "0") -> Testbed | None:
    """The testbed recorded for ``tag``, if its state file exists and its namespaces do."""
    p = _state_path(tag)
    if not p.exists():
        return None
    try:
        d = json.loads(p.read_text())
        tb = Testbed(d["tag"], d["cluster"], d["digest"], tuple(d["devices"]), tuple(d["cpus"]), d["cgroup_mode"],
                     tuple(d["notes"]), d.get("source_file"), d.get("cpuset"), bool(d.get("cpuacct")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    have = set(_netns_list())
    if not all(tb.namespace(dev) in have for dev in tb.devices):
        return None
    return tb


def require(cluster: Cluster, tag: str = "0") -> Testbed:
    """The testbed that is up for ``cluster``, or a TestbedError saying how to bring it up."""
    tb = current(tag)
    if tb is None:
        raise TestbedError(f"no testbed is up; bring one up with `edgeslice testbed up <cluster.yaml>` "
                           f"(for cluster {cluster.name!r})")
    missing = [d for d in cluster.names if d not in tb.devices]
    if missing:
        raise TestbedError(f"the testbed that is up emulates cluster {tb.cluster!r}, which has no device "
                           f"{missing[0]!r}; run `edgeslice testbed up` with cluster {cluster.name!r}")
    return tb


def _netns_list() -> list[str]:
    r = _sh("ip", "netns", "list", check=False)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def _links_with(prefix: str) -> list[str]:
    r = _sh("ip", "-o", "link", "show", check=False)
    out = []
    for line in r.stdout.splitlines():
        bits = line.split(":", 2)
        if len(bits) >= 2:
            name = bits[1].strip().split("@")[0]
            if name.startswith(prefix):
                out.append(name)
    return out


def _netem_ok(ns: str) -> bool:
    r = _sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms", check=False)
    if r.returncode == 0:
        _sh("ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", "lo", "root", check=False)
        return True
    return False


def _pin_cpus(cluster: Cluster, pin: str) -> str | None:
    return cgroups.pin_cpus(cluster, pin, CPUSET_ROOT)


def up(cluster: Cluster, *, tag: str = "0", source_file: str | None = None, pin: str = "auto",
       progress=None) -> tuple[Testbed, bool]:
    """Build the testbed for ``cluster``; return it and whether anything was built (False: already up)."""
    preflight()
    if len(cluster.devices) > 250:
        raise TestbedError(f"cluster {cluster.name!r} has {len(cluster.devices)} devices; the testbed emulates at most 250")
    cpuset = _pin_cpus(cluster, pin)
    dg = digest(cluster, pin)
    old = current(tag)
    if old is not None and old.digest == dg and old.devices == cluster.names:
        return old, False
    down(tag)
    say = progress or (lambda _msg: None)
    n = _names(tag)
    mode = cgroups.mode(CG1_ROOT, CG2_ROOT)
    notes: list[str] = []
    try:
        say(f"bridge {n['bridge']}")
        _sh("ip", "link", "add", n["bridge"], "type", "bridge", what="creating the bridge (kernel bridge support)")
        _sh("ip", "link", "set", n["bridge"], "up", what="bringing the bridge up")
        for i, d in enumerate(cluster.devices):
            ns = n["ns"] + d.name
            host = f"{n['veth']}{i}"
            say(f"device {d.name}: namespace {ns}, link {host}<->{IFACE}, {SUBNET}.{i + 1}")
            _sh("ip", "netns", "add", ns, what=f"creating the namespace of device {d.name!r} (network namespaces)")
            _sh("ip", "link", "add", host, "type", "veth", "peer", "name", IFACE, "netns", ns,
                what=f"creating the veth link of device {d.name!r} (veth support)")
            _sh("ip", "link", "set", host, "master", n["bridge"], "up", what=f"attaching {host} to the bridge")
            _sh("ip", "-n", ns, "link", "set", "lo", "up")
            _sh("ip", "-n", ns, "addr", "add", f"{SUBNET}.{i + 1}/24", "dev", IFACE)
            _sh("ip", "-n", ns, "link", "set", IFACE, "up")
        netem = _netem_ok(n["ns"] + cluster.devices[0].name)
        for i, a in enumerate(cluster.devices):
            ns = n["ns"] + a.name
            _sh("tc", "-n", ns, "qdisc", "add", "dev", IFACE, "root", "handle", "1:", "htb", "default", "ffff", "r2q", "100",
                what=f"shaping device {a.name!r}'s link (sch_htb)")
            _sh("tc", "-n", ns, "class", "add", "dev", IFACE, "parent", "1:", "classid", "1:ffff", "htb", "rate", "10gbit")
            for j, b in enumerate(cluster.devices):
                if i == j:
                    continue
                link = cluster.link(a.name, b.name)
                rate_bps = link.bandwidth_mbps * 1e6
                burst = max(3200, int(rate_bps / 8 / 1000))  # ~1 ms at line rate: small messages see the set rate
                cid = f"1:{j + 1:x}"
                _sh("tc", "-n", ns, "class", "add", "dev", IFACE, "parent", "1:", "classid", cid, "htb",
                    "rate", f"{int(rate_bps)}bit", "ceil", f"{int(rate_bps)}bit", "burst", str(burst), "cburst", str(burst),
                    what=f"shaping link {a.name}->{b.name} at {link.bandwidth_mbps:g} Mbit/s")
                _sh("tc", "-n", ns, "filter", "add", "dev", IFACE, "parent", "1:", "protocol", "ip", "prio", "1", "u32",
                    "match", "ip", "dst", f"{SUBNET}.{j + 1}/32", "flowid", cid, what=f"steering {a.name}->{b.name} (cls_u32)")
                if link.latency_ms > 0 and netem:
                    _sh("tc", "-n", ns, "qdisc", "add", "dev", IFACE, "parent", cid, "netem", "delay", f"{link.latency_ms}ms",
                        what=f"delaying link {a.name}->{b.name} (sch_netem)")
        lat = sorted({cluster.link(a, b).latency_ms for a in cluster.names for b in cluster.names if a != b} - {0.0})
        if lat and not netem:
            notes.append(f"link latency ({', '.join(f'{v:g}' for v in lat)} ms) is not emulated: the kernel has no netem "
                         "(sch_netem); measured transfers see only the bandwidth")
        if cluster.medium == "shared":
            notes.append("medium 'shared' is not emulated: every pair gets its own link (as 'switched')")
        if cluster.bandwidth_trace:
            notes.append("the bandwidth trace is not emulated: links keep their nominal rates")
        say(f"cpu quotas (cgroup {mode}, period {PERIOD_US // 1000} ms)")
        base = (CG1_ROOT if mode == "v1" else CG2_ROOT) / n["cgroup"]
        base.mkdir(exist_ok=True)
        if mode == "v2":
            cgroups.enable_v2_cpu(CG2_ROOT, base)
        for d in cluster.devices:
            cg = base / d.name
            cg.mkdir(exist_ok=True)
            cgroups.set_quota(cg, mode, d.cpus, PERIOD_US)
            if d.cpus is None:
                notes.append(f"device {d.name!r} has no 'cpus': its CPU is not limited")
        total = sum(d.cpus or 0 for d in cluster.devices)
        ncpu = os.cpu_count() or 1
        if cpuset:
            say(f"pinning every device to host CPU(s) {cpuset} (cpuset)")
            cbase = CPUSET_ROOT / n["cgroup"]
            cbase.mkdir(exist_ok=True)
            mems = (CPUSET_ROOT / "cpuset.mems").read_text().strip()
            for cg in [cbase] + [cbase / d.name for d in cluster.devices]:
                cg.mkdir(exist_ok=True)
                (cg / "cpuset.cpus").write_text(cpuset)
                (cg / "cpuset.mems").write_text(mems)
            width = len(cpuset.split(","))
            if total > width:
                notes.append(f"the devices' quotas add up to {total:g} CPUs but they are pinned to {width}: they will "
                             "contend and measured times will exceed the profile")
        elif total > 1.0:
            notes.append(f"the devices' quotas add up to {total:g} CPUs, so they run on several host CPUs at once; on a "
                         "virtual machine busy vCPUs may slow each other (measure with `edgeslice testbed profile`)")
        if total > ncpu:
            notes.append(f"the devices' quotas add up to {total:g} CPUs but this machine has {ncpu}: they will contend "
                         "and measured times will exceed the profile")
        acct = mode == "v1" and CPUACCT_ROOT.is_dir() and CPUACCT_ROOT.resolve() != CG1_ROOT.resolve()
        if acct:
            for cg in [CPUACCT_ROOT / n["cgroup"]] + [CPUACCT_ROOT / n["cgroup"] / d.name for d in cluster.devices]:
                cg.mkdir(exist_ok=True)
        tb = Testbed(tag, cluster.name, dg, cluster.names, tuple(d.cpus for d in cluster.devices), mode, tuple(notes),
                     source_file, cpuset, acct)
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        _state_path(tag).write_text(json.dumps(tb.to_dict(), indent=2) + "\n")
        return tb, True
    except BaseException as exc:
        try:
            down(tag)
        except TestbedError as left:  # the error that stopped `up` comes first; what is left is said with it
            exc.add_note(f"and cleaning up after it: {left}")
        raise


def _ns_inode(ns: str) -> int | None:
    try:
        return (NETNS_DIR / ns).stat().st_ino
    except OSError:
        return None


def down(tag: str = "0", *, wait_s: float = DOWN_WAIT_S) -> list[str]:
    """Remove everything the testbed of ``tag`` made (found by name, not only from the state file); return what went.

    Every process in the testbed's cgroups and namespaces is killed and waited for, for at most
    ``wait_s`` in all; what still cannot be removed then is named in a :class:`LeftoversError`
    (after everything else has been removed).  Example: ``edgeslice.testbed.net.down("0")``.
    """
    n = _names(tag)
    deadline = time.monotonic() + wait_s
    bases = list(dict.fromkeys(root / n["cgroup"] for root in (CG1_ROOT, CG2_ROOT, CPUSET_ROOT, CPUACCT_ROOT)))
    joinable = tuple(f"{b}/" for b in bases)
    nss = sorted(ns for ns in _netns_list() if ns.startswith(n["ns"]))
    inodes = {ino: ns for ns in nss if (ino := _ns_inode(ns)) is not None}

    def everyone() -> set[int]:
        found = procs.holders(set(inodes), joinable)
        for b in bases:
            for cg in cgroups.groups(b):
                found |= cgroups.members(cg)
        return found

    procs.kill_until_empty(everyone, deadline)
    gone: list[str] = []
    left: list[str] = []
    for b in bases:
        removed, stuck = cgroups.remove(b, deadline)
        gone += [f"cgroup {p}" for p in removed]
        left += stuck
    for ns in nss:
        ino = _ns_inode(ns)
        while True:
            if ino is not None:
                procs.kill_until_empty(partial(procs.holders, {ino}), deadline)
            r = _sh("ip", "netns", "del", ns, check=False)
            if not (NETNS_DIR / ns).exists():
                gone.append(f"namespace {ns}")
                break
            if time.monotonic() >= deadline:
                why = (r.stderr or r.stdout).strip() or f"exit {r.returncode}"
                left.append(f"namespace {ns} (`ip netns del`: {why})")
                break
            time.sleep(0.01)
    # the names are gone, so nothing new can enter; what is still inside keeps the namespace (and its veth) alive
    for ino, ns in inodes.items():
        stuck = procs.kill_until_empty(partial(procs.holders, {ino}), deadline)
        if stuck:
            left.append(f"namespace {ns} (its name is removed, but processes {', '.join(map(str, sorted(stuck)))} "
                        "are still in it)")
    links = _links_with(n["veth"]) + _links_with(n["bridge"])
    errors: dict[str, str] = {}
    while True:
        for link in links:
            r = _sh("ip", "link", "del", link, check=False)
            if r.returncode != 0:
                errors[link] = (r.stderr or r.stdout).strip()
        still = set(_links_with(n["veth"]) + _links_with(n["bridge"]))
        if not still or time.monotonic() >= deadline:
            break
        time.sleep(0.01)  # a veth also goes when its namespace is dismantled, which the kernel does later
    gone += [f"link {l}" for l in links if l not in still]
    left += [f"link {l} (`ip link del`: {errors.get(l) or 'it is still there'})" for l in sorted(still)]
    for p in (_state_path(tag), STATE_DIR / f"load-{tag}.json"):  # the testbed's, and its load generators' pids
        if p.exists():
            p.unlink(missing_ok=True)
            gone.append(f"state {p}")
    if left:
        raise LeftoversError(tag, gone, left)
    return gone


def status(tag: str = "0") -> dict:
    """What exists on the system for ``tag`` (see :func:`edgeslice.testbed.status.status`)."""
    from edgeslice.testbed.status import status as _status

    return _status(tag)
