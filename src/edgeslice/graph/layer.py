"""The LayerGraph: a traced model as plain, hashable data.

A :class:`LayerGraph` lists the model's layers in topological order, each with
its kind, producers, per-sample shapes, FLOPs, weight and activation bytes and,
for windowed layers, the geometry that spatial cutting needs.  It holds no
tensors and no modules: planners, the lowering and the cost models read only
this.  The executable side (modules, functions) stays in the traced
``GraphModule`` that :func:`edgeslice.graph.trace.trace_model` returns beside it.

Shapes exclude the batch dimension (``(C, H, W)`` or ``(F,)``); FLOPs and
activation bytes are for the whole batch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property

from edgeslice.graph.cache import AnalysisCache

INPUT = "input"
"""Name of the model input in every LayerGraph, Plan and Program."""

# Layers whose output at a spatial position depends only on a bounded window of
# their inputs: a segment made only of these may be cut into row strips / tiles.
SPATIAL_KINDS = frozenset(
    {
        "conv",
        "maxpool",
        "avgpool",
        "adaptive_avgpool",
        "adaptive_maxpool",
        "batchnorm",
        "act",
        "identity",
        "binary",
        "cat",
        "pixel_unshuffle",
        "permute",  # a channel shuffle: whole channels move, planes stay
        "slice",  # x[:, a:b], split, chunk: an offset box
        "upsample",  # nearest / bilinear: a bounded window of source rows and columns
        "expand",  # a broadcast of size-1 dimensions
        "mean",  # over H and W: reads the whole map (a global pool)
        "pad",  # zeros around H and W (a U-Net matching its skip's size)
    }
)

# Every kind the region algebra and the executor understand.
KINDS = SPATIAL_KINDS | {"linear", "flatten", "unflatten"}


@dataclass(frozen=True)
class Geometry:
    """Window geometry of a conv or pooling layer, per spatial axis (rows, cols)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: int | None = None


@dataclass(frozen=True)
class Layer:
    """One node of the traced model.

    ``inputs`` names producer layers (or :data:`INPUT`) in argument order,
    repeats included (``x + x`` lists ``x`` twice).  ``attrs`` holds
    kind-specific facts as sorted ``(key, value)`` pairs, e.g. ``("dim", 1)``
    for a concat or ``("factor", 2)`` for pixel-unshuffle.
    """

    name: str
    kind: str
    target: str
    inputs: tuple[str, ...]
    in_shapes: tuple[tuple[int, ...], ...]
    out_shape: tuple[int, ...]
    flops: int
    param_bytes: int
    out_bytes: int
    geometry: Geometry | None = None
    attrs: tuple[tuple[str, object], ...] = ()

    def attr(self, key: str, default=None):
        for k, v in self.attrs:
            if k == key:
                return v
        return default

    @property
    def spatial(self) -> bool:
        """True when the layer's output is a (C, H, W) map computed from local windows."""
        return self.kind in SPATIAL_KINDS and len(self.out_shape) == 3


@dataclass(frozen=True)
class LayerGraph:
    """A traced model: layers in topological order, its input and output."""

    spec: str
    input_shape: tuple[int, ...]
    batch: int
    layers: tuple[Layer, ...]
    output: str
    itemsize: int = 4
    _index: dict = field(default=None, init=False, repr=False, compare=False, hash=False)
    memo: AnalysisCache = field(default=None, init=False, repr=False, compare=False, hash=False)
    """Bounded cache of pure functions of the graph (region analyses, :mod:`edgeslice.graph.cache`); never part of equality."""

    def __post_init__(self):
        object.__setattr__(self, "_index", {l.name: i for i, l in enumerate(self.layers)})
        object.__setattr__(self, "memo", AnalysisCache())

    def index(self, name: str) -> int:
        return self._index[name]

    def has(self, name: str) -> bool:
        return name in self._index

    def layer(self, name: str) -> Layer:
        return self.layers[self._index[name]]

    def shape(self, name: str) -> tuple[int, ...]:
        """Per-sample shape of a layer's output or of the model input."""
        return self.input_shape if name == INPUT else self.layer(name).out_shape

    @cached_property
    def consumers(self) -> dict[str, tuple[str, ...]]:
        """For each tensor name, the layers that read it (model output not included)."""
        out: dict[str, list[str]] = {INPUT: []}
        for l in self.layers:
            out.setdefault(l.name, [])
            for i in dict.fromkeys(l.inputs):
                out.setdefault(i, []).append(l.name)
        return {k: tuple(v) for k, v in out.items()}

    def outputs_of(self, first: int, last: int) -> tuple[str, ...]:
        """Tensors made by layers ``first..last`` (indices, inclusive) that are read outside that range
        or are the model output."""
        key = ("outputs_of", first, last)
        hit = self.memo.get(key)
        if hit is None:
            inside = {l.name for l in self.layers[first : last + 1]}
            hit = self.memo[key] = tuple(
                l.name for l in self.layers[first : last + 1]
                if l.name == self.output or any(c not in inside for c in self.consumers[l.name]))
        return hit

    def inputs_of(self, first: int, last: int) -> tuple[str, ...]:
        """Tensors read by layers ``first..last`` but made outside that range (the model input included)."""
        inside = {l.name for l in self.layers[first : last + 1]}
        out: dict[str, None] = {}
        for l in self.layers[first : last + 1]:
            for i in l.inputs:
                if i not in inside:
                    out[i] = None
        return tuple(out)

    @property
    def flops(self) -> int:
        return sum(l.flops for l in self.layers)

    @property
    def param_bytes(self) -> int:
        return sum(l.param_bytes for l in self.layers)

    @cached_property
    def fingerprint(self) -> str:
        """Hash of the graph's structure and per-sample shapes (independent of batch and weights)."""
        rows = [
            [l.name, l.kind, list(l.inputs), [list(s) for s in l.in_shapes], list(l.out_shape),
             None if l.geometry is None else repr(l.geometry), repr(l.attrs)]
            for l in self.layers
        ]
        blob = json.dumps([list(self.input_shape), self.output, rows], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
