"""Clusters: the devices a plan may use, their links, and where input and output live.

This is the value planners receive.  :meth:`Cluster.uniform` makes N identical
devices ``d0..d{N-1}`` (what ``--devices N`` means on the command line);
:mod:`edgeslice.cluster.load` reads cluster YAML files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from edgeslice.errors import ClusterError

NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class Device:
    name: str
    gflops: float = 10.0
    memory_mb: float = 4096.0
    cpu_load: float = 0.0
    cpus: float | None = None
    profile: str | None = None
    scale: float = 1.0


@dataclass(frozen=True)
class Link:
    bandwidth_mbps: float
    latency_ms: float = 0.0


@dataclass(frozen=True)
class Cluster:
    """Devices, links between every pair (a default plus overrides), source and sink.

    ``medium`` is ``"switched"`` (each pair of devices has its own link; a link
    carries one transfer at a time) or ``"shared"`` (one Wi-Fi cell: every
    transfer in the cluster shares one channel, one at a time).
    ``bandwidth_trace`` is an optional step function ``((t_s, factor), ...)``
    multiplying every link's bandwidth from time ``t_s`` on (starts at 1.0).
    """

    name: str
    devices: tuple[Device, ...]
    default_link: Link = Link(100.0, 0.0)
    overrides: tuple[tuple[frozenset, Link], ...] = field(default=())
    source: str = ""
    sink: str = ""
    medium: str = "switched"
    bandwidth_trace: tuple[tuple[float, float], ...] = ()

    def __post_init__(self):
        names = [d.name for d in self.devices]
        if not names:
            raise ClusterError(f"cluster {self.name!r}: no devices")
        for n in names:
            if not NAME_RE.match(n):
                raise ClusterError(f"cluster {self.name!r}: device name {n!r} may use only letters, digits, '_', '.', '-'")
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise ClusterError(f"cluster {self.name!r}: device {dup!r} is listed twice")
        if not self.source:
            object.__setattr__(self, "source", names[0])
        if not self.sink:
            object.__setattr__(self, "sink", self.source)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.devices)

    def device(self, name: str) -> Device:
        for d in self.devices:
            if d.name == name:
                return d
        raise ClusterError(f"cluster {self.name!r} has no device {name!r}")

    def link(self, a: str, b: str) -> Link:
        key = frozenset((a, b))
        for k, l in self.overrides:
            if k == key:
                return l
        return self.default_link

    @classmethod
    def uniform(cls, n: int, gflops: float = 10.0, bandwidth_mbps: float = 100.0) -> "Cluster":
        """``n`` identical devices named d0..d{n-1}; d0 is source and sink."""
        if n < 1:
            raise ClusterError(f"--devices must be at least 1, not {n}")
        return cls(f"uniform{n}", tuple(Device(f"d{i}", gflops) for i in range(n)), Link(bandwidth_mbps, 0.0))
