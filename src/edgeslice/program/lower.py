"""Lowering: Plan + LayerGraph → Program, by region algebra.

For every part of every segment, the region the part must deliver is pulled
backwards through the segment's layers (:func:`analyse_part`): each layer
computes the hull of what its consumers inside the segment need, and the
regions of tensors made outside the segment become the part's *needs*.  A need
is then matched against the producers of that tensor — the parts of earlier
segments, which tile their outputs exactly, or the model input on the source
device: each non-empty intersection is a *piece*, local when producer and
consumer share a device, otherwise a transfer of exactly that region.  Partial
sums (``input`` cuts) are reduced by their consumers.

Lowering is pure and deterministic; for VGG-16 with a 4×4 grid over its first
ten layers it takes a few milliseconds (see benchmarks/RESULTS.md).

Example::

    >>> from edgeslice.graph import trace
    >>> from edgeslice.planners import make_plan
    >>> g, _ = trace("alexnet", (3, 96, 96))
    >>> prog = lower(make_plan("random", g, devices=2, seed=0), g)
    >>> prog.flops >= g.flops
    True
"""

from __future__ import annotations

from edgeslice.errors import LoweringError
from edgeslice.graph.layer import INPUT, LayerGraph
from edgeslice.plan.plan import Part, Plan, Segment
from edgeslice.plan.validate import segment_label, validate
from edgeslice.program import regions as R
from edgeslice.program.program import ComputeTask, InputTask, Need, Out, OutputTask, Piece, Program, Step, TransferTask


def part_requests(graph: LayerGraph, first: int, last: int, seg: Segment, part: Part) -> tuple[dict[str, R.Region], tuple[int, int] | None]:
    """The output regions a part must deliver (by tensor) and its partial-sum input range, if any."""
    lay = graph.layers[last]
    if seg.cut == "whole":
        return {o: R.full(graph.shape(o)) for o in graph.outputs_of(first, last)}, None
    if seg.cut == "spatial":
        return {lay.name: ((0, lay.out_shape[0]), part.rows, part.cols)}, None
    if seg.cut == "channel":
        return {lay.name: (part.channels,) + R.full(lay.out_shape[1:])}, None
    return {lay.name: R.full(lay.out_shape)}, part.inputs  # input (partial sums)


def _extend(r: R.Region, env: R.Region, shape: tuple[int, ...]) -> R.Region:
    """Widen ``r`` to the map's true border wherever it reaches the border of ``env``."""
    return tuple((0 if lo <= elo else lo, n if hi >= ehi else hi) for (lo, hi), (elo, ehi), n in zip(r, env, shape))


def segment_envelope(graph: LayerGraph, first: int, last: int) -> dict[str, R.Region]:
    """What each layer of the segment must compute for the segment's whole output.

    A strided layer may leave the last rows of its input unread; the whole
    model computes them anyway.  Parts reaching the border of this envelope are
    widened to the true border (see :func:`analyse_part`), so the parts of a
    segment together compute every element the model computes — never less —
    and a cut costs exactly its halos.
    """
    key = ("envelope", first, last)
    env = graph.memo.get(key)
    if env is None:
        requests = {o: R.full(graph.shape(o)) for o in graph.outputs_of(first, last)}
        steps, _ = analyse_part(graph, first, last, requests)
        env = graph.memo[key] = {s.layer: s.region for s in steps}
    return env


def analyse_part(graph: LayerGraph, first: int, last: int, requests: dict[str, R.Region],
                 partial: tuple[int, int] | None = None,
                 envelope: dict[str, R.Region] | None = None) -> tuple[tuple[Step, ...], dict[str, R.Region]]:
    """Steps (layer, computed region) in order, and the regions of external tensors read.

    With an ``envelope`` (from :func:`segment_envelope`), a region touching the
    envelope's border is widened to the map's border.  Results are memoised on
    the graph: the analysis depends only on geometry, not on placement, so a
    planner re-evaluating placements of the same cut pays for it once.
    """
    key = ("part", first, last, tuple(requests.items()), partial, envelope is not None)
    hit = graph.memo.get(key)
    if hit is None:
        hit = graph.memo[key] = _analyse_part(graph, first, last, requests, partial, envelope)
    return hit[0], dict(hit[1])


def _analyse_part(graph, first, last, requests, partial, envelope):
    layers = graph.layers[first : last + 1]
    inside = {l.name for l in layers}
    req = dict(requests)
    computed: dict[str, R.Region] = {}
    external: dict[str, R.Region] = {}
    for l in reversed(layers):
        r = req.get(l.name)
        if r is None:
            continue  # nothing downstream in this part needs this layer
        if envelope is not None and l.name in envelope:
            r = _extend(r, envelope[l.name], l.out_shape)
        if partial is not None:
            comp = R.full(l.out_shape)
            R.route(l, ((partial,),), inside, req, external)
        else:
            comp = R.pull(l, r, inside, req, external)  # widened (whole groups) where it must be
        computed[l.name] = comp
    steps = tuple(Step(l.name, computed[l.name], partial) for l in layers if l.name in computed)
    ext = {k: external[k] for k in graph.inputs_of(first, last) if k in external}
    return steps, ext


def exact_needs(graph: LayerGraph, steps: tuple[Step, ...], tensor: str) -> tuple[R.Region, ...] | None:
    """The disjoint boxes of external ``tensor`` that a part's ``steps`` really read, where that is
    less than the hull :func:`analyse_part` gives; None where the hull is what is read.

    Only layers with an exact-read rule (:func:`edgeslice.program.regions.exact_reads`: a channel
    shuffle) narrow it, and only when every step reading ``tensor`` has one: the lowering then
    moves just these boxes (DeCNN's all-to-all exchange at a shuffle carries, from each peer, the
    channels of one group that the permutation sends here, not the whole map).
    """
    key = ("exact", steps, tensor)
    hit = graph.memo.get(key, False)
    if hit is not False:
        return hit
    boxes: list[R.Region] = []
    for s in steps:
        lay = graph.layer(s.layer)
        if tensor not in lay.inputs:
            continue
        ex = R.exact_reads(lay, s.region) if s.inputs is None else None
        if ex is None:
            boxes = []
            break
        boxes.extend(ex)
    out = None
    if boxes:
        merged = _disjoint(boxes)
        out = merged if len(merged) > 1 else None
    graph.memo[key] = out
    return out


def _disjoint(boxes: list[R.Region]) -> tuple[R.Region, ...]:
    """Boxes that differ only in their channel range, merged into disjoint channel runs (else the hull)."""
    rest = {b[1:] for b in boxes}
    if len(rest) != 1:
        h = None
        for b in boxes:
            h = R.hull(h, b)
        return (h,)
    (tail,) = rest
    chans = [c for b in boxes for c in range(*b[0])]
    return tuple((r,) + tail for r in R.channel_runs(chans))


def step_flops(graph: LayerGraph, steps: tuple[Step, ...]) -> int:
    key = ("flops", steps)
    f = graph.memo.get(key)
    if f is None:
        f = graph.memo[key] = sum(R.flops(graph.layer(s.layer), s.region, graph.batch, s.inputs) for s in steps)
    return f


class _Lowering:
    def __init__(self, plan: Plan, graph: LayerGraph):
        self.plan, self.graph = plan, graph
        self.tasks: list = []
        self.producers: dict[str, list[tuple[str, str, R.Region, bool]]] = {}
        self.xfer_cache: dict[tuple, str] = {}

    def resolve(self, tensor: str, region: R.Region, device: str, who: str,
                exact: tuple[R.Region, ...] | None = None) -> Need:
        """Match a need against the producers of ``tensor``: one piece per non-empty intersection.

        With ``exact`` (disjoint boxes inside ``region``, see :func:`exact_needs`) only those are
        matched: the rest of ``region`` is never read and never moved.
        """
        pieces, partial, covered = [], False, 0
        unit = self.graph.batch * self.graph.itemsize
        producers = self.producers.get(tensor, ())
        wanted = exact if exact is not None and not any(p[3] for p in producers) else (region,)
        for (tid, pdev, preg, is_partial), box in ((p, b) for p in producers for b in wanted):
            inter = R.intersect(box, preg)
            if inter is None:
                continue
            partial |= is_partial
            vol = R.volume(inter)
            covered += vol
            if pdev == device:
                pieces.append(Piece(tid, inter))
                continue
            key = (tid, device, tensor, inter)
            xid = self.xfer_cache.get(key)
            if xid is None:
                xid = f"x{len(self.xfer_cache)}"
                self.xfer_cache[key] = xid
                self.tasks.append(TransferTask(xid, pdev, device, tensor, inter, tid, vol * unit))
            pieces.append(Piece(xid, inter))
        need_vol = sum(R.volume(b) for b in wanted)
        ok = all(p.region == region for p in pieces) if partial else covered == need_vol
        if not pieces or not ok:
            raise LoweringError(f"{who}: needs {tensor}{R.fmt(region)} but the earlier parts provide only {covered} of its "
                                f"{need_vol} elements; this is a bug in the plan's segments or in edgeslice")
        return Need(tensor, region, tuple(pieces), partial)

    def run(self) -> Program:
        plan, g = self.plan, self.graph
        spans = validate(plan, g)
        self.tasks.append(InputTask("in", plan.source, INPUT, R.full(g.input_shape)))
        self.producers[INPUT] = [("in", plan.source, R.full(g.input_shape), False)]
        for si, (seg, (a, b)) in enumerate(zip(plan.segments, spans)):
            made: dict[str, list] = {}
            envelope = segment_envelope(g, a, b)
            for pi, part in enumerate(seg.parts):
                who = f"{segment_label(g, si, seg)} part {pi}"
                requests, partial = part_requests(g, a, b, seg, part)
                steps, ext = analyse_part(g, a, b, requests, partial, envelope)
                needs = tuple(self.resolve(t, r, part.device, who, exact_needs(g, steps, t)) for t, r in ext.items())
                tid = f"s{si}p{pi}"
                outs = tuple(Out(t, r, partial is not None) for t, r in requests.items())
                self.tasks.append(ComputeTask(tid, part.device, si, pi, needs, steps, outs, step_flops(g, steps)))
                for o in outs:
                    made.setdefault(o.tensor, []).append((tid, part.device, o.region, o.partial))
            self.producers.update(made)
        need = self.resolve(g.output, R.full(g.shape(g.output)), plan.sink, "model output")
        self.tasks.append(OutputTask("out", plan.sink, need))
        tensors = g.memo.get("tensors")
        if tensors is None:
            tensors = g.memo["tensors"] = ((INPUT, g.input_shape),) + tuple((l.name, l.out_shape) for l in g.layers)
        return Program(g.spec, g.fingerprint, g.batch, g.itemsize, plan.devices, plan.source, plan.sink, tensors, tuple(self.tasks))


def lower(plan: Plan, graph: LayerGraph) -> Program:
    """Lower ``plan`` for ``graph`` to a Program (validates the plan first)."""
    return _Lowering(plan, graph).run()
