"""Read cluster YAML files into :class:`~edgeslice.cluster.model.Cluster` values.

A cluster file says which devices a plan may use, how fast they are, how they
are connected, where the input image appears and where the result is wanted::

    name: pi4x4
    devices:
      - {name: pi0, gflops: 8, memory_mb: 4096, cpu_load: 0.0, cpus: 0.4}
      - {name: edge, gflops: 200, memory_mb: 16384, profile: edge-profile.json}
    links:
      default: {bandwidth_mbps: 50, latency_ms: 1}
      overrides:
        - {between: [pi0, edge], bandwidth_mbps: 20, latency_ms: 5}
    source: pi0               # default: the first device
    sink: pi0                 # default: the source
    medium: switched          # or shared (one Wi-Fi channel for all transfers)
    bandwidth_trace: [[0, 1.0], [0.5, 0.4]]   # [time_s, factor] steps

Validation is strict, because a typo in a cluster file silently changes every
plan made for it: unknown fields, duplicate keys, booleans where numbers belong
and names that are not devices are all errors.  Every error is a
:class:`~edgeslice.errors.ClusterError` whose message is one line:
``<file>: <field path>: <problem and fix>``, e.g.
``x.yaml: devices[2].gflops: must be a positive number, got -3``.

Field notes:

- ``profile``: a relative path is resolved against the folder of the YAML
  file; the file is read and validated here, and the device keeps both the
  absolute path (``Device.profile``) and the content (``Device.profile_data``),
  so the cluster value — and a plan made for it — does not depend on the file
  staying where it is or unchanged.
- ``load``: background CPU load in percent of the device, constant (``load: 60``) or
  steps over time (``load: [[0, 0], [30, 80]]``, seconds from the start of a run);
  ``testbed up`` starts a load generator in each device that has one, and
  ``cpu_load`` (a fraction) is its value at 0 unless given too.
- ``links.overrides[i]``: a field left out (``bandwidth_mbps`` or
  ``latency_ms``) is taken from ``links.default``, so an override that only
  says "this pair is slower" keeps the default latency.

Bundled example clusters (``iot-edge``, ``pi4x4``, ``hetero3``, ``mec``,
``local4``) ship inside the package; :func:`resolve_cluster` accepts either a
file path or one of those names, which is what ``--cluster`` means.

Example:

>>> from edgeslice.cluster.load import resolve_cluster, parse_cluster
>>> c = resolve_cluster("pi4x4")
>>> c.names, c.source, c.medium, c.link("pi0", "pi3").bandwidth_mbps
(('pi0', 'pi1', 'pi2', 'pi3'), 'pi0', 'shared', 50.0)
>>> parse_cluster({"devices": [{"name": "a", "gflops": 5}]}, "inline.yaml").default_link
Link(bandwidth_mbps=100.0, latency_ms=0.0)
>>> parse_cluster({"devices": [{"name": "a", "gflops": -3}]}, "x.yaml")
Traceback (most recent call last):
...
edgeslice.errors.ClusterError: x.yaml: devices[0].gflops: must be a positive number, got -3
"""

from __future__ import annotations

import difflib
import math
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from edgeslice.cluster.model import NAME_RE, Cluster, Device, Link, Profile, path_label
from edgeslice.cluster.schedule import load_schedule
from edgeslice.errors import ClusterError, brief, label, listing, one_line

__all__ = ["load_cluster", "parse_cluster", "builtin_clusters", "resolve_cluster", "EXAMPLES_DIR"]

#: Folder of the bundled example clusters (shipped as package data).
EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"

DEFAULT_LINK = Link(100.0, 0.0)
MEDIA = ("switched", "shared")

TOP_FIELDS = ("name", "devices", "links", "source", "sink", "medium", "bandwidth_trace")
DEVICE_FIELDS = ("name", "gflops", "memory_mb", "cpu_load", "load", "cpus", "profile", "scale")
LINKS_FIELDS = ("default", "overrides")
LINK_FIELDS = ("bandwidth_mbps", "latency_ms")
OVERRIDE_FIELDS = ("between",) + LINK_FIELDS


# --------------------------------------------------------------------- reading


class _DuplicateKey(yaml.constructor.ConstructorError):
    """A key repeated in one YAML mapping (valid YAML syntax, but a lost value)."""


class _BadValue(yaml.constructor.ConstructorError):
    """A scalar YAML reads but Python cannot make (an integer of 5000 digits, the date 2024-13-45)."""


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that rejects a key repeated in one mapping.

    Plain ``safe_load`` keeps the last of two ``gflops:`` lines silently;
    a cluster file must not lose a value that way.  A value Python cannot make
    is reported at its line, like a syntax error, not as a ValueError.
    """

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError, TypeError) as e:
            text = brief(node.value, 30) if isinstance(node.value, str) else "this value"
            why = (f"more than {sys.get_int_max_str_digits()} digits" if "digits" in str(e) else one_line(e)[:80])
            raise _BadValue(None, None, f"{text} cannot be read ({why}); write a plain number or quote it as text",
                            node.start_mark) from None

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                continue  # SafeLoader reports unhashable keys itself
            if key in seen:
                m = key_node.start_mark
                raise _DuplicateKey(
                    None, None,
                    f"key {key!r} appears twice in one mapping (first at line {seen[key].line + 1}); keep one",
                    m,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


# YAML 1.2 floats: PyYAML (YAML 1.1) reads `1e-300` or `5e9` (no dot) as a string; a cluster file means a number.
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


_one_line = one_line  # whitespace runs become one space, control characters are escaped


def load_cluster(path: str | Path) -> Cluster:
    """Read and validate the cluster YAML file at ``path``.

    Raises :class:`ClusterError` (one line, starting with the path) when the
    file cannot be read, is not valid YAML, or describes an invalid cluster.
    """
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ClusterError(f"cannot read cluster file {where!r}: not UTF-8 text ({_one_line(e.reason)} at byte {e.start})") from None
    except OSError as e:
        raise ClusterError(f"cannot read cluster file {where!r}: {e.strerror or _one_line(e)}") from None
    except ValueError:  # a NUL character in the name, or half of a surrogate pair
        raise ClusterError(f"cannot read cluster file {brief(where)}: not a valid file name") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 -- a SafeLoader subclass
    except RecursionError:
        raise ClusterError(f"{where}: nested too deeply to be a cluster file (a cluster is a few levels of mappings "
                           "and lists)") from None
    except (_DuplicateKey, _BadValue) as e:
        m = e.problem_mark
        raise ClusterError(f"{where}: line {m.line + 1}, column {m.column + 1}: {_one_line(e.problem)}") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = _one_line(e.problem or e.context or "invalid YAML")
        raise ClusterError(f"{where}: YAML syntax error{at}: {problem} (check indentation, colons and quoting)") from None
    except yaml.YAMLError as e:
        raise ClusterError(f"{where}: YAML syntax error: {_one_line(e)}") from None
    return parse_cluster(data, where, base=Path(path).parent)


# ------------------------------------------------------------------ validating


def _show(v: Any) -> str:
    """A value as the user wrote it in YAML, for messages."""
    if v is None:
        return "nothing (null)"
    if isinstance(v, bool):
        return f"{str(v).lower()} (a boolean; YAML reads yes/no/on/off/true/false as booleans)"
    if isinstance(v, (int, float, str)):
        return brief(v)
    if isinstance(v, (dict, list)):
        kind = "a mapping" if isinstance(v, dict) else "a list"
        try:
            text = _one_line(yaml.safe_dump(v, default_flow_style=True, width=10**6))
        except (yaml.YAMLError, RecursionError, ValueError, TypeError):  # deep nesting, an int of 5000 digits
            return kind
        return f"{kind} {text}" if len(text) <= 60 else kind
    return type(v).__name__


def _key_text(k: Any) -> str:
    """A mapping key YAML read as something other than text (1, null, a date), as the file wrote it."""
    try:
        return str(k) if not isinstance(k, int) or isinstance(k, bool) else brief(k)
    except (ValueError, RecursionError):  # a tuple holding an integer of 5000 digits
        return type(k).__name__


class _Checker:
    def __init__(self, where: str):
        self.where = where

    def fail(self, field: str, problem: str) -> ClusterError:
        return ClusterError(_one_line(f"{self.where}: {field}: {problem}"))

    def mapping(self, v: Any, field: str, example: str) -> dict:
        if not isinstance(v, dict):
            raise self.fail(field, f"must be a mapping like {example}, got {_show(v)}")
        return v

    def known(self, d: dict, field: str, allowed: tuple[str, ...]) -> None:
        for k in d:
            if k not in allowed:
                key = label(k if isinstance(k, str) else _key_text(k))
                near = difflib.get_close_matches(k[:100], allowed, n=1) if isinstance(k, str) else []
                hint = f"did you mean '{near[0]}'? " if near else ""
                path = f"{field}.{key}" if field else key
                raise self.fail(path, f"unknown field; {hint}allowed: {', '.join(allowed)}")

    def number(self, v: Any, field: str, *, lo: float, lo_open: bool, hi: float | None = None,
               what: str = "a positive number") -> float:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) <= sys.float_info.max and math.isfinite(v)
        if ok:
            ok = (v > lo if lo_open else v >= lo) and (hi is None or v < hi)
        if not ok:
            raise self.fail(field, f"must be {what}, got {_show(v)}")
        return float(v)

    def name(self, v: Any, field: str) -> str:
        if not isinstance(v, str) or not NAME_RE.match(v):
            raise self.fail(field, f"must be a name of letters, digits, '_', '.', '-' (quote it if YAML reads it as "
                                   f"a number or boolean), got {_show(v)}")
        return v


def _device(chk: _Checker, raw: Any, i: int, base: Path | None) -> Device:
    f = f"devices[{i}]"
    d = chk.mapping(raw, f, "{name: pi0, gflops: 8}")
    chk.known(d, f, DEVICE_FIELDS)
    if "name" not in d:
        raise chk.fail(f"{f}.name", "missing (every device needs a name, e.g. name: pi0)")
    name = chk.name(d["name"], f"{f}.name")
    if "gflops" not in d:
        raise chk.fail(f"{f}.gflops", f"missing (give device {name!r} its compute rate in GFLOP/s, e.g. gflops: 8)")
    gflops = chk.number(d["gflops"], f"{f}.gflops", lo=0, lo_open=True)
    memory = chk.number(d.get("memory_mb", 4096), f"{f}.memory_mb", lo=0, lo_open=True)
    load = chk.number(d.get("cpu_load", 0), f"{f}.cpu_load", lo=0, lo_open=False, hi=1,
                      what="a fraction in [0, 1) (0 = idle, 0.6 = 60% busy with other work)")
    schedule = load_schedule(chk, d["load"], f"{f}.load") if "load" in d else ()
    if schedule and "cpu_load" not in d:  # both given (a plan's cluster): cpu_load is the load now, e.g. measured
        load = next((v for t, v in reversed(schedule) if t <= 0), 0.0)
    cpus = d.get("cpus")
    if cpus is not None:
        cpus = chk.number(cpus, f"{f}.cpus", lo=0, lo_open=True)
    profile = d.get("profile")
    if profile is not None:
        if not isinstance(profile, str) or not profile.strip():
            raise chk.fail(f"{f}.profile", f"must be a file path (relative to the cluster file), got {_show(profile)}")
        if not profile.isprintable():  # a NUL, a newline, half of a surrogate pair: no file has that name
            raise chk.fail(f"{f}.profile", f"{_show(profile)} is not a file name (it holds a control character); "
                                           "name the profile file edgeslice profile wrote")
        try:
            p = Path(profile).expanduser()
            if not p.is_absolute():
                p = (base if base is not None else Path.cwd()) / p
            profile = str(p.resolve())
        except (RuntimeError, OSError, ValueError) as e:  # ~nosuchuser/p.json; a name the file system cannot hold
            raise chk.fail(f"{f}.profile", f"cannot find {path_label(profile)} ({one_line(e)[:80]}); "
                                           "write the path relative to the cluster file or in full") from None
        try:
            profile_data = Profile.read(profile)
        except ClusterError as e:
            raise chk.fail(f"{f}.profile", str(e)) from None
    else:
        profile_data = None
    scale = chk.number(d.get("scale", 1.0), f"{f}.scale", lo=0, lo_open=True)
    return Device(name=name, gflops=gflops, memory_mb=memory, cpu_load=load, cpus=cpus, profile=profile, scale=scale,
                  profile_data=profile_data, load_schedule=schedule)


def _link(chk: _Checker, d: dict, f: str, inherit: Link | None) -> Link:
    if "bandwidth_mbps" in d:
        bw = chk.number(d["bandwidth_mbps"], f"{f}.bandwidth_mbps", lo=0, lo_open=True)
    elif inherit is not None:
        bw = inherit.bandwidth_mbps
    else:
        raise chk.fail(f"{f}.bandwidth_mbps", "missing (give the link speed in Mbit/s, e.g. bandwidth_mbps: 50)")
    if "latency_ms" in d:
        lat = chk.number(d["latency_ms"], f"{f}.latency_ms", lo=0, lo_open=False, what="a number >= 0")
    else:
        lat = inherit.latency_ms if inherit is not None else 0.0
    return Link(bw, lat)


def _links(chk: _Checker, raw: Any, names: list[str]) -> tuple[Link, tuple[tuple[frozenset, Link], ...]]:
    if raw is None:
        return DEFAULT_LINK, ()
    links = chk.mapping(raw, "links", "{default: {bandwidth_mbps: 50, latency_ms: 1}, overrides: [...]}")
    chk.known(links, "links", LINKS_FIELDS)
    default = DEFAULT_LINK
    if links.get("default") is not None:
        dd = chk.mapping(links["default"], "links.default", "{bandwidth_mbps: 50, latency_ms: 1}")
        chk.known(dd, "links.default", LINK_FIELDS)
        default = _link(chk, dd, "links.default", None)
    raw_ov = links.get("overrides")
    if raw_ov is None:
        return default, ()
    if not isinstance(raw_ov, list):
        raise chk.fail("links.overrides", f"must be a list like [{{between: [a, b], bandwidth_mbps: 20}}], got {_show(raw_ov)}")
    overrides: list[tuple[frozenset, Link]] = []
    first: dict[frozenset, int] = {}
    for i, o in enumerate(raw_ov):
        f = f"links.overrides[{i}]"
        o = chk.mapping(o, f, "{between: [pi0, edge], bandwidth_mbps: 20, latency_ms: 5}")
        chk.known(o, f, OVERRIDE_FIELDS)
        if "between" not in o:
            raise chk.fail(f"{f}.between", "missing (name the two devices the link joins, e.g. between: [pi0, edge])")
        pair = o["between"]
        if not isinstance(pair, list) or len(pair) != 2:
            raise chk.fail(f"{f}.between", f"must list exactly two devices, e.g. [pi0, edge], got {_show(pair)}")
        for n in pair:
            if not isinstance(n, str) or n not in names:
                raise chk.fail(f"{f}.between", f"unknown device {brief(n)} (devices: {listing(names)})")
        a, b = pair
        if a == b:
            raise chk.fail(f"{f}.between", f"names {brief(a)} twice; a link joins two different devices")
        if not any(k in o for k in LINK_FIELDS):
            raise chk.fail(f, "sets neither bandwidth_mbps nor latency_ms; give at least one or remove the override")
        key = frozenset((a, b))
        if key in first:
            raise chk.fail(f"{f}.between", f"the link {a}-{b} is already set by links.overrides[{first[key]}]; keep one")
        first[key] = i
        overrides.append((key, _link(chk, o, f, default)))
    return default, tuple(overrides)


def _trace(chk: _Checker, raw: Any) -> tuple[tuple[float, float], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise chk.fail("bandwidth_trace", f"must be a list of [time_s, factor] steps, e.g. [[0, 1.0], [0.5, 0.4]], got {_show(raw)}")
    steps: list[tuple[float, float]] = []
    for i, step in enumerate(raw):
        f = f"bandwidth_trace[{i}]"
        if not isinstance(step, list) or len(step) != 2:
            raise chk.fail(f, f"must be a pair [time_s, factor], e.g. [0.5, 0.4], got {_show(step)}")
        t = chk.number(step[0], f"{f}[0]", lo=0, lo_open=False, what="a time in seconds >= 0")
        k = chk.number(step[1], f"{f}[1]", lo=0, lo_open=True, what="a positive bandwidth factor")
        if steps and t < steps[-1][0]:
            raise chk.fail(f"{f}[0]", f"time {brief(step[0])} comes before the previous step's {steps[-1][0]:g}; "
                                      "list steps in time order")
        steps.append((t, k))
    return tuple(steps)


def parse_cluster(data: dict, where: str, *, base: str | Path | None = None) -> Cluster:
    """Validate already-parsed YAML ``data`` and build a :class:`Cluster`.

    ``where`` names the source (the file path) and starts every error message.
    ``base`` is the folder relative ``profile`` paths are resolved against;
    by default the folder of ``where``.
    """
    where = str(where)
    chk = _Checker(where)
    base = Path(base) if base is not None else Path(where).parent
    if data is None:
        raise chk.fail("devices", "missing (the file is empty; a cluster needs at least one device, "
                                  "e.g. devices: [{name: pi0, gflops: 8}])")
    if not isinstance(data, dict):
        raise chk.fail("top level", f"must be a mapping with 'devices:' (allowed fields: {', '.join(TOP_FIELDS)}), "
                                    f"got {_show(data)}")
    chk.known(data, "", TOP_FIELDS)

    name = data.get("name")
    if name is None:
        name = Path(where).stem or "cluster"
    elif not isinstance(name, str) or not name.strip() or not name.isprintable():
        raise chk.fail("name", f"must be a text label for the cluster (no control characters), got {_show(name)}")

    raw_devices = data.get("devices")
    if raw_devices is None:
        raise chk.fail("devices", "missing (a cluster needs at least one device, e.g. devices: [{name: pi0, gflops: 8}])")
    if not isinstance(raw_devices, list):
        raise chk.fail("devices", f"must be a list of devices like [{{name: pi0, gflops: 8}}], got {_show(raw_devices)}")
    if not raw_devices:
        raise chk.fail("devices", "empty (a cluster needs at least one device)")
    devices = [_device(chk, d, i, base) for i, d in enumerate(raw_devices)]
    names = [d.name for d in devices]
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        if n in seen:
            raise chk.fail("devices", f"device {brief(n)} is listed twice (devices[{seen[n]}] and devices[{i}]); "
                                      f"rename or remove one")
        seen[n] = i

    default, overrides = _links(chk, data.get("links"), names)

    def endpoint(field: str, fallback: str) -> str:
        v = data.get(field)
        if v is None:
            return fallback
        if not isinstance(v, str) or v not in names:
            raise chk.fail(field, f"{_show(v)} is not a device (devices: {listing(names)})")
        return v

    source = endpoint("source", names[0])
    sink = endpoint("sink", source)

    medium = data.get("medium", "switched")
    if medium is None:
        medium = "switched"
    if medium not in MEDIA:
        raise chk.fail("medium", f"must be 'switched' (a link per pair) or 'shared' (one channel for all transfers), "
                                 f"got {_show(medium)}")

    trace = _trace(chk, data.get("bandwidth_trace"))

    try:
        return Cluster(name=name, devices=tuple(devices), default_link=default, overrides=overrides,
                       source=source, sink=sink, medium=medium, bandwidth_trace=trace)
    except ClusterError as e:  # model.py's own checks; prefix the file so the message stays locatable
        raise ClusterError(_one_line(f"{where}: {e}")) from None


# -------------------------------------------------------------------- bundled


def builtin_clusters() -> dict[str, Path]:
    """The bundled example clusters, name -> file path, sorted by name.

    >>> sorted(builtin_clusters())  # doctest: +NORMALIZE_WHITESPACE
    ['hetero3', 'iot-edge', 'local4', 'mec', 'mec-testbed', 'pi4x4',
     'testbed-fl', 'testbed-hetero', 'testbed4']
    """
    if not EXAMPLES_DIR.is_dir():
        return {}
    return {p.stem: p for p in sorted(EXAMPLES_DIR.glob("*.yaml"))}


def resolve_cluster(name_or_path: str | Path | Cluster) -> Cluster:
    """Load a cluster from a file path, or by the name of a bundled example.

    An existing file wins over a bundled name, so a local ``pi4x4.yaml`` in the
    working folder is used before the bundled one.

    >>> resolve_cluster("iot-edge").link("pi3", "edge").bandwidth_mbps
    10.0

    A :class:`Cluster` value is returned as it is (a plan's own cluster, say).
    """
    if isinstance(name_or_path, Cluster):
        return name_or_path
    p = Path(name_or_path)
    try:
        kind = "file" if p.is_file() else "folder" if p.is_dir() else "other" if p.exists() else None
    except OSError as e:  # a name too long for the file system, a folder that may not be searched
        why = e.strerror or _one_line(e)
        raise _not_found(f"cannot read cluster file {path_label(p)}: {why}", why) from None
    if kind == "file":
        return load_cluster(p)
    bundled = builtin_clusters()
    key = str(name_or_path)
    stem = key[:-5] if key.endswith(".yaml") else key
    if stem in bundled:
        return load_cluster(bundled[stem])
    names = ", ".join(bundled) or "none found"
    if p.suffix in (".yaml", ".yml") or "/" in key or "\\" in key or kind is not None:
        reason = "Is a directory" if kind == "folder" else "No such file or directory"
        raise _not_found(f"cannot read cluster file {path_label(key)}: {reason} (bundled clusters: {names})", reason)
    raise _not_found(f"unknown cluster {brief(key)}: not a file and not a bundled cluster (bundled: {names}); "
                     f"give a path to a cluster YAML file or one of those names",
                     f"not a file and not a bundled cluster: {names}")


def _not_found(message: str, reason: str) -> ClusterError:
    """The error of a cluster name that names nothing; ``reason`` says why without repeating the name (for wrappers)."""
    err = ClusterError(message)
    err.reason = reason
    return err
