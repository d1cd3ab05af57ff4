"""The Plan: what runs where — the only contract between planning and execution.

A plan is a sequence of *segments*, each a run of consecutive layers (in the
LayerGraph's topological order, so always convex) with one way of cutting it:

``whole``
    one part computes every layer of the segment.
``spatial``
    each part computes a rectangle ``rows × cols`` of the segment's output map
    (row strips, an R×C grid, unequal sizes — any exact tiling).
``channel``
    each part computes a range of output channels (or output features of a
    Linear layer).
``input``
    the segment is one Linear layer; each part multiplies a range of its input
    features and produces a partial sum that the consumers reduce.

A plan also records the model it was made for (spec, input shape, batch and
the graph's fingerprint), the devices and where the input appears (``source``)
and the result is wanted (``sink``), and the whole cluster it was planned for
(``cluster``: devices with their speeds and profiles' content, links, medium,
bandwidth trace — see :mod:`edgeslice.cluster.serial`), so simulating, running
or showing it later uses exactly what the planner saw.  Plans are frozen
dataclasses that serialise to versioned, indented JSON a person can read and
edit; loading checks the structure, :func:`edgeslice.plan.validate.validate`
checks it against the model, :func:`edgeslice.plan.validate.plan_cluster`
picks the cluster it runs on.

File versions: 2 (this one) carries the cluster as an object; version 1
named it (a bundled cluster or a file path, or null) and still loads: the name
is resolved when the file is read, as version-1 commands did.

Example::

    >>> p = Plan(model=ModelRef("vgg16", (3, 224, 224), 1, "abc"), devices=("d0",),
    ...          source="d0", sink="d0", segments=(Segment("features_0", "classifier_6", "whole", (Part("d0"),)),))
    >>> Plan.from_json(p.to_json()) == p
    True
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeslice.cluster.model import Cluster, json_value_problem, path_label
from edgeslice.errors import ClusterError, PlanError, brief, listing

PLAN_FORMAT = "edgeslice-plan"
PLAN_VERSION = 2
READS_VERSIONS = (1, 2)
CUTS = ("whole", "spatial", "channel", "input")
_RANGE_FIELDS = ("rows", "cols", "channels", "inputs")
_INT_MAX = 2**63 - 1  # sizes and ranges beyond this fit no tensor; refusing them keeps every message short
_DEEP = "nested too deeply to be a plan (a plan is a few levels of objects and lists)"


def _is_int(v, lo: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= _INT_MAX


@dataclass(frozen=True)
class ModelRef:
    """The model a plan was made for; everything needed to rebuild it."""

    spec: str
    input_shape: tuple[int, ...]
    batch: int
    fingerprint: str
    weights: str | None = None
    source: str | None = None  # "sha256:<hex>" of the model file a `file.py:factory` spec names (refused once it changes)


@dataclass(frozen=True)
class Part:
    """One piece of a segment, placed on ``device``.  Which ranges are set depends on the cut."""

    device: str
    rows: tuple[int, int] | None = None
    cols: tuple[int, int] | None = None
    channels: tuple[int, int] | None = None
    inputs: tuple[int, int] | None = None

    def describe(self) -> str:
        bits = [f"{f}={getattr(self, f)[0]}:{getattr(self, f)[1]}" for f in _RANGE_FIELDS if getattr(self, f) is not None]
        return f"{self.device}" + (f" ({', '.join(bits)})" if bits else "")


@dataclass(frozen=True)
class Segment:
    """Layers ``first``..``last`` (inclusive, by name) cut as ``cut`` into ``parts``."""

    first: str
    last: str
    cut: str
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class Plan:
    """A complete partitioning of one model over named devices (see module docstring)."""

    model: ModelRef
    devices: tuple[str, ...]
    source: str
    sink: str
    segments: tuple[Segment, ...]
    planner: str = "manual"
    options: tuple[tuple[str, Any], ...] = field(default=())
    cluster: Cluster | None = None  # the cluster it was planned for; None: identical devices (Cluster.uniform)

    # ---- serialisation -------------------------------------------------
    def to_dict(self) -> dict:
        segs = []
        for s in self.segments:
            parts = []
            for p in s.parts:
                d: dict[str, Any] = {"device": p.device}
                for f in _RANGE_FIELDS:
                    v = getattr(p, f)
                    if v is not None:
                        d[f] = list(v)
                parts.append(d)
            segs.append({"layers": [s.first, s.last], "cut": s.cut, "parts": parts})
        return {
            "format": PLAN_FORMAT,
            "version": PLAN_VERSION,
            "model": {
                "spec": self.model.spec,
                "input": list(self.model.input_shape),
                "batch": self.model.batch,
                "fingerprint": self.model.fingerprint,
                "weights": self.model.weights,
                **({"source": self.model.source} if self.model.source else {}),
            },
            "devices": list(self.devices),
            "source": self.source,
            "sink": self.sink,
            "planner": {"name": self.planner, "options": dict(self.options)},
            "segments": segs,
            "cluster": None if self.cluster is None else self.cluster.to_dict(),
        }

    def to_json(self) -> str:
        # One part per line keeps long plans readable and diffable.
        d = self.to_dict()
        segs = d.pop("segments")
        cluster = d.pop("cluster")
        head = json.dumps(d, indent=2)[:-2]
        lines = []
        for i, s in enumerate(segs):
            parts = ",\n".join("        " + json.dumps(p) for p in s["parts"])
            lines.append(
                f'    {{"layers": {json.dumps(s["layers"])}, "cut": {json.dumps(s["cut"])}, "parts": [\n{parts}\n    ]}}'
            )
        return (head + ',\n  "segments": [\n' + ",\n".join(lines) + "\n  ],\n"
                + '  "cluster": ' + _pretty(cluster, 2) + "\n}\n")

    @classmethod
    def from_json(cls, text: str, where: str = "plan") -> "Plan":
        text = text.removeprefix("\ufeff")  # a UTF-8 byte-order mark, as some editors write (cluster files accept it too)
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PlanError(f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
        except RecursionError:
            raise PlanError(f"{where}: {_DEEP}") from None
        except ValueError as exc:  # an integer of more digits than Python reads
            raise PlanError(f"{where}: {json_value_problem(exc)}") from None
        return cls.from_dict(d, where)

    @classmethod
    def from_dict(cls, d: Any, where: str = "plan") -> "Plan":
        """Check the structure of a parsed plan file and build the Plan; raise :class:`PlanError` naming the field."""
        try:
            return cls._from_dict(d, where)
        except RecursionError:  # a dict built in code can nest deeper than any message can show
            raise PlanError(f"{where}: {_DEEP}") from None

    @classmethod
    def _from_dict(cls, d: Any, where: str) -> "Plan":
        def need(obj, key, typ, ctx):
            if not isinstance(obj, dict) or key not in obj:
                raise PlanError(f"{where}: {ctx}missing field {key!r}")
            v = obj[key]
            if typ is int and isinstance(v, bool) or not isinstance(v, typ):
                tname = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
                raise PlanError(f"{where}: {ctx}field {key!r} must be {tname}, got {type(v).__name__}")
            return v

        if not isinstance(d, dict) or d.get("format") != PLAN_FORMAT:
            raise PlanError(f"{where}: not an edgeslice plan (expected \"format\": \"{PLAN_FORMAT}\")")
        ver = d.get("version")
        if ver not in READS_VERSIONS or isinstance(ver, bool):
            raise PlanError(f"{where}: plan version {brief(ver)} is not supported (this edgeslice reads versions "
                            f"{', '.join(map(str, READS_VERSIONS))}); re-run `edgeslice plan`")
        m = need(d, "model", dict, "")
        inp = need(m, "input", list, "model: ")
        if not inp or len(inp) > 8 or not all(_is_int(v, 1) for v in inp):
            raise PlanError(f"{where}: model: 'input' must be a list of positive integers like [3, 224, 224]")
        batch = need(m, "batch", int, "model: ")
        if not _is_int(batch, 1):
            raise PlanError(f"{where}: model: 'batch' must be at least 1 (and below 2**63), got {brief(batch)}")
        weights = m.get("weights")
        if weights is not None and not isinstance(weights, str):
            raise PlanError(f"{where}: model: 'weights' must be a file name or null")
        source = m.get("source")
        if source is not None and not (isinstance(source, str) and source.startswith("sha256:")):
            raise PlanError(f"{where}: model: 'source' must be 'sha256:<hex>' (the model file's digest) or absent")
        spec = need(m, "spec", str, "model: ")
        if not spec.strip() or not spec.isprintable():
            raise PlanError(f"{where}: model: 'spec' must name a model like 'vgg16' or 'net.py:factory', got {brief(spec)}")
        model = ModelRef(spec, tuple(inp), batch, need(m, "fingerprint", str, "model: "), weights, source)
        devices = need(d, "devices", list, "")
        if not devices or not all(isinstance(x, str) and x for x in devices):
            raise PlanError(f"{where}: 'devices' must be a non-empty list of device names")
        pl = d.get("planner") or {}
        if not isinstance(pl, dict):
            raise PlanError(f"{where}: 'planner' must be an object like {{\"name\": \"random\", \"options\": {{}}}}")
        pname = "manual" if pl.get("name") is None else pl["name"]
        if not isinstance(pname, str):
            raise PlanError(f"{where}: planner: 'name' must be the planner's name (text), got {type(pname).__name__}")
        opts = pl.get("options") or {}
        if not isinstance(opts, dict):
            raise PlanError(f"{where}: planner: 'options' must be an object")
        for k, v in opts.items():  # a dict built in code may hold what no plan file can: check before it is saved
            try:
                ok = isinstance(k, str) and json.dumps(v) is not None
            except (TypeError, ValueError):  # a set, an integer of 5000 digits
                ok = False
            if not ok:
                raise PlanError(f"{where}: planner: 'options' must map option names (text) to JSON values; "
                                f"{brief(k)} maps to {brief(v)}")
        cluster = _cluster(d.get("cluster"), ver, where)
        segs_raw = need(d, "segments", list, "")
        if not segs_raw:
            raise PlanError(f"{where}: 'segments' is empty; a plan needs at least one segment")
        segments = []
        for i, s in enumerate(segs_raw):
            ctx = f"segment {i}: "
            layers = need(s, "layers", list, ctx)
            if len(layers) != 2 or not all(isinstance(x, str) for x in layers):
                raise PlanError(f"{where}: {ctx}'layers' must be [first_layer_name, last_layer_name]")
            cut = need(s, "cut", str, ctx)
            if cut not in CUTS:
                raise PlanError(f"{where}: {ctx}cut {brief(cut)} is unknown; use one of {', '.join(CUTS)}")
            parts_raw = need(s, "parts", list, ctx)
            if not parts_raw:
                raise PlanError(f"{where}: {ctx}has no parts")
            parts = []
            for j, p in enumerate(parts_raw):
                pctx = f"{ctx}part {j}: "
                dev = need(p, "device", str, pctx)
                rng = {}
                for f in _RANGE_FIELDS:
                    if f in p:
                        v = p[f]
                        if not (isinstance(v, list) and len(v) == 2 and all(_is_int(x, -_INT_MAX) for x in v)):
                            raise PlanError(f"{where}: {pctx}{f!r} must be [lo, hi] (two integers)")
                        rng[f] = (v[0], v[1])
                unknown = set(p) - {"device", *_RANGE_FIELDS}
                if unknown:
                    raise PlanError(f"{where}: {pctx}unknown field(s) {listing(sorted(map(str, unknown)), 4)}; a part has "
                                    f"'device' and the ranges its cut takes ({', '.join(_RANGE_FIELDS)})")
                parts.append(Part(dev, **rng))
            segments.append(Segment(layers[0], layers[1], cut, tuple(parts)))
        if cluster is not None:
            missing = [x for x in devices if x not in cluster.names]
            if missing:
                raise PlanError(f"{where}: device {brief(missing[0])} of 'devices' is not in the plan's cluster "
                                f"{brief(cluster.name)} (its devices: {listing(cluster.names)}); add it to 'cluster.devices' "
                                "or re-run `edgeslice plan`")
        return cls(
            model=model,
            devices=tuple(devices),
            source=need(d, "source", str, ""),
            sink=need(d, "sink", str, ""),
            segments=tuple(segments),
            planner=pname,
            options=tuple(sorted(opts.items())),
            cluster=cluster,
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "Plan":
        try:
            text = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise PlanError(f"cannot read plan file {path_label(path)}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
                            "a plan file is the JSON `edgeslice plan` writes") from None
        except OSError as exc:
            raise PlanError(f"cannot read plan file {path_label(path)}: {exc.strerror or exc}") from None
        except ValueError:  # a NUL character in the name, or half of a surrogate pair
            raise PlanError(f"cannot read plan file {path_label(path)}: not a valid file name") from None
        return cls.from_json(text, where=str(path))


def _cluster(raw: Any, version: int, where: str) -> Cluster | None:
    """The plan file's ``cluster``: an object (version 2), or a name resolved now (version 1), or null."""
    if raw is None:
        return None
    if version == 1:
        if not isinstance(raw, str) or not raw.strip():
            raise PlanError(f"{where}: 'cluster' must be a file name or null in a version-1 plan")
        from edgeslice.cluster.load import resolve_cluster

        try:
            return resolve_cluster(raw)
        except ClusterError as exc:
            why = getattr(exc, "reason", None) or str(exc)  # the reason alone when the message would repeat the name
            raise PlanError(f"{where}: this version-1 plan names cluster {path_label(raw, 60)}, which cannot be loaded ({why}); "
                            "put that file back, or re-run `edgeslice plan --cluster C` to make a plan that carries its cluster") from None
    if not isinstance(raw, dict):
        raise PlanError(f"{where}: 'cluster' must be the cluster object `edgeslice plan` writes (or null), "
                        f"not {type(raw).__name__}")
    try:
        return Cluster.from_dict(raw, where=f"{where}: cluster")
    except ClusterError as exc:
        raise PlanError(str(exc)) from None


def _pretty(v: Any, indent: int, width: int = 132) -> str:
    """JSON of ``v``: on one line when it fits in ``width``, else one item per line (the cluster's layout)."""
    flat = json.dumps(v)
    if indent + len(flat) <= width or not isinstance(v, (dict, list)) or not v:
        return flat
    pad, end = " " * (indent + 2), " " * indent
    if isinstance(v, dict):
        items = [f"{pad}{json.dumps(k)}: {_pretty(x, indent + 2, width)}" for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    return "[\n" + ",\n".join(pad + _pretty(x, indent + 2, width) for x in v) + "\n" + end + "]"
