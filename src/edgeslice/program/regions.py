"""Region algebra: which part of each input a region of a layer's output needs.

A *region* is a box over a tensor's per-sample dimensions, one half-open
``(lo, hi)`` range per dimension: ``((c0, c1), (h0, h1), (w0, w1))`` for a
feature map, ``((f0, f1),)`` for a feature vector.  The batch dimension is
always whole and never part of a region.

:func:`backward` maps a requested output region of one layer to the region it
actually computes (the request, widened where a layer can only compute whole
groups — grouped convolutions, pixel-unshuffle, flatten) and the region of each
input it reads.  Windowed layers (conv, pooling) read the rows
``[o0*s - p, (o1-1)*s - p + d*(k-1) + 1)`` clipped to the map: padding exists
only at the true border of the feature map, never at a cut (see
:func:`window`).  The executor pads tiles with exactly the amount this module
computes, so the two cannot disagree.

Example::

    >>> window(0, 112, k=3, s=1, p=1, d=1, size=224)   # top strip of a 3x3 conv
    (-1, 113, 0, 113)
"""

from __future__ import annotations

from math import ceil

import numpy as np

from edgeslice.graph.layer import Layer

Range = tuple[int, int]
Region = tuple[Range, ...]


def full(shape: tuple[int, ...]) -> Region:
    """The region covering a whole per-sample tensor of ``shape``."""
    return tuple((0, int(n)) for n in shape)


def volume(r: Region | None) -> int:
    if r is None:
        return 0
    v = 1
    for lo, hi in r:
        v *= hi - lo if hi > lo else 0
    return v


def intersect(a: Region | None, b: Region | None) -> Region | None:
    """The common part of two regions, or None when they do not overlap."""
    if a is None or b is None:
        return None
    out = []
    for (x0, x1), (y0, y1) in zip(a, b):  # hot in lowering: plain loop, early exit
        lo = x0 if x0 > y0 else y0
        hi = x1 if x1 < y1 else y1
        if lo >= hi:
            return None
        out.append((lo, hi))
    return tuple(out)


def hull(a: Region | None, b: Region | None) -> Region | None:
    """The smallest region containing both (None is the empty region)."""
    if a is None:
        return b
    if b is None:
        return a
    return tuple((min(x0, y0), max(x1, y1)) for (x0, x1), (y0, y1) in zip(a, b))


def contains(outer: Region, inner: Region) -> bool:
    return all(o0 <= i0 and i1 <= o1 for (o0, o1), (i0, i1) in zip(outer, inner))


def slices(outer: Region, inner: Region) -> tuple[slice, ...]:
    """Index (batch included) selecting ``inner`` from a tile that holds ``outer``."""
    return (slice(None),) + tuple(slice(i0 - o0, i1 - o0) for (o0, _), (i0, i1) in zip(outer, inner))


def fmt(r: Region) -> str:
    return "[" + ",".join(f"{lo}:{hi}" for lo, hi in r) + "]"


def parse(s: str) -> Region:
    s = s.strip()
    if not (s.startswith("[") and s.endswith("]")):
        raise ValueError(f"region {s!r} must look like [lo:hi,...]")
    out = []
    for part in s[1:-1].split(","):
        lo, _, hi = part.partition(":")
        out.append((int(lo), int(hi)))
    return tuple(out)


def window(o0: int, o1: int, k: int, s: int, p: int, d: int, size: int) -> tuple[int, int, int, int]:
    """Input rows read by output rows ``[o0, o1)`` of a windowed layer.

    Returns ``(virtual_lo, virtual_hi, lo, hi)``: the range in padded coordinates
    and the same range clipped to the real map ``[0, size)``.  The executor pads
    a tile with ``lo - virtual_lo`` before and ``virtual_hi - hi`` after.
    """
    vlo = o0 * s - p
    vhi = (o1 - 1) * s - p + d * (k - 1) + 1
    lo, hi = max(0, vlo), min(size, vhi)
    last_start = (o1 - 1) * s - p
    first_end = vlo + d * (k - 1)
    if d > 1 or last_start >= size or first_end < 0:
        # Dilated taps leave gaps, and an outermost window may lie wholly in the
        # padding: end the box at the outermost taps that hit real rows, so no
        # unread row is transferred (the padding then covers the gap).
        real = [t for o in range(o0, o1) for t in range(o * s - p, o * s - p + d * k, d) if 0 <= t < size]
        if real:
            lo, hi = min(real), max(real) + 1
    return vlo, vhi, lo, hi


def adaptive_range(o0: int, o1: int, insize: int, outsize: int) -> Range:
    """Input range read by outputs ``[o0, o1)`` of adaptive pooling (torch's bins)."""
    return (o0 * insize) // outsize, ceil(o1 * insize / outsize)


def backward(layer: Layer, out: Region) -> tuple[Region, tuple[Region | None, ...]]:
    """``(computed, inputs)`` for a requested output region ``out`` of ``layer``.

    ``computed`` contains ``out``; ``inputs[i]`` is the region of input ``i``
    read, or None when that input is not needed (a concat branch outside the
    requested channels).
    """
    k = layer.kind
    if k in ("act", "identity", "batchnorm"):
        return out, (out,)
    if k == "binary":
        ins = []
        for shp in layer.in_shapes:
            # a broadcast dimension (size 1 in this input) reads its only element
            ins.append(tuple((0, 1) if n == 1 and m != 1 else o for o, n, m in zip(out, shp, layer.out_shape)))
        return out, tuple(ins)
    if k == "cat":
        (c0, c1), rest = out[0], out[1:]
        ins, off = [], 0
        for shp in layer.in_shapes:
            lo, hi = max(c0, off), min(c1, off + shp[0])
            ins.append(((lo - off, hi - off),) + rest if lo < hi else None)
            off += shp[0]
        return out, tuple(ins)
    if k == "conv":
        g = layer.geometry
        cin, hin, win = layer.in_shapes[0]
        cout = layer.out_shape[0]
        (c0, c1), (h0, h1), (w0, w1) = out
        if g.groups == 1:
            comp_c, in_c = (c0, c1), (0, cin)
        else:
            opg, ipg = cout // g.groups, cin // g.groups
            g0, g1 = c0 // opg, -(-c1 // opg)
            comp_c, in_c = (g0 * opg, g1 * opg), (g0 * ipg, g1 * ipg)
        _, _, rlo, rhi = window(h0, h1, g.kernel[0], g.stride[0], g.padding[0], g.dilation[0], hin)
        _, _, clo, chi = window(w0, w1, g.kernel[1], g.stride[1], g.padding[1], g.dilation[1], win)
        return (comp_c, (h0, h1), (w0, w1)), ((in_c, (rlo, rhi), (clo, chi)),)
    if k in ("maxpool", "avgpool"):
        g = layer.geometry
        _, hin, win = layer.in_shapes[0]
        c, (h0, h1), (w0, w1) = out
        _, _, rlo, rhi = window(h0, h1, g.kernel[0], g.stride[0], g.padding[0], g.dilation[0], hin)
        _, _, clo, chi = window(w0, w1, g.kernel[1], g.stride[1], g.padding[1], g.dilation[1], win)
        return out, ((c, (rlo, rhi), (clo, chi)),)
    if k in ("adaptive_avgpool", "adaptive_maxpool"):
        _, hin, win = layer.in_shapes[0]
        _, hout, wout = layer.out_shape
        c, (h0, h1), (w0, w1) = out
        return out, ((c, adaptive_range(h0, h1, hin, hout), adaptive_range(w0, w1, win, wout)),)
    if k == "pixel_unshuffle":
        r = layer.attr("factor")
        (c0, c1), (h0, h1), (w0, w1) = out
        ic0, ic1 = c0 // (r * r), -(-c1 // (r * r))
        return ((ic0 * r * r, ic1 * r * r), (h0, h1), (w0, w1)), (((ic0, ic1), (h0 * r, h1 * r), (w0 * r, w1 * r)),)
    if k == "flatten":
        shp = layer.in_shapes[0]
        if len(shp) == 1:
            return out, (out,)
        per = 1
        for n in shp[1:]:
            per *= n
        (f0, f1), = out
        i0, i1 = f0 // per, -(-f1 // per)
        return ((i0 * per, i1 * per),), (((i0, i1),) + full(shp[1:]),)
    if k == "linear":
        return out, (full(layer.in_shapes[0]),)
    if k == "slice":  # an offset box of the input
        return out, (tuple((lo + s, hi + s) for (lo, hi), s in zip(out, layer.attr("start"))),)
    if k == "permute":  # whole channels move: the hull of their sources, the same plane
        perm = layer.attr("perm")
        src = perm[out[0][0] : out[0][1]]
        return out, (((min(src), max(src) + 1),) + tuple(out[1:]),)
    if k == "expand":
        shp = layer.in_shapes[0]
        return out, (tuple((0, 1) if n == 1 and m != 1 else o for o, n, m in zip(out, shp, layer.out_shape)),)
    if k == "mean":  # over H and W: the whole plane of each channel
        _, hin, win = layer.in_shapes[0]
        return out, ((out[0], (0, hin), (0, win)),)
    if k == "upsample":
        c, (h0, h1), (w0, w1) = out
        return out, ((c, upsample_span(layer, 0, h0, h1), upsample_span(layer, 1, w0, w1)),)
    if k == "pad":  # the box shifted back by the padding, clipped to the map; None when it is all padding
        left, _, top, _ = layer.attr("pads")
        _, hin, win = layer.in_shapes[0]
        c, (h0, h1), (w0, w1) = out
        r = (max(0, h0 - top), min(hin, h1 - top))
        q = (max(0, w0 - left), min(win, w1 - left))
        return out, ((c, r, q) if r[0] < r[1] and q[0] < q[1] else None,)
    if k == "unflatten":  # (F,) -> (C, H, W) row-major: the flat hull of the box
        _, h, w = layer.out_shape
        (c0, c1), (h0, h1), (w0, w1) = out
        return out, (((c0 * h * w + h0 * w + w0, (c1 - 1) * h * w + (h1 - 1) * w + w1),),)
    raise ValueError(f"layer {layer.name!r}: no region rule for kind {k!r}")


def channel_runs(channels) -> tuple[Range, ...]:
    """Sorted, merged runs of consecutive channel indices: ``[0, 1, 2, 7, 8] -> ((0, 3), (7, 9))``."""
    runs: list[list[int]] = []
    for c in sorted(set(int(c) for c in channels)):
        if runs and runs[-1][1] == c:
            runs[-1][1] = c + 1
        else:
            runs.append([c, c + 1])
    return tuple((lo, hi) for lo, hi in runs)


def exact_reads(layer: Layer, out: Region) -> tuple[Region, ...] | None:
    """The disjoint boxes of its input that ``out`` of ``layer`` really reads, where the box
    :func:`backward` gives (a hull) holds elements it does not; None where that box is exact.

    A channel shuffle (a ``permute`` layer) reads, for output channels ``[c0, c1)``, the channels
    ``perm[c0:c1]``: for a g-group shuffle and one output group, one run of ``C / g**2`` channels
    inside each of the g input groups, not the hull of all of them.  The lowering moves exactly
    these (the all-to-all exchange of DeCNN), the assembler leaves the rest of the hull unset and
    the permute kernel never reads it.

        >>> from edgeslice.graph.layer import Layer
        >>> shuffle = Layer("sh", "permute", "view", ("x",), ((8, 2, 2),), (8, 2, 2), 0, 0, 128,
        ...                 attrs=(("perm", (0, 4, 1, 5, 2, 6, 3, 7)),))
        >>> exact_reads(shuffle, ((0, 4), (0, 2), (0, 2)))
        (((0, 2), (0, 2), (0, 2)), ((4, 6), (0, 2), (0, 2)))
    """
    if layer.kind != "permute":
        return None
    (c0, c1), rest = out[0], tuple(out[1:])
    runs = channel_runs(layer.attr("perm")[c0:c1])
    return tuple((r,) + rest for r in runs) if len(runs) > 1 else None


def upsample_span(layer: Layer, axis: int, o0: int, o1: int) -> Range:
    """Source rows (axis 0) or columns (axis 1) an up-sampling layer reads for outputs ``[o0, o1)``."""
    from edgeslice.program.resample import axis_scale, span

    return span(layer.attr("mode"), layer.attr("align"), layer.in_shapes[0][1 + axis], layer.out_shape[1 + axis],
                axis_scale(layer.attr("scales"), axis), o0, o1)


def _window_many(lo: np.ndarray, hi: np.ndarray, k: int, s: int, p: int, d: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`window`'s clipped ``(lo, hi)`` for many output ranges at once (arrays); the rare
    dilated or all-padding windows go through :func:`window` itself."""
    vlo = lo * s - p
    vhi = (hi - 1) * s - p + d * (k - 1) + 1
    out_lo, out_hi = np.maximum(0, vlo), np.minimum(size, vhi)
    odd = ((hi - 1) * s - p >= size) | (vlo + d * (k - 1) < 0) if d == 1 else np.ones(len(lo), dtype=bool)
    for n in np.flatnonzero(odd):
        _, _, out_lo[n], out_hi[n] = window(int(lo[n]), int(hi[n]), k, s, p, d, size)
    return out_lo, out_hi


def backward_boxes(layer: Layer, box: np.ndarray) -> tuple[np.ndarray, ...]:
    """:func:`backward` for many requests at once that each cover *all channels* of a feature map.

    ``box`` is an ``N × 4`` integer array of ``[h0, h1, w0, w1]`` rows (the
    channel range is whole); returns one such array per input.  This is what
    a spatial cut asks of every layer of its segment: a whole-channel request
    reads whole channels of every input and is never widened (grouped
    convolutions and pixel-unshuffle widen only channels), so rows and columns
    can be carried alone — thousands of tiles in one numpy pass instead of a
    Python call each (the FL planner sweeps every tile of every layout).
    Tested equal to :func:`backward` layer by layer on the model zoo.
    """
    k = layer.kind
    if k in ("act", "identity", "batchnorm", "cat"):
        return (box,) * len(layer.inputs)
    if k == "binary":
        ins = []
        for shp in layer.in_shapes:
            b = box.copy()
            for ax, col in ((1, 0), (2, 2)):
                if shp[ax] == 1 and layer.out_shape[ax] != 1:
                    b[:, col], b[:, col + 1] = 0, 1
            ins.append(b)
        return tuple(ins)
    if k in ("conv", "maxpool", "avgpool"):
        g = layer.geometry
        _, hin, win = layer.in_shapes[0]
        out = np.empty_like(box)
        out[:, 0], out[:, 1] = _window_many(box[:, 0], box[:, 1], g.kernel[0], g.stride[0], g.padding[0], g.dilation[0], hin)
        out[:, 2], out[:, 3] = _window_many(box[:, 2], box[:, 3], g.kernel[1], g.stride[1], g.padding[1], g.dilation[1], win)
        return (out,)
    if k in ("adaptive_avgpool", "adaptive_maxpool"):
        _, hin, win = layer.in_shapes[0]
        _, hout, wout = layer.out_shape
        out = np.empty_like(box)
        out[:, 0], out[:, 1] = (box[:, 0] * hin) // hout, -((-box[:, 1] * hin) // hout)
        out[:, 2], out[:, 3] = (box[:, 2] * win) // wout, -((-box[:, 3] * win) // wout)
        return (out,)
    if k == "pixel_unshuffle":
        return (box * layer.attr("factor"),)
    if k == "permute":  # a whole-channel request reads whole channels of the same plane
        return (box,)
    if k == "slice":
        _, sh, sw = layer.attr("start")
        return (box + np.array([sh, sh, sw, sw]),)
    if k in ("expand", "mean"):
        _, hin, win = layer.in_shapes[0]
        out = box.copy()
        if k == "mean" or hin == 1:
            out[:, 0], out[:, 1] = 0, hin
        if k == "mean" or win == 1:
            out[:, 2], out[:, 3] = 0, win
        return (out,)
    if k == "pad":  # as backward; a box wholly in the padding reads an empty box
        left, _, top, _ = layer.attr("pads")
        _, hin, win = layer.in_shapes[0]
        out = np.stack([np.clip(box[:, 0] - top, 0, hin), np.clip(box[:, 1] - top, 0, hin),
                        np.clip(box[:, 2] - left, 0, win), np.clip(box[:, 3] - left, 0, win)], axis=1)
        empty = (out[:, 0] >= out[:, 1]) | (out[:, 2] >= out[:, 3])
        out[empty] = [0, 0, 0, 0]
        return (out,)
    if k == "upsample":
        from edgeslice.program.resample import axis_scale, spans

        _, hin, win = layer.in_shapes[0]
        _, hout, wout = layer.out_shape
        mode, align, scales = layer.attr("mode"), layer.attr("align"), layer.attr("scales")
        out = np.empty_like(box)
        out[:, 0], out[:, 1] = spans(mode, align, hin, hout, axis_scale(scales, 0), box[:, 0], box[:, 1])
        out[:, 2], out[:, 3] = spans(mode, align, win, wout, axis_scale(scales, 1), box[:, 2], box[:, 3])
        return (out,)
    raise ValueError(f"layer {layer.name!r}: kind {k!r} is not spatially local; no whole-channel tile rule")


def route(layer: Layer, ins, inside, req: dict, external: dict) -> None:
    """Hull what ``layer`` reads (``ins``, one region per input) into ``req`` (producers in ``inside``) or ``external``."""
    for src, ir in zip(layer.inputs, ins):
        if ir is None:
            continue
        if src in inside:
            req[src] = hull(req.get(src), ir)
        else:
            external[src] = hull(external.get(src), ir)


def pull(layer: Layer, out: Region, inside, req: dict, external: dict) -> Region:
    """Back-propagate ``out`` through ``layer`` inside a block; return the region it must compute.

    That region may be wider than ``out`` (whole groups); the inputs are then what the
    widened region reads, routed with :func:`route`.
    """
    comp, ins = backward(layer, out)
    if comp != out:
        _, ins = backward(layer, comp)
    route(layer, ins, inside, req, external)
    return comp


def flops(layer: Layer, computed: Region, batch: int, inputs: Range | None = None) -> int:
    """FLOPs of computing ``computed`` of ``layer`` (torch's counting: conv and matmul only).

    ``inputs`` restricts a Linear layer to a range of its input features
    (a partial-sum part).
    """
    if not layer.flops:
        return 0
    total = 1
    for n in layer.out_shape:
        total *= n
    per_elem = layer.flops // (batch * total)
    f = per_elem * batch * volume(computed)
    if inputs is not None:
        fin = layer.in_shapes[0][0]
        f = f * (inputs[1] - inputs[0]) // fin
    return f
