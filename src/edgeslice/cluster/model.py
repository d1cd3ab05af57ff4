"""Clusters: the devices a plan may use, their links, and where input and output live.

This is the value planners receive.  :meth:`Cluster.uniform` makes N identical
devices ``d0..d{N-1}`` (what ``--devices N`` means on the command line);
:mod:`edgeslice.cluster.load` reads cluster YAML files.  A cluster is a
complete value: a device's measured profile is carried by content
(:class:`Profile`), so :meth:`Cluster.to_dict` / :meth:`Cluster.from_dict`
(:mod:`edgeslice.cluster.serial`) round-trip it losslessly — that is how a
plan file carries the cluster it was planned for.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from edgeslice.errors import ClusterError, brief, label, listing, one_line

NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+\Z")  # \Z, not $: "pi0\n" is not a name
PROFILE_FORMAT = "edgeslice-profile"
LOAD_PROFILE_FORMAT = "edgeslice-load-profile"  # several models at several CPU loads: FCPM's training data


def _num(v) -> bool:
    """A finite int or float (not a bool); an integer too large for a float is not one."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    return abs(v) <= sys.float_info.max and math.isfinite(v)  # the int comparison is exact: no OverflowError


def path_label(path, limit: int = 100) -> str:
    """A file path quoted for a message; a very long one keeps its start and its end."""
    text = str(path)
    if len(text) > limit:
        text = f"{text[: limit // 2]}...{text[-(limit // 2):]}"
    return brief(text, limit + 3)


def _load_profile_problem(data: dict) -> str | None:
    """What is wrong with ``data`` as a load profile (what FCPM learns from; :mod:`edgeslice.cost.learned.collect`)."""
    g = data.get("effective_gflops")
    if not _num(g) or g <= 0:
        return f"'effective_gflops' must be a positive number, got {brief(g)}"
    models = data.get("models")
    if not isinstance(models, dict) or not models:
        return "'models' must map each profiled model to its layers"
    fit = data.get("fcpm")
    if fit is not None:
        kinds = ("additive", "loglinear", "gbrt", "mlp")  # edgeslice.cost.learned.fcpm.CANDIDATES
        if not isinstance(fit, dict) or fit.get("model") not in kinds + (None,):
            return f"'fcpm.model' must be one of {', '.join(kinds)} (what `edgeslice predictor fit` writes)"
        for k in ("train_models", "train_loads"):
            if fit.get(k) is not None and not isinstance(fit[k], list):
                return f"'fcpm.{k}' must be a list or null"
    for key, m in models.items():
        layers = m.get("layers") if isinstance(m, dict) else None
        if not isinstance(layers, dict):
            return f"models.{label(str(key))}.layers must map layer names to their features and samples"
        for name, v in layers.items():
            where = f"models.{label(str(key))}.layers.{label(str(name))}"
            if not isinstance(v, dict) or not isinstance(v.get("kind"), str):
                return f"{where} needs 'kind' (text)"
            for k in ("flops", "in_elems", "out_elems", "param_bytes"):
                if not _num(v.get(k)) or v.get(k) < 0:
                    return f"{where}.{k} must be a number >= 0"
            for k in ("kernel", "groups", "cin", "cout"):
                if k in v and (not _num(v[k]) or v[k] < 0):
                    return f"{where}.{k} must be a number >= 0"
            s = v.get("samples")
            if not (isinstance(s, list) and all(isinstance(x, list) and len(x) == 3 and all(_num(y) for y in x)
                                                and 0 < x[0] <= 1 and 0 <= x[1] <= 100 and x[2] >= 0 for x in s)):
                return (f"{where}.samples must be [fraction in (0, 1], load percent in [0, 100], seconds >= 0] "
                        "triples")
    return None


def _profile_problem(data) -> str | None:
    """What is wrong with ``data`` as an ``edgeslice profile`` document (None: nothing ProfiledCost needs is missing)."""
    if isinstance(data, dict) and data.get("format") == LOAD_PROFILE_FORMAT:
        return _load_profile_problem(data)
    if not isinstance(data, dict) or data.get("format") != PROFILE_FORMAT:
        return ("not an edgeslice profile (make one with `edgeslice profile --model M -o FILE`, or a load profile "
                "with `edgeslice testbed profile C --models ... --loads ...`)")
    b = data.get("batch")
    if not isinstance(b, int) or isinstance(b, bool) or b < 1:
        return f"'batch' must be a positive integer, got {brief(b)}"
    g = data.get("effective_gflops")
    if not _num(g) or g <= 0:
        return f"'effective_gflops' must be a positive number, got {brief(g)}"
    layers = data.get("layers")
    if not isinstance(layers, dict):
        return "'layers' must be a mapping of layer name to its measurements"
    for name, v in layers.items():
        if not isinstance(name, str):
            return f"layers: key {brief(name)} must be a layer name (text)"
        fit = v.get("fit") if isinstance(v, dict) else None
        if not (isinstance(fit, list) and len(fit) == 2 and all(_num(x) for x in fit)):
            return f"layers.{label(name)}.fit must be [a, b] (two numbers: time = a + b x fraction)"
        if not isinstance(v.get("kind"), str) or not _num(v.get("flops")):
            return f"layers.{label(name)} needs 'kind' (text) and 'flops' (a number)"
    return None


def json_value_problem(e: ValueError) -> str:
    """What ``json.loads``'s non-syntax ValueError means (in practice: an integer of thousands of digits)."""
    if "digits" in str(e):
        return (f"a number in it has more than {sys.get_int_max_str_digits()} digits, more than Python reads; "
                "write it shorter")
    return f"a value cannot be read ({one_line(e)[:100]})"


@dataclass(frozen=True)
class Profile:
    """What a device's profile file (``edgeslice profile`` output) says, carried by value.

    ``text`` is the profile's canonical JSON (sorted keys, no spaces) and ``digest``
    its sha256, so two profiles are equal exactly when their content is, wherever
    they were read from.  A cluster holding the content (not only a path) predicts
    the same on any machine and after the file is overwritten.

    >>> p = Profile.from_data({"format": "edgeslice-profile", "batch": 1, "effective_gflops": 20.0, "layers": {}})
    >>> len(p.digest), p.data()["effective_gflops"]
    (64, 20.0)
    """

    digest: str
    text: str = field(repr=False)

    @classmethod
    def from_data(cls, data) -> "Profile":
        """Validate a parsed profile document; raise :class:`ClusterError` (no location prefix) if it is not one."""
        problem = _profile_problem(data)
        if problem:
            raise ClusterError(problem)
        try:
            text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        except RecursionError:
            raise ClusterError("nested too deeply to be a profile (a profile is a few levels of objects)") from None
        except (TypeError, ValueError) as e:  # a dict built in code: non-text keys, sets, integers of 5000 digits
            raise ClusterError(f"not plain JSON data ({one_line(e)[:100]}); a profile holds text, numbers, "
                               "lists and objects with text keys") from None
        return cls(hashlib.sha256(text.encode()).hexdigest(), text)

    @classmethod
    def read(cls, path: str | Path) -> "Profile":
        """Read and validate the profile file at ``path`` (messages name the file and how to make one)."""
        where = path_label(path)
        make = f"make one with `edgeslice profile --model M -o {label(str(path), 100) if len(str(path)) <= 100 else 'FILE'}`"
        try:
            raw = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise ClusterError(f"cannot read profile {where}: not UTF-8 text ({one_line(e.reason)} at byte {e.start}); "
                               f"{make}") from None
        except OSError as e:
            raise ClusterError(f"cannot read profile {where}: {e.strerror or one_line(e)} ({make})") from None
        except ValueError:  # a NUL character, or half of a surrogate pair the file system cannot name
            raise ClusterError(f"cannot read profile {where}: not a valid file name; name the profile file "
                               "edgeslice profile wrote") from None
        try:
            data = json.loads(raw.removeprefix("\ufeff"))
        except json.JSONDecodeError as e:
            raise ClusterError(f"profile {where} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
        except RecursionError:
            raise ClusterError(f"profile {where} is nested too deeply to be a profile") from None
        except ValueError as e:  # an integer of more digits than Python reads
            raise ClusterError(f"profile {where}: {json_value_problem(e)}") from None
        try:
            return cls.from_data(data)
        except ClusterError as e:
            raise ClusterError(f"profile {where}: {e}") from None

    def data(self) -> dict:
        """The profile document (a fresh dict each call)."""
        return json.loads(self.text)


@dataclass(frozen=True)
class Device:
    name: str
    gflops: float = 10.0
    memory_mb: float = 4096.0
    cpu_load: float = 0.0
    cpus: float | None = None
    profile: str | None = None  # where the profile was read from (informational once profile_data is set)
    scale: float = 1.0
    profile_data: Profile | None = None  # the profile's content: what the cost model uses
    # background load over time: ((t_s, fraction), ...) from the start of a run, the last step holding; a cluster
    # file's ``load:`` (percent).  ``cpu_load`` is the load now: the schedule's value at 0 until :meth:`Cluster.at`
    # or :meth:`Cluster.with_loads` (measured figures) says otherwise.  Cost models read ``cpu_load``.
    load_schedule: tuple[tuple[float, float], ...] = ()

    def load_at(self, t: float) -> float:
        """The background load (a fraction) at ``t`` seconds: the schedule's step then, else ``cpu_load``."""
        if not self.load_schedule:
            return self.cpu_load
        value = 0.0
        for start, v in self.load_schedule:
            if start <= t:
                value = v
        return value


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
            raise ClusterError(f"cluster {brief(self.name)}: no devices")
        for n in names:
            if not isinstance(n, str) or not NAME_RE.match(n):
                raise ClusterError(f"cluster {brief(self.name)}: device name {brief(n)} may use only letters, digits, "
                                   "'_', '.', '-'")
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise ClusterError(f"cluster {brief(self.name)}: device {brief(dup)} is listed twice")
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
        raise ClusterError(f"cluster {brief(self.name)} has no device {brief(name)} (its devices: {listing(self.names)})")

    def at(self, t: float) -> "Cluster":
        """This cluster with each device's ``cpu_load`` as its load schedule says at ``t`` seconds.

        >>> c = Cluster("c", (Device("a", load_schedule=((0.0, 0.0), (5.0, 0.6))), Device("b")))
        >>> [d.cpu_load for d in c.at(6.0).devices]
        [0.6, 0.0]
        """
        from dataclasses import replace

        return replace(self, devices=tuple(replace(d, cpu_load=d.load_at(t)) for d in self.devices))

    def with_loads(self, loads: dict) -> "Cluster":
        """This cluster with the named devices' ``cpu_load`` set (fractions, e.g. measured): what re-planning uses."""
        from dataclasses import replace

        for name in loads:
            self.device(name)
        return replace(self, devices=tuple(replace(d, cpu_load=float(loads.get(d.name, d.cpu_load)))
                                           for d in self.devices))

    def link(self, a: str, b: str) -> Link:
        key = frozenset((a, b))
        for k, l in self.overrides:
            if k == key:
                return l
        return self.default_link

    def to_dict(self) -> dict:
        """A JSON-ready dict that :meth:`from_dict` turns back into an equal cluster (see :mod:`edgeslice.cluster.serial`)."""
        from edgeslice.cluster.serial import cluster_to_dict

        return cluster_to_dict(self)

    @classmethod
    def from_dict(cls, data, where: str = "cluster") -> "Cluster":
        """Validate and rebuild a cluster from :meth:`to_dict`'s form; errors are one line starting with ``where``."""
        from edgeslice.cluster.serial import cluster_from_dict

        return cluster_from_dict(data, where)

    @classmethod
    def uniform(cls, n: int, gflops: float = 10.0, bandwidth_mbps: float = 100.0) -> "Cluster":
        """``n`` identical devices named d0..d{n-1}; d0 is source and sink."""
        if n < 1:
            raise ClusterError(f"--devices must be at least 1, not {n}")
        return cls(f"uniform{n}", tuple(Device(f"d{i}", gflops) for i in range(n)), Link(bandwidth_mbps, 0.0))
