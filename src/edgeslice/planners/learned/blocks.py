"""A task's M blocks from a real model: consecutive layer ranges cut where one tensor crosses.

Li et al. cut each DNN into M consecutive blocks and give each block CPU
cycles ``c_m``, a data size and input bits ``I_m``.  Here the blocks come from
the model's :class:`~edgeslice.graph.layer.LayerGraph`: the cuts are chosen
among the boundaries where exactly one tensor crosses (every boundary of a
chain model, between residual blocks of a ResNet), by a DP that makes the
blocks' FLOPs as even as it can (least squares against ``total / M``); the
cycles are ``FLOPs / flops_per_cycle``; ``I_m`` is the bytes of the tensor
entering block m (``I_1`` the image) and ``out_bytes[m]`` what it hands on.

>>> b = model_blocks("vgg16", 6)
>>> len(b.flops), b.in_bytes[0] == 3 * 224 * 224 * 4
(6, True)
>>> max(b.flops) / min(b.flops) < 2.5
True
>>> model_blocks("alexnet", 40)
Traceback (most recent call last):
...
edgeslice.errors.OptionError: mec blocks=40: alexnet (3x224x224) has 21 single-tensor boundaries, so at most 22 blocks; use blocks <= 22
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from edgeslice.errors import OptionError


@dataclass(frozen=True)
class Blocks:
    """M consecutive blocks of one model: FLOPs, bytes in, bytes out, and where each starts in the layer list."""

    model: str
    input_shape: tuple[int, ...]
    flops: tuple[float, ...]
    in_bytes: tuple[float, ...]
    out_bytes: tuple[float, ...]
    starts: tuple[int, ...]

    @property
    def m(self) -> int:
        return len(self.flops)


def _balanced_cuts(cum: np.ndarray, points: list[int], m: int) -> list[int]:
    """``m - 1`` cut positions among ``points`` minimising Σ (block FLOPs − total/m)² (exact DP, O(P² m))."""
    total = cum[-1]
    target = total / m
    pos = [0] + points + [len(cum) - 1]
    P = len(pos)
    INF = float("inf")
    best = np.full((m + 1, P), INF)
    back = np.zeros((m + 1, P), dtype=int)
    best[0, 0] = 0.0
    for j in range(1, m + 1):
        for b in range(1, P):
            if j == m and b != P - 1:
                continue
            seg = cum[pos[b]] - cum[np.array(pos[:b])]
            cand = best[j - 1, :b] + (seg - target) ** 2
            a = int(np.argmin(cand))
            best[j, b], back[j, b] = cand[a], a
    cuts, b = [], P - 1
    for j in range(m, 0, -1):
        a = back[j, b]
        if j > 1:
            cuts.append(pos[a])
        b = a
    return sorted(cuts)


@functools.lru_cache(maxsize=64)
def model_blocks(model: str, m: int, input_shape: tuple[int, ...] | None = None) -> Blocks:
    """The ``m`` blocks of zoo model (or model spec) ``model``; refuses an ``m`` the model cannot be cut into."""
    from edgeslice.graph.trace import trace
    from edgeslice.planners._shared.common import crossing_bytes, cut_points

    graph, _ = trace(model, input_shape, meta=True)
    shape = tuple(graph.input_shape)
    points = cut_points(graph)
    if m - 1 > len(points):
        raise OptionError(f"mec blocks={m}: {model} ({'x'.join(map(str, shape))}) has {len(points)} single-tensor "
                          f"boundaries, so at most {len(points) + 1} blocks; use blocks <= {len(points) + 1}")
    fl = np.array([float(l.flops) for l in graph.layers])
    cum = np.concatenate([[0.0], np.cumsum(fl)])
    cuts = _balanced_cuts(cum, points, m) if m > 1 else []
    B = crossing_bytes(graph)
    edges = [0, *cuts, len(graph.layers)]
    flops = tuple(float(cum[b] - cum[a]) for a, b in zip(edges, edges[1:]))
    ins = tuple(float(B[a]) for a in edges[:-1])
    outs = tuple(float(B[b]) for b in edges[1:])
    return Blocks(model, shape, flops, ins, outs, tuple(edges[:-1]))
