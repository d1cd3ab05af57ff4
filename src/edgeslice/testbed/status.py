"""``edgeslice testbed status``: what exists on the system for a tag, found by name, and the load each device carries."""

from __future__ import annotations

from edgeslice.testbed.net import (
    CG1_ROOT,
    CG2_ROOT,
    CPUSET_ROOT,
    IFACE,
    SUBNET,
    _links_with,
    _names,
    _netns_list,
    _sh,
    current,
)


def status(tag: str = "0", *, window_s: float = 0.5) -> dict:
    """What exists on the system for ``tag``: namespaces, links and their shaping, cgroups and their quotas, processes,
    and each device's CPU load: the generator's schedule (``load_set``, ``[[t_s, percent], ...]``) and what the
    device's cgroup accounted over ``window_s`` (``load_measured``, percent of its quota; None where unknown)."""
    n = _names(tag)
    tb = current(tag)
    nss = [ns for ns in _netns_list() if ns.startswith(n["ns"])]
    devices = []
    for ns in sorted(nss):
        dev = ns[len(n["ns"]):]
        addr = _sh("ip", "-n", ns, "-o", "-4", "addr", "show", "dev", IFACE, check=False).stdout.split()
        address = next((addr[i + 1] for i, w in enumerate(addr) if w == "inet"), None)
        classes = _sh("tc", "-n", ns, "class", "show", "dev", IFACE, check=False).stdout
        shaped = []
        for line in classes.splitlines():
            w = line.split()
            if "rate" in w and w[2] != "1:ffff":
                j = int(w[2].split(":")[1], 16) - 1  # class 1:<j+1> shapes traffic to the device at index j
                peer = tb.devices[j] if tb and 0 <= j < len(tb.devices) else f"{SUBNET}.{j + 1}"
                shaped.append({"class": w[2], "peer": peer, "rate": w[w.index("rate") + 1]})
        quota = None
        for base in (CG1_ROOT, CG2_ROOT):
            cg = base / n["cgroup"] / dev
            if (cg / "cpu.cfs_quota_us").exists():
                q, per = int((cg / "cpu.cfs_quota_us").read_text()), int((cg / "cpu.cfs_period_us").read_text())
                quota = None if q < 0 else q / per
                procs = len((cg / "cgroup.procs").read_text().split())
                break
            if (cg / "cpu.max").exists():
                q, per = (cg / "cpu.max").read_text().split()
                quota = None if q == "max" else int(q) / int(per)
                procs = len((cg / "cgroup.procs").read_text().split())
                break
        else:
            procs = 0
        cs = CPUSET_ROOT / n["cgroup"] / dev / "cpuset.cpus"
        devices.append({"device": dev, "namespace": ns, "address": address, "links": shaped, "cpus": quota,
                        "cpuset": cs.read_text().strip() if cs.exists() else None, "processes": procs,
                        "load_set": None, "load_measured": None})
    if tb is not None and devices:
        from edgeslice.testbed import load

        gens = load.generators(tag)
        measured = load.measure(tb, [d["device"] for d in devices if d["device"] in tb.devices], window_s=window_s)
        for d in devices:
            g = gens.get(d["device"])
            d["load_set"] = g["schedule"] if g else None
            d["load_measured"] = measured.get(d["device"])
    return {"tag": tag, "up": tb is not None, "cluster": tb.cluster if tb else None, "devices": devices,
            "bridge": bool(_links_with(n["bridge"])), "notes": list(tb.notes) if tb else []}
