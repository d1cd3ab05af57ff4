"""What each device must hold: its share of the weights plus its largest working set of activations.

Note *resident*.  A device's predicted resident bytes are

- **weights**: every layer it computes any part of, at its *share*: a layer
  whose steps on the device cover output channels ``[lo, hi)`` (the hull) of
  ``C`` holds ``(hi − lo) / C`` of its parameters — what
  :func:`~edgeslice.runtime.pieces.prune` keeps — and a partial-sum Linear part
  also only its input-feature hull; a module used by several layers counts once;
- **activations**: the largest working set of one step: the bytes of the
  step's inputs (for a part, the same fraction of each input as its share of
  the output — but a dense convolution or a Linear layer reads every input
  channel) plus its output.  Whole-layer placements therefore cost a fixed
  ``a[l] = Σ input bytes + output bytes`` per layer, and a device's peak is the
  maximum over the layers it runs — a form exact planners can carry as a
  constraint (``resident[d] = Σ w[l]·x[l, d] + max_l a[l]·x[l, d]``).

It is a prediction for one request in flight; the runtime frees a tensor after
its last use, so between steps it holds less.

Example::

    >>> from edgeslice.cluster import Cluster
    >>> from edgeslice.graph import trace
    >>> from edgeslice.planners import make_plan
    >>> from edgeslice.program import lower
    >>> g, _ = trace("alexnet", (3, 64, 64))
    >>> mem = resident(lower(make_plan("local", g, devices=2), g), g)
    >>> mem["d0"].weights == g.param_bytes, mem["d1"].total
    (True, 0)
"""

from __future__ import annotations

from typing import NamedTuple

from edgeslice.errors import EdgesliceError
from edgeslice.graph.layer import LayerGraph
from edgeslice.program.program import ComputeTask, InputTask, Program
from edgeslice.program.regions import volume

# Layers whose parameters a channel (or input-feature) part slices; any other layer's are kept whole.
SLICED_KINDS = ("conv", "linear", "batchnorm")


class DeviceMemory(NamedTuple):
    """Predicted resident bytes of one device (note *resident*)."""

    weights: int
    activations: int

    @property
    def total(self) -> int:
        return self.weights + self.activations


class MemoryFitError(EdgesliceError):
    """A plan needs more memory on a device than the cluster gives it."""


def layer_activation_bytes(graph: LayerGraph, name: str) -> int:
    """``a[l]``: a whole layer's working set, its inputs plus its output (note *resident*)."""
    l = graph.layer(name)
    unit = graph.batch * graph.itemsize
    ins = sum(_numel(s) for s in l.in_shapes)
    return (ins + _numel(l.out_shape)) * unit


def channel_hulls(program: Program, graph: LayerGraph, device: str) -> tuple[dict, dict]:
    """``(out_hull, in_hull)``: per module target ``device`` runs, the hull of the output channels (features)
    its steps compute, and for partial-sum parts of the input features they read — the slices a device keeps
    (:func:`~edgeslice.runtime.pieces.prune`) and the share :func:`resident` counts."""
    out_hull: dict[str, tuple[int, int]] = {}
    in_hull: dict[str, tuple[int, int]] = {}
    for t in program.tasks:
        if not (isinstance(t, ComputeTask) and t.device == device):
            continue
        for s in t.steps:
            target = graph.layer(s.layer).target
            lo, hi = s.region[0]
            a, b = out_hull.get(target, (lo, hi))
            out_hull[target] = (min(a, lo), max(b, hi))
            if s.inputs is not None:
                a, b = in_hull.get(target, s.inputs)
                in_hull[target] = (min(a, s.inputs[0]), max(b, s.inputs[1]))
    return out_hull, in_hull


def resident(program: Program, graph: LayerGraph) -> dict[str, DeviceMemory]:
    """Every device's predicted resident bytes in ``program`` (note *resident*)."""
    unit = graph.batch * graph.itemsize
    act = dict.fromkeys(program.devices, 0)
    for t in program.tasks:
        if isinstance(t, InputTask):  # the model input, held where it appears until it is used or sent
            act[t.device] = max(act[t.device], volume(t.region) * unit)
        if not isinstance(t, ComputeTask):
            continue
        for s in t.steps:
            l = graph.layer(s.layer)
            ins = sum(_numel(x) for x in l.in_shapes)
            if s.inputs is not None:  # a partial-sum part reads only its input features
                ins = ins * (s.inputs[1] - s.inputs[0]) // max(l.in_shapes[0][-1], 1)
            else:
                ins = int(ins * _input_fraction(l, s.region))
            act[t.device] = max(act[t.device], (ins + volume(s.region)) * unit)
    first = {}
    for l in graph.layers:
        first.setdefault(l.target, l)
    out = {}
    for d in program.devices:
        out_hull, in_hull = channel_hulls(program, graph, d)
        w = 0
        for target, (lo, hi) in out_hull.items():
            l = first[target]
            share = l.param_bytes
            if l.kind in SLICED_KINDS and l.param_bytes:
                share = share * (hi - lo) / max(l.out_shape[0], 1)
                if target in in_hull:
                    ilo, ihi = in_hull[target]
                    share = share * (ihi - ilo) / max(l.in_shapes[0][-1], 1)
            w += int(share)
        out[d] = DeviceMemory(w, act[d])
    return out


def resident_mb(program: Program, graph: LayerGraph) -> dict[str, float]:
    """``resident`` in MB (10^6 bytes), device → total: the ``resident_mb`` field of ``simulate --json``."""
    return {d: m.total / 1e6 for d, m in resident(program, graph).items()}


def misfits(program: Program, graph: LayerGraph, cluster) -> list[tuple[str, DeviceMemory, float]]:
    """``(device, need, memory_mb)`` for every device of ``cluster`` whose need exceeds its ``memory_mb``."""
    mem = resident(program, graph)
    bad = []
    for d in cluster.devices:
        m = mem.get(d.name)
        if m is not None and m.total > d.memory_mb * 1e6:
            bad.append((d.name, m, d.memory_mb))
    return bad


def fits(program: Program, graph: LayerGraph, cluster) -> bool:
    return not misfits(program, graph, cluster)


def require_fit(program: Program, graph: LayerGraph, cluster, who: str) -> None:
    """Raise :class:`MemoryFitError` naming the first device that ``program`` does not fit, with what it needs and has."""
    bad = misfits(program, graph, cluster)
    if bad:
        name, m, have = bad[0]
        more = f" (and {len(bad) - 1} more device{'s' if len(bad) > 2 else ''})" if len(bad) > 1 else ""
        raise MemoryFitError(
            f"{who}: device {name!r} would need {m.total / 1e6:.1f} MB ({m.weights / 1e6:.1f} MB of weights + "
            f"{m.activations / 1e6:.1f} MB of activations) but has memory_mb {have:g}{more}; give it more memory_mb, "
            f"or use a planner that places layers within memory_mb (layerwise, nfl, dads) or splits every layer's "
            f"weights (modnn)")


# What one worker process holds before any model: the interpreter and torch (measured: benchmarks/RESULTS.md,
# "worker memory"; `import torch` alone is about 250 MB here).
PROCESS_BYTES = 250 * 10**6


def whole_model_bytes(graph: LayerGraph) -> int:
    """The unpartitioned model's working set: all its weights plus its largest layer working set.

    What computing the reference output (``check``, ``run``'s verification) holds at its peak.
    """
    return graph.param_bytes + max((layer_activation_bytes(graph, l.name) for l in graph.layers), default=0)


def host_bytes(program: Program, graph: LayerGraph, *, processes: int = 0) -> int:
    """Bytes this machine needs to run ``program`` here and check it against the whole model.

    Every device's resident bytes (they all live on this host: in one process for ``check``, in ``processes``
    worker processes for ``run``, each costing :data:`PROCESS_BYTES` more), plus the whole model's run.
    """
    return sum(m.total for m in resident(program, graph).values()) + whole_model_bytes(graph) + processes * PROCESS_BYTES


def available_bytes() -> int:
    """Memory this machine can give now (``MemAvailable`` of /proc/meminfo; the free pages elsewhere)."""
    try:
        for line in open("/proc/meminfo", encoding="ascii"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def require_host_memory(need: int, what: str) -> None:
    """Refuse, with the figures, work that would need more memory than this machine has available.

    Checked before any tensor is built, so an input such as ``3x100000x100000`` ends in one line, not in an
    allocation failure (or the kernel's OOM killer) half-way through.
    """
    have = available_bytes()
    if need > have:
        raise MemoryFitError(f"{what} needs about {need / 1e6:,.0f} MB of memory but this machine has "
                             f"{have / 1e6:,.0f} MB available; use a smaller --input or --batch, or run it on a "
                             f"larger machine")


def _input_fraction(l, region) -> float:
    """The share of a layer's inputs a step reads: its output share, except that a dense convolution or a
    Linear layer reads every input channel (feature) whatever output channels it computes."""
    frac = volume(region) / max(_numel(l.out_shape), 1)
    if l.kind == "linear":
        return 1.0
    if l.kind == "conv" and len(l.out_shape) == 3 and (l.geometry is None or getattr(l.geometry, "groups", 1) == 1):
        lo, hi = region[0]
        return frac * l.out_shape[0] / max(hi - lo, 1)  # the spatial share only
    return frac


def _numel(shape) -> int:
    n = 1
    for v in shape:
        n *= int(v)
    return n
