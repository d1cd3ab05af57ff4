"""Keep on a device only what its tasks use: its layers, and for channel parts its weight slice.

:func:`prune` deletes every module the device never runs and slices the
parameters of convolutions, Linear and batch-norm layers to the hull of the
output channels (or, for partial-sum parts, input features) its steps compute,
recording where each slice starts so :class:`~edgeslice.execute.kernels.Kernels`
indexes them correctly.  A device holding a quarter of fc6's output channels
holds a quarter of its 411 MB.
"""

from __future__ import annotations

import ctypes
import gc

import torch
from torch import fx, nn

from edgeslice.execute.kernels import Kernels
from edgeslice.graph.layer import LayerGraph
from edgeslice.program.program import ComputeTask, Program


def _trim() -> None:
    """Return freed heap to the OS so the resident size shows the share (glibc only)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def prune(graph: LayerGraph, gm: fx.GraphModule, program: Program, device: str) -> Kernels:
    """Strip ``gm`` down to what ``device`` runs in ``program``; return kernels over what is left."""
    out_hull: dict[str, tuple[int, int]] = {}
    in_hull: dict[str, tuple[int, int]] = {}
    used_targets: set[str] = set()
    for t in program.tasks:
        if not (isinstance(t, ComputeTask) and t.device == device):
            continue
        for s in t.steps:
            layer = graph.layer(s.layer)
            used_targets.add(layer.target)
            lo, hi = s.region[0]
            a, b = out_hull.get(layer.target, (lo, hi))
            out_hull[layer.target] = (min(a, lo), max(b, hi))
            if s.inputs is not None:
                a, b = in_hull.get(layer.target, s.inputs)
                in_hull[layer.target] = (min(a, s.inputs[0]), max(b, s.inputs[1]))
    offsets: dict[str, tuple[int, int]] = {}
    module_layers = [l for l in graph.layers if _is_module(gm, l.target)]
    for l in module_layers:
        if l.target not in used_targets:
            continue
        m = gm.get_submodule(l.target)
        lo, hi = out_hull[l.target]
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.modules.batchnorm._BatchNorm)):
            full_out = m.weight.shape[0] if getattr(m, "weight", None) is not None else m.num_features
            ilo, ihi = in_hull.get(l.target, (0, None))
            if (lo, hi) == (0, full_out) and ilo == 0 and ihi in (None, getattr(m, "in_features", None)):
                continue
            with torch.no_grad():
                for name, p in list(m.named_parameters(recurse=False)) + list(m.named_buffers(recurse=False)):
                    if p is None or p.dim() == 0:
                        continue
                    piece = p[lo:hi]
                    if isinstance(m, nn.Linear) and name == "weight" and l.target in in_hull:
                        piece = piece[:, ilo:ihi]
                    piece = piece.clone()
                    if isinstance(p, nn.Parameter):
                        setattr(m, name, nn.Parameter(piece, requires_grad=False))
                    else:
                        m.register_buffer(name, piece)
            offsets[l.target] = (lo, ilo if l.target in in_hull else 0)
    for l in module_layers:
        if l.target not in used_targets and _is_module(gm, l.target):
            gm.delete_submodule(l.target)
    gc.collect()
    _trim()
    return Kernels(graph, gm, offsets)


def _is_module(gm: fx.GraphModule, target: str) -> bool:
    try:
        gm.get_submodule(target)
        return True
    except AttributeError:
        return False


def param_bytes(gm: fx.GraphModule) -> int:
    return sum(p.numel() * p.element_size() for p in gm.parameters()) + sum(
        b.numel() * b.element_size() for b in gm.buffers())
