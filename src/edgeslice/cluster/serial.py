"""A cluster as a JSON-ready dict and back, losslessly: how a plan file carries its cluster.

The dict has the shape of a cluster YAML file (see :mod:`edgeslice.cluster.load`)
with every field written out, plus the content of the devices' profiles::

    {"name": "testbed4", "source": "d0", "sink": "d0", "medium": "switched",
     "devices": [{"name": "d0", "gflops": 7.8, "memory_mb": 4096.0, "cpu_load": 0.0, "cpus": 0.25,
                  "scale": 1.0, "profile": {"path": "/abs/d0.json", "sha256": "9f2c..."}}, ...],
     "links": {"default": {"bandwidth_mbps": 50.0, "latency_ms": 0.0},
               "overrides": [{"between": ["d0", "d1"], "bandwidth_mbps": 20.0, "latency_ms": 0.0}]},
     "bandwidth_trace": [[0.0, 1.0], [0.5, 0.4]],
     "profiles": {"9f2c...": {"format": "edgeslice-profile", "layers": {...}, ...}}}

A device without a profile has ``"profile": null``.  A profile shared by several
devices is stored once in ``profiles``, keyed by the sha256 of its canonical
JSON; :func:`cluster_from_dict` checks each key against its content, so an
edited profile is noticed.  ``path`` only says where the profile was read from;
nothing reads it again.

:func:`cluster_from_dict` validates with the YAML loader's own checks, so its
errors read the same: ``<where>: <field path>: <problem and fix>``.

>>> from edgeslice.cluster.load import resolve_cluster
>>> c = resolve_cluster("hetero3")
>>> cluster_from_dict(cluster_to_dict(c)) == c
True
>>> cluster_from_dict({"name": "x", "devices": [{"name": "a", "gflops": 0}]}, "plan.json: cluster")
Traceback (most recent call last):
...
edgeslice.errors.ClusterError: plan.json: cluster: devices[0].gflops: must be a positive number, got 0
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from edgeslice.cluster.load import TOP_FIELDS, _Checker, _show, parse_cluster
from edgeslice.cluster.model import Cluster, Link, Profile
from edgeslice.errors import ClusterError, label

__all__ = ["cluster_to_dict", "cluster_from_dict"]

FIELDS = TOP_FIELDS + ("profiles",)
PROFILE_REF_FIELDS = ("path", "sha256")


def _link(l: Link) -> dict:
    return {"bandwidth_mbps": float(l.bandwidth_mbps), "latency_ms": float(l.latency_ms)}


def cluster_to_dict(c: Cluster) -> dict:
    """Every field of ``c`` as plain JSON values (see the module docstring for the shape)."""
    profiles: dict[str, dict] = {}
    devices = []
    for d in c.devices:
        ref: dict[str, Any] | None = None
        if d.profile is not None or d.profile_data is not None:
            ref = {"path": d.profile}
            if d.profile_data is not None:
                ref["sha256"] = d.profile_data.digest
                profiles.setdefault(d.profile_data.digest, d.profile_data.data())
        # numbers as floats, as loading makes them: the text of a cluster is the same after a round trip
        dev = {"name": d.name, "gflops": float(d.gflops), "memory_mb": float(d.memory_mb),
               "cpu_load": float(d.cpu_load), "cpus": None if d.cpus is None else float(d.cpus),
               "scale": float(d.scale), "profile": ref}
        if d.load_schedule:  # percent steps, as a cluster file writes them; cpu_load (the load now) is kept beside it
            dev["load"] = [[float(t), float(v) * 100.0] for t, v in d.load_schedule]
        devices.append(dev)
    return {
        "name": c.name,
        "source": c.source,
        "sink": c.sink,
        "medium": c.medium,
        "devices": devices,
        "links": {"default": _link(c.default_link),
                  "overrides": [{"between": sorted(k), **_link(l)} for k, l in c.overrides]},
        "bandwidth_trace": [[float(t), float(k)] for t, k in c.bandwidth_trace],
        "profiles": profiles,
    }


def _profiles(chk: _Checker, raw: Any) -> dict[str, Profile]:
    if raw is None:
        return {}
    table = chk.mapping(raw, "profiles", '{"<sha256>": {"format": "edgeslice-profile", ...}}')
    out = {}
    for key, data in table.items():
        f = f"profiles.{label(key, 64)}"
        try:
            prof = Profile.from_data(data)
        except ClusterError as e:
            raise chk.fail(f, str(e)) from None
        if prof.digest != key:
            raise chk.fail(f, f"the content's sha256 is {prof.digest}, not its key: the profile was edited; "
                              "re-plan with the profile file (or put the new sha256 in the key and in the devices "
                              "that use it)")
        out[key] = prof
    return out


def _profile_ref(chk: _Checker, raw: Any, f: str, table: dict[str, Profile]) -> tuple[str | None, Profile | None]:
    if raw is None:
        return None, None
    ref = chk.mapping(raw, f, '{"path": "/abs/profile.json", "sha256": "<key in profiles>"}')
    chk.known(ref, f, PROFILE_REF_FIELDS)
    path, sha = ref.get("path"), ref.get("sha256")
    if path is not None and (not isinstance(path, str) or not path.strip()):
        raise chk.fail(f"{f}.path", f"must be a file path or null, got {_show(path)}")
    if sha is None:
        if path is None:
            raise chk.fail(f, "names neither a path nor a sha256; write null for a device without a profile")
        return path, None
    if not isinstance(sha, str) or sha not in table:
        known = ", ".join(k[:12] for k in table) or "none"
        raise chk.fail(f"{f}.sha256", f"{_show(sha)} is not a key of 'profiles' (keys: {known}); "
                                      "add the profile's content there or remove the reference")
    return path, table[sha]


def cluster_from_dict(data: Any, where: str = "cluster") -> Cluster:
    """Validate :func:`cluster_to_dict`'s form and rebuild the cluster; raise :class:`ClusterError` naming the field."""
    where = str(where)
    chk = _Checker(where)
    d = chk.mapping(data, "top level", '{"name": ..., "devices": [...], "links": {...}}')
    chk.known(d, "", FIELDS)
    if not isinstance(d.get("name"), str):
        raise chk.fail("name", f"must be the cluster's name (text), got {_show(d.get('name'))}")
    table = _profiles(chk, d.get("profiles"))
    as_yaml = {k: v for k, v in d.items() if k != "profiles"}
    refs: list[tuple[str | None, Profile | None]] = []
    if isinstance(d.get("devices"), list):
        devices = []
        for i, dev in enumerate(d["devices"]):
            if isinstance(dev, dict):
                refs.append(_profile_ref(chk, dev.get("profile"), f"devices[{i}].profile", table))
                dev = {k: v for k, v in dev.items() if k != "profile"}
            devices.append(dev)
        as_yaml["devices"] = devices
    cluster = parse_cluster(as_yaml, where)
    devices = tuple(replace(dev, profile=path, profile_data=prof) for dev, (path, prof) in zip(cluster.devices, refs))
    return replace(cluster, devices=devices)
