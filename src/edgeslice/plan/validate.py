"""Checking a Plan against the LayerGraph it claims to be for.

:func:`check_model` rejects a plan made for another model, input or batch
(a VGG-16 plan given to ResNet-50).  :func:`validate` checks everything the
lowering relies on — segments cover the layers in order, each cut is legal for
its segment, parts tile the segment's output exactly, devices exist — and
returns the segments resolved to layer indices.  Every message names the
segment (with its layer range) and the part at fault and says how to fix it.
"""

from __future__ import annotations

import functools

from edgeslice.errors import PlanError, PlanMismatchError, brief, listing
from edgeslice.errors import label as _label
from edgeslice.graph.layer import LayerGraph
from edgeslice.plan.plan import Plan, Segment


def _shape(dims) -> str:
    text = "x".join(map(str, dims)) if all(isinstance(d, int) and abs(d) < 10**18 for d in dims) else "?"
    return text if len(text) <= 60 else text[:60] + "..."


def _same_spec(a: str, b: str) -> bool:
    """Whether two model specs name the same model (a model file named relative to here, or absolute)."""
    from edgeslice.models import normalize_spec

    if a == b:
        return True
    try:
        return normalize_spec(a) == normalize_spec(b)
    except (OSError, RuntimeError, ValueError):  # a spec naming no possible file (a NUL character, a symlink loop)
        return False


def check_model(plan: Plan, graph: LayerGraph) -> None:
    """Raise :class:`PlanMismatchError` unless ``plan`` was made for exactly this traced model."""
    m = plan.model
    if not _same_spec(m.spec, graph.spec):
        raise PlanMismatchError(f"plan was made for model {brief(m.spec)}, not {brief(graph.spec)}; make a new plan with "
                                f"`edgeslice plan --model {graph.spec}`")
    if tuple(m.input_shape) != tuple(graph.input_shape):
        raise PlanMismatchError(
            f"plan was made for input {_shape(m.input_shape)}, not {_shape(graph.input_shape)}; re-plan with --input")
    if m.batch != graph.batch:
        raise PlanMismatchError(f"plan was made for batch {brief(m.batch)}, not {graph.batch}; re-plan with --batch {graph.batch}")
    if m.fingerprint != graph.fingerprint:
        raise PlanMismatchError(
            f"plan fingerprint {_label(m.fingerprint)} does not match model {brief(graph.spec)} traced at input "
            f"{'x'.join(map(str, graph.input_shape))} (fingerprint {graph.fingerprint}): the model's code or the plan's "
            "'model' fields (input, spec) changed since the plan was made; re-run `edgeslice plan`")


def segment_label(graph: LayerGraph, i: int, seg: Segment) -> str:
    return f"segment {i} ({_label(seg.first)}..{_label(seg.last)})"


def cuttable(graph: LayerGraph, first: int, last: int) -> tuple[bool, str]:
    """Whether layers ``first..last`` have a single output (the last layer's), as every non-whole cut needs."""
    outs = graph.outputs_of(first, last)
    last_name = graph.layers[last].name
    if outs != (last_name,):
        others = [o for o in outs if o != last_name]
        return False, f"layer {others[0]!r} inside it is read by a later segment; only the segment's last layer may leave it"
    return True, ""


def spatial_ok(graph: LayerGraph, first: int, last: int) -> tuple[bool, str]:
    ok, why = cuttable(graph, first, last)
    if not ok:
        return ok, why
    for l in graph.layers[first : last + 1]:
        if not l.spatial:
            return False, f"layer {l.name!r} ({l.kind}, output {l.out_shape}) is not a spatially local layer on a feature map"
    return True, ""


def _tiles_exactly(boxes, bounds: tuple[int, ...]) -> str | None:
    return _tiles_exactly_cached(tuple(boxes), tuple(bounds))


@functools.lru_cache(maxsize=4096)
def _tiles_exactly_cached(boxes: tuple[tuple[tuple[int, int], ...], ...], bounds: tuple[int, ...]) -> str | None:
    """None when ``boxes`` tile ``[0, bounds)`` exactly, else a description of the first problem."""
    for j, b in enumerate(boxes):
        for (lo, hi), n in zip(b, bounds):
            if not (0 <= lo < hi <= n):
                return f"part {j} range {brief(lo, 20)}:{brief(hi, 20)} is empty or outside 0:{n}"
    for j in range(len(boxes)):
        for k in range(j + 1, len(boxes)):
            if all(max(a0, b0) < min(a1, b1) for (a0, a1), (b0, b1) in zip(boxes[j], boxes[k])):
                return f"parts {j} and {k} overlap"
    area = sum(_vol(b) for b in boxes)
    total = _vol(tuple((0, n) for n in bounds))
    if area != total:
        return f"parts cover {brief(area, 20)} of {total} output elements; they must cover the whole output"
    return None


def _vol(b) -> int:
    v = 1
    for lo, hi in b:
        v *= hi - lo
    return v


def validate(plan: Plan, graph: LayerGraph) -> tuple[tuple[int, int], ...]:
    """Check ``plan`` against ``graph``; return each segment's (first, last) layer indices."""
    check_model(plan, graph)
    devs = set(plan.devices)
    if len(devs) != len(plan.devices):
        dup = next(d for d in plan.devices if plan.devices.count(d) > 1)
        raise PlanError(f"plan lists device {brief(dup)} twice in 'devices'; each device once")
    for what in ("source", "sink"):
        d = getattr(plan, what)
        if d not in devs:
            raise PlanError(f"plan {what} {brief(d)} is not one of its devices ({listing(plan.devices)})")
    spans: list[tuple[int, int]] = []
    expect = 0
    n = len(graph.layers)
    for i, seg in enumerate(plan.segments):
        label = segment_label(graph, i, seg)
        for nm in (seg.first, seg.last):
            if not graph.has(nm):
                raise PlanError(f"{label}: layer {brief(nm)} is not in model {brief(graph.spec)}; "
                                f"`edgeslice layers --model {graph.spec}` lists the layer names")
        a, b = graph.index(seg.first), graph.index(seg.last)
        if a != expect:
            want = graph.layers[expect].name if expect < n else "(none: the previous segment ends the model)"
            raise PlanError(f"{label}: must start at layer {want!r} (segments must cover the layers in order, without gaps or overlaps)")
        if b < a:
            raise PlanError(f"{label}: its last layer comes before its first")
        expect = b + 1
        for j, p in enumerate(seg.parts):
            if p.device not in devs:
                raise PlanError(f"{label} part {j}: unknown device {brief(p.device)}; the plan's devices are "
                                f"{listing(plan.devices)}")
        last = graph.layers[b]
        shape = last.out_shape
        fields = {"whole": (), "spatial": ("rows", "cols"), "channel": ("channels",), "input": ("inputs",)}[seg.cut]
        for j, p in enumerate(seg.parts):
            for f in ("rows", "cols", "channels", "inputs"):
                has = getattr(p, f) is not None
                if has and f not in fields:
                    takes = " and ".join(repr(x) for x in fields) or "no ranges"
                    raise PlanError(f"{label} part {j}: a {seg.cut!r} cut part takes {takes}, not {f!r}")
                if not has and f in fields:
                    raise PlanError(f"{label} part {j}: a {seg.cut!r} cut part needs {f!r} (as [lo, hi])")
        if seg.cut == "whole":
            if len(seg.parts) != 1:
                raise PlanError(f"{label}: a 'whole' segment has exactly one part, not {len(seg.parts)}")
        elif seg.cut == "spatial":
            ok, why = spatial_ok(graph, a, b)
            if not ok:
                raise PlanError(f"{label}: cannot be cut spatially: {why}; make it 'whole' or move the boundary")
            bad = _tiles_exactly([(p.rows, p.cols) for p in seg.parts], shape[1:])
            if bad:
                raise PlanError(f"{label}: spatial parts must tile its {shape[1]}x{shape[2]} output exactly: {bad}")
        elif seg.cut == "channel":
            ok, why = cuttable(graph, a, b)
            if not ok:
                raise PlanError(f"{label}: cannot be cut by channels: {why}")
            bad = _tiles_exactly([(p.channels,) for p in seg.parts], shape[:1])
            if bad:
                raise PlanError(f"{label}: channel parts must tile its {shape[0]} output channels exactly: {bad}")
        elif seg.cut == "input":
            if a != b or graph.layers[a].kind != "linear":
                raise PlanError(f"{label}: an 'input' (partial-sum) cut needs a segment of exactly one Linear layer")
            fin = graph.layers[a].in_shapes[0][0]
            bad = _tiles_exactly([(p.inputs,) for p in seg.parts], (fin,))
            if bad:
                raise PlanError(f"{label}: input parts must tile its {fin} input features exactly: {bad}")
        spans.append((a, b))
    if expect != n:
        raise PlanError(f"plan ends at layer {graph.layers[expect - 1].name!r}; layers from {graph.layers[expect].name!r} on are not in any segment")
    return tuple(spans)


# ---- the cluster a plan runs on ------------------------------------------------


def check_cluster(plan: Plan, cluster, given: str | None = None) -> None:
    """Raise :class:`ClusterError` unless every device of ``plan`` is in ``cluster``.

    ``given`` is how the user named ``cluster`` (a ``--cluster`` argument), used in the fix.  Links never go
    missing: a cluster has a default link between every pair of its devices.
    """
    from edgeslice.errors import ClusterError

    missing = [d for d in plan.devices if d not in cluster.names]
    if missing:
        if cluster is plan.cluster:
            fix = "the plan disagrees with its own cluster; re-run `edgeslice plan`"
        else:
            fix = (f"use a --cluster that has device {brief(missing[0])}, leave --cluster out to use the plan's own "
                   f"cluster, or re-plan for this one with `edgeslice plan --cluster {_label(given or cluster.name, 80)}`")
        raise ClusterError(f"plan uses device {brief(missing[0])}, which is not in cluster {brief(cluster.name)} "
                           f"(its devices: {listing(cluster.names)}); {fix}")


def plan_cluster(plan: Plan, override=None):
    """The cluster ``plan`` runs on: ``override`` (a path, bundled name or Cluster) if given, else the one it carries.

    A plan without a cluster (made for ``--devices N``) runs on N identical devices.  An override is checked
    against the plan (:func:`check_cluster`).

    >>> from edgeslice.cluster.load import resolve_cluster
    >>> from edgeslice.graph import trace
    >>> from edgeslice.planners import make_plan
    >>> g, _ = trace("alexnet", (3, 64, 64))
    >>> p = make_plan("local", g, resolve_cluster("pi4x4"))
    >>> plan_cluster(p) is p.cluster, plan_cluster(p, "pi4x4") == p.cluster
    (True, True)
    >>> try:
    ...     plan_cluster(p, "local4")
    ... except Exception as e:
    ...     print(str(e)[:60])
    plan uses device 'pi0', which is not in cluster 'local4' (it
    """
    from edgeslice.cluster.load import resolve_cluster
    from edgeslice.cluster.model import Cluster

    if override is not None and override != "":
        cluster = resolve_cluster(override)
        check_cluster(plan, cluster, None if isinstance(override, Cluster) else str(override))
        return cluster
    if plan.cluster is not None:
        check_cluster(plan, plan.cluster)  # a plan built in code may disagree with its own cluster
        return plan.cluster
    return Cluster.uniform(len(plan.devices))
