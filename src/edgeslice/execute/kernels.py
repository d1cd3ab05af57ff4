"""Kernels: compute a region of one layer's output from tiles of its inputs.

A kernel receives, for each input of the layer, a tile holding exactly the
region :func:`edgeslice.program.regions.backward` says it reads (None for an
input it does not need), and returns the tile of the step's region.  Windowed
layers pad only where the region touches the true border of the feature map,
by the amounts :func:`~edgeslice.program.regions.window` gives — zeros for
convolutions, -inf for max pooling, and for average pooling a sum followed by
division with the divisor torch would have used at that output position (so
``ceil_mode`` and ``count_include_pad`` come out exact).  Channel ranges slice
the weights, so a device holding a channel part only touches its share.

Tiles carry the batch dimension first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import fx

from edgeslice.graph.layer import Layer, LayerGraph
from edgeslice.program.program import Step
from edgeslice.program.regions import adaptive_range, backward, window


def _pads(layer: Layer, region) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) padding for a windowed layer computing ``region``."""
    g = layer.geometry
    _, hin, win = layer.in_shapes[0]
    (_, _), (h0, h1), (w0, w1) = region
    tv0, tv1, t0, t1 = window(h0, h1, g.kernel[0], g.stride[0], g.padding[0], g.dilation[0], hin)
    lv0, lv1, l0, l1 = window(w0, w1, g.kernel[1], g.stride[1], g.padding[1], g.dilation[1], win)
    return (l0 - lv0, lv1 - l1, t0 - tv0, tv1 - t1)


class Kernels:
    """Executable kernels for every layer of ``graph``, backed by the traced GraphModule ``gm``."""

    def __init__(self, graph: LayerGraph, gm: fx.GraphModule, offsets: dict[str, tuple[int, int]] | None = None):
        self.graph = graph
        self.gm = gm
        self.nodes = {n.name: n for n in gm.graph.nodes}
        self._divisors: dict[str, torch.Tensor] = {}
        self._fulls: dict[str, tuple] = {}
        # module target -> (first output channel, first input feature) its parameters start at,
        # when a device keeps only a slice of them (see edgeslice.runtime.pieces)
        self.offsets = offsets or {}

    def _full(self, layer: Layer):
        f = self._fulls.get(layer.name)
        if f is None:
            f = self._fulls[layer.name] = tuple((0, n) for n in layer.out_shape)
        return f

    def _module(self, layer: Layer):
        return self.gm.get_submodule(layer.target)

    def _divisor(self, layer: Layer) -> torch.Tensor:
        """Per-output-position divisor torch's avg_pool2d uses, over the whole output map."""
        d = self._divisors.get(layer.name)
        if d is None:
            g = layer.geometry
            _, h, w = layer.in_shapes[0]
            ones = torch.ones(1, 1, h, w, dtype=torch.float64)
            sums = F.avg_pool2d(ones, g.kernel, g.stride, g.padding, g.ceil_mode, g.count_include_pad, divisor_override=1)
            avgs = F.avg_pool2d(ones, g.kernel, g.stride, g.padding, g.ceil_mode, g.count_include_pad, g.divisor_override)
            d = (sums / avgs)[0, 0].to(torch.float32)
            self._divisors[layer.name] = d
        return d

    def _call_node(self, layer: Layer, tiles: list[torch.Tensor]):
        node = self.nodes[layer.name]
        if node.op == "call_module":
            return self._module(layer)(tiles[0])
        it = iter(tiles)
        args = fx.node.map_arg(node.args, lambda _: next(it))
        if node.op == "call_function":
            return node.target(*args, **node.kwargs)
        return getattr(args[0], node.target)(*args[1:], **node.kwargs)

    def run(self, layer: Layer, step: Step, tiles: list[torch.Tensor | None]) -> torch.Tensor:
        k = layer.kind
        region = step.region
        x = tiles[0]
        if (step.inputs is None and k not in OWN_KERNEL and layer.target not in self.offsets
                and region == self._full(layer)
                and all(t is not None and tuple(t.shape[1:]) == shp for t, shp in zip(tiles, layer.in_shapes))):
            # the whole layer on its whole inputs: run the model's own op (no padding copies; bitwise the model)
            return self._call_node(layer, tiles)
        if k == "conv":
            m = self._module(layer)
            g = layer.geometry
            (c0, c1), _, _ = region
            left, right, top, bottom = _pads(layer, region)
            if left == right and top == bottom:  # the conv pads by itself: no padded copy of the input
                pad = (top, left)
            else:
                x, pad = F.pad(x, (left, right, top, bottom)), 0
            groups = 1
            if g.groups > 1:
                opg = layer.out_shape[0] // g.groups
                groups = (c1 - c0) // opg
            o = self.offsets.get(layer.target, (0, 0))[0]
            w = m.weight[c0 - o : c1 - o]
            b = None if m.bias is None else m.bias[c0 - o : c1 - o]
            return F.conv2d(x, w, b, g.stride, pad, g.dilation, groups)
        if k == "maxpool":
            g = layer.geometry
            x = F.pad(x, _pads(layer, region), value=float("-inf"))
            return F.max_pool2d(x, g.kernel, g.stride, 0, g.dilation, ceil_mode=False)
        if k == "avgpool":
            g = layer.geometry
            x = F.pad(x, _pads(layer, region))
            s = F.avg_pool2d(x, g.kernel, g.stride, 0, ceil_mode=False, divisor_override=1)
            _, (h0, h1), (w0, w1) = region
            return s / self._divisor(layer)[h0:h1, w0:w1]
        if k in ("adaptive_avgpool", "adaptive_maxpool"):
            return self._adaptive(layer, region, x)
        if k == "batchnorm":
            m = self._module(layer)
            o = self.offsets.get(layer.target, (0, 0))[0]
            c0, c1 = region[0][0] - o, region[0][1] - o
            return F.batch_norm(x, m.running_mean[c0:c1], m.running_var[c0:c1],
                                None if m.weight is None else m.weight[c0:c1],
                                None if m.bias is None else m.bias[c0:c1], False, 0.0, m.eps)
        if k == "linear":
            m = self._module(layer)
            o, i = self.offsets.get(layer.target, (0, 0))
            if step.inputs is not None:
                a, b = step.inputs
                return F.linear(x, m.weight[:, a - i : b - i], m.bias if (a == 0 and m.bias is not None) else None)
            f0, f1 = region[0]
            return F.linear(x, m.weight[f0 - o : f1 - o], None if m.bias is None else m.bias[f0 - o : f1 - o])
        if k == "identity":
            return x
        if k in ("act", "binary"):
            return self._call_node(layer, tiles)
        if k == "cat":
            return torch.cat([t for t in tiles if t is not None], 1)
        if k == "flatten":
            return x.flatten(1)
        if k == "pixel_unshuffle":
            return F.pixel_unshuffle(x, layer.attr("factor"))
        if k == "slice":  # the tile is the shifted box already
            return x
        if k == "permute":
            perm = layer.attr("perm")
            (c0, c1) = region[0]
            src = perm[c0:c1]
            return x[:, [c - min(src) for c in src]]
        if k == "expand":
            return x.expand(x.shape[0], *(hi - lo for lo, hi in region))
        if k == "mean":
            return x.mean((2, 3), keepdim=layer.attr("keepdim"))
        if k == "unflatten":
            return self._unflatten(layer, region, x)
        if k == "upsample":
            return self._upsample(layer, step, tiles[0])
        if k == "pad":
            return self._pad(layer, region, x)
        raise ValueError(f"layer {layer.name!r}: no kernel for kind {k!r}")

    def _unflatten(self, layer: Layer, region, x: torch.Tensor) -> torch.Tensor:
        _, h, w = layer.out_shape
        (c0, c1), (h0, h1), (w0, w1) = region
        f0 = c0 * h * w + h0 * w + w0
        idx = (torch.arange(c0, c1)[:, None, None] * (h * w) + torch.arange(h0, h1)[None, :, None] * w
               + torch.arange(w0, w1)[None, None, :]) - f0
        return x[:, idx.reshape(-1)].reshape(x.shape[0], c1 - c0, h1 - h0, w1 - w0)

    def _pad(self, layer: Layer, region, x: torch.Tensor | None) -> torch.Tensor:
        """Zeros of the step's box, with the tile (None: the box is all padding) where the input lies in it."""
        left, _, top, _ = layer.attr("pads")
        (c0, c1), (h0, h1), (w0, w1) = region
        out = torch.zeros((self.graph.batch, c1 - c0, h1 - h0, w1 - w0), dtype=torch.float32)
        if x is not None:
            r, q = max(0, h0 - top) + top - h0, max(0, w0 - left) + left - w0
            out[:, :, r : r + x.shape[2], q : q + x.shape[3]] = x
        return out

    def _upsample(self, layer: Layer, step: Step, x: torch.Tensor) -> torch.Tensor:
        """The model's own up-sampling on a zero map that holds the tile where it lies: torch's exact arithmetic.

        Output rows read only the source rows the tile holds (:mod:`edgeslice.program.resample`), so the zeros
        around it are never weighted; the cost is a whole-map buffer for the tile's channels.
        """
        _, hin, win = layer.in_shapes[0]
        _, (h0, h1), (w0, w1) = step.region
        (r0, _), (q0, _) = step_inputs(layer, step)[0][1:]  # where the tile starts: the rows and columns it holds
        buf = x.new_zeros((x.shape[0], x.shape[1], hin, win))
        buf[:, :, r0 : r0 + x.shape[2], q0 : q0 + x.shape[3]] = x
        return self._call_node(layer, [buf])[:, :, h0:h1, w0:w1]

    def _adaptive(self, layer: Layer, region, x: torch.Tensor) -> torch.Tensor:
        _, hin, win = layer.in_shapes[0]
        _, hout, wout = layer.out_shape
        _, (h0, h1), (w0, w1) = region
        is_max = layer.kind == "adaptive_maxpool"
        if hin % hout == 0 and win % wout == 0:  # uniform bins: an ordinary pool on the tile
            kh, kw = hin // hout, win // wout
            return F.max_pool2d(x, (kh, kw)) if is_max else F.avg_pool2d(x, (kh, kw))
        r0 = adaptive_range(h0, h1, hin, hout)[0]
        q0 = adaptive_range(w0, w1, win, wout)[0]
        rows = []
        for i in range(h0, h1):
            a, b = adaptive_range(i, i + 1, hin, hout)
            cols = []
            for j in range(w0, w1):
                c, d = adaptive_range(j, j + 1, win, wout)
                cell = x[:, :, a - r0 : b - r0, c - q0 : d - q0]
                cols.append(cell.amax((2, 3)) if is_max else cell.mean((2, 3)))
            rows.append(torch.stack(cols, -1))
        return torch.stack(rows, -2)


# kinds whose layer is not the one fx node of the model (a reshape chain, a split's part) or whose
# node reads a different tile: never run through the model's own op on whole inputs
OWN_KERNEL = frozenset({"flatten", "unflatten", "slice", "permute", "identity", "upsample", "expand", "pad"})


_STEP_INPUTS: dict = {}


def step_inputs(layer: Layer, step: Step):
    """Regions of each input a step reads (the same rule the lowering used); memoised per (layer, step)."""
    key = (id(layer), step)
    hit = _STEP_INPUTS.get(key)
    if hit is None or hit[0] is not layer:
        regions = ((step.inputs,),) if step.inputs is not None else backward(layer, step.region)[1]
        if len(_STEP_INPUTS) > 200_000:
            _STEP_INPUTS.clear()
        hit = _STEP_INPUTS[key] = (layer, regions)
    return hit[1]
