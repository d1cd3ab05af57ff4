"""What one fx node is: its layer kind, the tensors it reads, its window geometry and kind-specific facts.

:func:`classify` is the table of everything edgeslice can cut; :mod:`edgeslice.graph.trace` calls it for
every node that is not part of a reshape chain (those are :mod:`edgeslice.graph.reshape`'s).  Each kind
has a region rule in :mod:`edgeslice.program.regions` and a kernel in :mod:`edgeslice.execute.kernels`.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import TensorMetadata

from edgeslice.errors import TraceError
from edgeslice.graph.layer import Geometry

_ACT_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.SiLU, nn.GELU, nn.Hardswish,
    nn.Hardsigmoid, nn.ELU, nn.Hardtanh, nn.Mish, nn.Softplus, nn.CELU, nn.SELU,
)
_IDENTITY_MODULES = (nn.Dropout, nn.Dropout2d, nn.Dropout1d, nn.AlphaDropout, nn.Identity)
_ACT_FUNCTIONS = {
    torch.relu, F.relu, F.relu6, F.leaky_relu, torch.sigmoid, F.sigmoid, torch.tanh, F.tanh,
    F.silu, F.gelu, F.hardswish, F.hardsigmoid, F.elu, F.hardtanh, F.mish, F.softplus,
    torch.clamp, torch.clip, torch.exp, torch.neg, operator.neg, torch.abs, torch.sqrt, torch.rsqrt, torch.square,
    torch.erf, torch.log, torch.log1p, torch.reciprocal, operator.pow, torch.pow, F.selu, F.celu, F.softsign,
    F.tanhshrink, F.logsigmoid, F.hardshrink, F.softshrink,
}
_BINARY_FUNCTIONS = {
    operator.add: "add", torch.add: "add", operator.mul: "mul", torch.mul: "mul",
    operator.sub: "sub", torch.sub: "sub", operator.truediv: "div", torch.div: "div",
}
_ACT_METHODS = {"relu", "sigmoid", "tanh", "clamp", "clip", "hardtanh", "exp", "neg", "abs", "sqrt", "rsqrt", "square", "pow",
                "erf", "log", "log1p", "reciprocal", "relu6"}
_IDENTITY_METHODS = {"contiguous"}
_BINARY_METHODS = {"add": "add", "mul": "mul", "sub": "sub", "div": "div"}

SUPPORTED = (
    "Conv2d, Linear, MaxPool2d, AvgPool2d, AdaptiveAvg/MaxPool2d, BatchNorm, element-wise activations, "
    "Dropout/Identity, Flatten/view/reshape to (N, -1), channel permutations (shuffles), slicing/split/chunk, "
    "Upsample/interpolate (nearest, bilinear), zero F.pad, mean over H and W, expand, PixelUnshuffle, + - * /, torch.cat(dim=1)"
)


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            return (int(v[0]), int(v[0]))
        return (int(v[0]), int(v[1]))
    return (int(v), int(v))


def _fn_name(target) -> str:
    if isinstance(target, str):
        return target
    mod = getattr(target, "__module__", "") or ""
    return f"{mod}.{getattr(target, '__name__', repr(target))}".lstrip(".")


def _conv_geometry(m: nn.Conv2d, name: str, in_hw) -> Geometry:
    if m.padding_mode != "zeros":
        raise TraceError(f"layer {name!r}: Conv2d with padding_mode={m.padding_mode!r} cannot be cut; only zero padding is supported")
    k, d = _pair(m.kernel_size), _pair(m.dilation)
    if isinstance(m.padding, str):
        if m.padding == "valid":
            p = (0, 0)
        else:  # 'same' (stride 1): torch pads the extra element at the end; we only support symmetric
            tot = [d[i] * (k[i] - 1) for i in range(2)]
            if any(t % 2 for t in tot):
                raise TraceError(f"layer {name!r}: padding='same' with an even kernel pads asymmetrically; use explicit padding")
            p = (tot[0] // 2, tot[1] // 2)
    else:
        p = _pair(m.padding)
    return Geometry(kernel=k, stride=_pair(m.stride), padding=p, dilation=d, groups=m.groups)


def _maxpool_geometry(k, s, p, d, ceil_mode) -> Geometry:
    k = _pair(k)
    s = k if s is None or (isinstance(s, (list, tuple)) and len(s) == 0) else _pair(s)
    return Geometry(kernel=k, stride=s, padding=_pair(p), dilation=_pair(d), ceil_mode=bool(ceil_mode))


def _avgpool_geometry(k, s, p, ceil_mode, cip, div) -> Geometry:
    k = _pair(k)
    s = k if s is None or (isinstance(s, (list, tuple)) and len(s) == 0) else _pair(s)
    return Geometry(kernel=k, stride=s, padding=_pair(p), ceil_mode=bool(ceil_mode),
                    count_include_pad=bool(cip), divisor_override=div)


def _args(node: fx.Node, names: list[str], defaults: dict) -> dict:
    """Bind a functional call's positional and keyword args to parameter names."""
    out = dict(defaults)
    for n, v in zip(names, node.args):
        out[n] = v
    out.update(node.kwargs)
    return out


def classify(node: fx.Node, gm: fx.GraphModule, batch: int):
    """Return (kind, target, tensor_inputs, geometry, attrs) for one fx node."""
    name = node.name
    tensor_args = [a for a in node.args if isinstance(a, fx.Node)]
    if node.op == "call_module":
        m = gm.get_submodule(node.target)
        target = str(node.target)
        inputs = tensor_args[:1]
        if len(tensor_args) != 1 or node.kwargs:
            raise TraceError(f"layer {name!r} ({type(m).__name__}) is called with {len(tensor_args)} tensor arguments; edgeslice needs one")
        if isinstance(m, nn.Conv2d):
            return "conv", target, inputs, _conv_geometry(m, name, None), ()
        if isinstance(m, nn.Linear):
            return "linear", target, inputs, None, ()
        if isinstance(m, nn.MaxPool2d):
            if m.return_indices:
                raise TraceError(f"layer {name!r}: MaxPool2d(return_indices=True) is not supported")
            return "maxpool", target, inputs, _maxpool_geometry(m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode), ()
        if isinstance(m, nn.AvgPool2d):
            return "avgpool", target, inputs, _avgpool_geometry(m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad, m.divisor_override), ()
        if isinstance(m, nn.AdaptiveAvgPool2d):
            return "adaptive_avgpool", target, inputs, None, ()
        if isinstance(m, nn.AdaptiveMaxPool2d):
            if m.return_indices:
                raise TraceError(f"layer {name!r}: AdaptiveMaxPool2d(return_indices=True) is not supported")
            return "adaptive_maxpool", target, inputs, None, ()
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            return "batchnorm", target, inputs, None, ()
        if isinstance(m, _ACT_MODULES):
            return "act", target, inputs, None, (("fn", type(m).__name__),)
        if isinstance(m, _IDENTITY_MODULES):
            return "identity", target, inputs, None, ()
        if isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise TraceError(f"layer {name!r}: only Flatten(start_dim=1, end_dim=-1) is supported")
            return "flatten", target, inputs, None, ()
        if isinstance(m, nn.Upsample):  # UpsamplingNearest2d / UpsamplingBilinear2d are Upsample subclasses
            return "upsample", target, inputs, None, upsample_attrs(node, m.mode, m.align_corners, m.scale_factor,
                                                                        m.recompute_scale_factor)
        if isinstance(m, nn.PixelUnshuffle):
            return "pixel_unshuffle", target, inputs, None, (("factor", int(m.downscale_factor)),)
        raise TraceError(f"layer {name!r} is a {type(m).__name__}, which edgeslice cannot cut; supported: {SUPPORTED}")
    if node.op == "call_function":
        fn = node.target
        target = _fn_name(fn)
        if fn in _BINARY_FUNCTIONS:
            op = _BINARY_FUNCTIONS[fn]
            if len(tensor_args) == 2:
                if node.kwargs:
                    raise TraceError(f"layer {name!r}: {target} with keyword arguments ({', '.join(node.kwargs)}) is not supported")
                return "binary", target, tensor_args, None, (("op", op),)
            if len(tensor_args) == 1:
                return "act", target, tensor_args, None, (("fn", op),)
        if fn in _ACT_FUNCTIONS and len(tensor_args) >= 1 and all(a is tensor_args[0] for a in tensor_args):
            return "act", target, tensor_args, None, (("fn", getattr(fn, "__name__", target)),)
        if fn is F.dropout or fn is F.dropout2d:
            return "identity", target, tensor_args[:1], None, ()
        if fn is torch.cat or fn is torch.concat:
            seq = node.args[0] if node.args else node.kwargs.get("tensors")
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
            ins = [a for a in seq if isinstance(a, fx.Node)]
            if len(ins) != len(seq):
                raise TraceError(f"layer {name!r}: torch.cat of non-tensor values is not supported")
            ndim = len(node.meta["tensor_meta"].shape)
            if dim not in (1, 1 - ndim):
                raise TraceError(f"layer {name!r}: torch.cat on dim {dim} cannot be cut; only the channel dimension (dim=1) is supported")
            return "cat", target, ins, None, (("dim", 1),)
        if fn is torch.flatten:
            a = _args(node, ["input", "start_dim", "end_dim"], {"start_dim": 0, "end_dim": -1})
            if a["start_dim"] != 1 or a["end_dim"] != -1:
                raise TraceError(f"layer {name!r}: only torch.flatten(x, 1) is supported")
            return "flatten", target, tensor_args[:1], None, ()
        if fn is F.max_pool2d:
            a = _args(node, ["input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"],
                      {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "return_indices": False})
            if a["return_indices"]:
                raise TraceError(f"layer {name!r}: max_pool2d(return_indices=True) is not supported")
            return "maxpool", target, tensor_args[:1], _maxpool_geometry(a["kernel_size"], a["stride"], a["padding"], a["dilation"], a["ceil_mode"]), ()
        if fn is F.avg_pool2d:
            a = _args(node, ["input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"],
                      {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True, "divisor_override": None})
            return "avgpool", target, tensor_args[:1], _avgpool_geometry(a["kernel_size"], a["stride"], a["padding"], a["ceil_mode"], a["count_include_pad"], a["divisor_override"]), ()
        if fn is F.adaptive_avg_pool2d:
            return "adaptive_avgpool", target, tensor_args[:1], None, ()
        if fn is F.interpolate or fn is F.upsample:
            a = _args(node, ["input", "size", "scale_factor", "mode", "align_corners", "recompute_scale_factor"],
                      {"size": None, "scale_factor": None, "mode": "nearest", "align_corners": None, "recompute_scale_factor": None})
            return "upsample", target, tensor_args[:1], None, upsample_attrs(node, a["mode"], a["align_corners"],
                                                                             a["scale_factor"], a["recompute_scale_factor"])
        if fn is F.pad:
            return "pad", target, tensor_args[:1], None, (("pads", _zero_pads(node)),)
        if fn is torch.mean:
            return _mean(node, target, tensor_args, _args(node, ["input", "dim", "keepdim"], {"dim": None, "keepdim": False}))
        if fn is operator.getitem and tensor_args and isinstance(tensor_args[0].meta.get("tensor_meta"), TensorMetadata):
            return "slice", target, tensor_args[:1], None, (("start", slice_starts(node, tensor_args[0])),)
        raise TraceError(f"layer {name!r} calls {target}, which edgeslice cannot cut; supported: {SUPPORTED}")
    if node.op == "call_method":
        meth = node.target
        if meth in _BINARY_METHODS and len(tensor_args) == 2:
            return "binary", meth, tensor_args, None, (("op", _BINARY_METHODS[meth]),)
        if meth in _BINARY_METHODS and len(tensor_args) == 1:
            return "act", meth, tensor_args, None, (("fn", _BINARY_METHODS[meth]),)
        if meth in _ACT_METHODS:
            return "act", meth, tensor_args[:1], None, (("fn", meth),)
        if meth in _IDENTITY_METHODS:
            return "identity", meth, tensor_args[:1], None, ()
        if meth == "flatten":
            a = _args(node, ["self", "start_dim", "end_dim"], {"start_dim": 0, "end_dim": -1})
            if a["start_dim"] != 1 or a["end_dim"] != -1:
                raise TraceError(f"layer {name!r}: only x.flatten(1) is supported")
            return "flatten", meth, tensor_args[:1], None, ()
        if meth == "mean":
            return _mean(node, meth, tensor_args, _args(node, ["self", "dim", "keepdim"], {"dim": None, "keepdim": False}))
        if meth in ("expand", "expand_as"):
            return "expand", meth, tensor_args[:1], None, ()
        raise TraceError(f"layer {name!r} calls the tensor method .{meth}(), which edgeslice cannot cut; supported: {SUPPORTED}")
    if node.op == "get_attr":
        raise TraceError(f"layer {name!r} reads the attribute {node.target!r} directly; wrap parameters in modules (nn.Conv2d, nn.Linear, ...)")
    raise TraceError(f"node {name!r} ({node.op}) is not supported")


def upsample_attrs(node: fx.Node, mode, align_corners, scale_factor, recompute) -> tuple:
    """``(mode, align, scales)``: what torch's upsampling kernel computes its source indices from.

    ``scales`` are the scale factors torch hands its kernel (it uses ``1 / scale`` rather than
    ``in / out`` when they are given and not recomputed), or None.
    """
    if mode not in ("nearest", "bilinear"):
        raise TraceError(f"layer {node.name!r}: upsampling mode {mode!r} cannot be cut; nearest and bilinear can")
    meta = node.meta.get("tensor_meta")
    if not isinstance(meta, TensorMetadata) or len(meta.shape) != 4:
        raise TraceError(f"layer {node.name!r}: edgeslice cuts 2-D upsampling of (N, C, H, W) maps only")
    scales = None
    if scale_factor is not None and not recompute:
        sf = scale_factor if isinstance(scale_factor, (tuple, list)) else (scale_factor, scale_factor)
        scales = (float(sf[0]), float(sf[1]))
    return (("align", bool(align_corners)), ("mode", mode), ("scales", scales))


def _mean(node: fx.Node, target: str, tensor_args, a: dict):
    dims = a["dim"]
    dims = (dims,) if isinstance(dims, int) else tuple(dims or ())
    shape = tensor_args[0].meta["tensor_meta"].shape
    if len(shape) != 4 or sorted(d % 4 for d in dims) != [2, 3]:
        raise TraceError(f"layer {node.name!r}: a mean over dims {dims} cannot be cut; edgeslice cuts the mean over "
                         f"height and width of (N, C, H, W) maps (x.mean((2, 3)))")
    return "mean", target, tensor_args[:1], None, (("keepdim", bool(a["keepdim"])),)


def slice_starts(node: fx.Node, src: fx.Node) -> tuple[int, ...]:
    """Per-sample start of each dimension for ``x[...]`` with step-1 slices; anything else is refused."""
    idx = node.args[1]
    idx = idx if isinstance(idx, tuple) else (idx,)
    shape = tuple(src.meta["tensor_meta"].shape)
    if Ellipsis in idx:
        k = idx.index(Ellipsis)
        idx = idx[:k] + (slice(None),) * (len(shape) - len(idx) + 1) + idx[k + 1:]
    idx = idx + (slice(None),) * (len(shape) - len(idx))
    if len(idx) != len(shape) or not all(isinstance(i, slice) for i in idx):
        raise TraceError(f"layer {node.name!r}: indexing {node.args[1]!r} cannot be cut; edgeslice cuts step-1 "
                         f"slices such as x[:, a:b] (no integer indices, None or tensors)")
    starts = []
    for d, (i, n) in enumerate(zip(idx, shape)):
        lo, hi, step = i.indices(n)
        if step != 1 or (d == 0 and (lo, hi) != (0, n)):
            raise TraceError(f"layer {node.name!r}: slice {i} of dimension {d} cannot be cut; edgeslice cuts step-1 "
                             f"slices of the per-sample dimensions (the batch stays whole)")
        starts.append(lo)
    return tuple(starts[1:])


def _zero_pads(node: fx.Node) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` of ``F.pad(x, pads)`` with zeros on H and W; anything else is refused."""
    a = _args(node, ["input", "pad", "mode", "value"], {"mode": "constant", "value": None})
    pads = tuple(int(v) for v in a["pad"])
    if a["mode"] != "constant" or a["value"] not in (None, 0, 0.0) or len(pads) not in (2, 4) or min(pads) < 0:
        raise TraceError(f"layer {node.name!r}: F.pad{pads} mode={a['mode']!r} value={a['value']!r} cannot be cut; "
                         f"edgeslice cuts zero padding of height and width (F.pad(x, [left, right, top, bottom]))")
    return pads + (0,) * (4 - len(pads))
