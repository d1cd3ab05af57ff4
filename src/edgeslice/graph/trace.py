"""Tracing a PyTorch model into a :class:`~edgeslice.graph.layer.LayerGraph`.

``torch.fx.symbolic_trace`` gives the dataflow graph; shape propagation runs
under a ``FakeTensorMode`` (no real arithmetic, so even VGG-16 at 375×1242
traces in milliseconds) and ``torch.utils.flop_counter.FlopCounterMode`` counts
each node's FLOPs with torch's own formulas.  Each fx node becomes one layer
whose kind tells the region algebra how outputs depend on inputs.

Supported (anything else stops with a :class:`TraceError` naming the node):

- modules: Conv2d (zero padding), Linear (2-D input), MaxPool2d, AvgPool2d,
  AdaptiveAvgPool2d, AdaptiveMaxPool2d, BatchNorm1d/2d (eval), the usual
  activations, Dropout/Identity, Flatten, PixelUnshuffle;
- functions: activations from ``torch``/``torch.nn.functional``, ``+ - * /``
  between tensors of broadcastable shapes or with constants, ``torch.cat`` on
  the channel dimension, ``torch.flatten(x, 1)``, ``F.max_pool2d``,
  ``F.avg_pool2d``, ``F.adaptive_avg_pool2d``, ``F.dropout``;
- methods: ``.relu()``, ``.sigmoid()``, ``.flatten(1)``, ``.view``/``.reshape``
  that flatten to ``(N, -1)``, ``.contiguous()``.

Example::

    >>> from edgeslice.graph import trace
    >>> g, gm = trace("resnet18", (3, 64, 64), batch=1)
    >>> g.layers[0].kind, g.layers[0].out_shape
    ('conv', (64, 32, 32))
"""

from __future__ import annotations

import contextlib
import io
import logging
import operator
import re

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata
from torch.utils.flop_counter import FlopCounterMode

from edgeslice.errors import TraceError
from edgeslice.graph.layer import INPUT, Geometry, Layer, LayerGraph

_ACT_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.SiLU, nn.GELU, nn.Hardswish,
    nn.Hardsigmoid, nn.ELU, nn.Hardtanh, nn.Mish, nn.Softplus, nn.CELU, nn.SELU,
)
_IDENTITY_MODULES = (nn.Dropout, nn.Dropout2d, nn.Dropout1d, nn.AlphaDropout, nn.Identity)
_ACT_FUNCTIONS = {
    torch.relu, F.relu, F.relu6, F.leaky_relu, torch.sigmoid, F.sigmoid, torch.tanh, F.tanh,
    F.silu, F.gelu, F.hardswish, F.hardsigmoid, F.elu, F.hardtanh, F.mish, F.softplus,
    torch.clamp, torch.clip,
}
_BINARY_FUNCTIONS = {
    operator.add: "add", torch.add: "add", operator.mul: "mul", torch.mul: "mul",
    operator.sub: "sub", torch.sub: "sub", operator.truediv: "div", torch.div: "div",
}
_ACT_METHODS = {"relu", "sigmoid", "tanh", "clamp", "clip", "hardtanh"}
_IDENTITY_METHODS = {"contiguous"}
_BINARY_METHODS = {"add": "add", "mul": "mul", "sub": "sub", "div": "div"}

SUPPORTED = (
    "Conv2d, Linear, MaxPool2d, AvgPool2d, AdaptiveAvg/MaxPool2d, BatchNorm, activations, "
    "Dropout/Identity, Flatten, PixelUnshuffle, + - * /, torch.cat(dim=1), torch.flatten(x, 1)"
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


@contextlib.contextmanager
def _quiet(logger_name: str):
    log = logging.getLogger(logger_name)
    before = log.disabled
    log.disabled = True
    try:
        yield
    finally:
        log.disabled = before


class _FlopShapeProp(ShapeProp):
    """ShapeProp that also records each node's FLOPs with torch's flop counter."""

    def run_node(self, n):
        with FlopCounterMode(display=False) as counter:
            result = super().run_node(n)
        n.meta["flops"] = int(counter.get_total_flops())
        return result


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


def _is_flatten_view(node: fx.Node, batch: int) -> bool:
    meta = node.meta.get("tensor_meta")
    return isinstance(meta, TensorMetadata) and len(meta.shape) == 2 and meta.shape[0] == batch


def _classify(node: fx.Node, gm: fx.GraphModule, batch: int):
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
        if fn in _ACT_FUNCTIONS and len(tensor_args) == 1:
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
        if meth in ("view", "reshape") and _is_flatten_view(node, batch):
            return "flatten", meth, tensor_args[:1], None, ()
        raise TraceError(f"layer {name!r} calls the tensor method .{meth}(), which edgeslice cannot cut; supported: {SUPPORTED}")
    if node.op == "get_attr":
        raise TraceError(f"layer {name!r} reads the attribute {node.target!r} directly; wrap parameters in modules (nn.Conv2d, nn.Linear, ...)")
    raise TraceError(f"node {name!r} ({node.op}) is not supported")


def trace_module(model: nn.Module, input_shape: tuple[int, ...], batch: int = 1, spec: str = "<module>") -> tuple[LayerGraph, fx.GraphModule]:
    """Trace ``model`` for inputs of shape ``(batch, *input_shape)`` into a LayerGraph."""
    input_shape = tuple(int(v) for v in input_shape)
    if batch < 1 or not input_shape or any(v < 1 for v in input_shape):
        raise TraceError(f"input shape {input_shape} with batch {batch} is invalid: sizes must be positive")
    try:
        gm = fx.symbolic_trace(model)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TraceError(f"torch.fx cannot trace model {spec!r}: {first}. "
                         "Data-dependent control flow and x.size() arithmetic are not traceable; use torch.flatten(x, 1)") from exc
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise TraceError(f"model {spec!r} takes {len(placeholders)} inputs; edgeslice supports models with exactly one input tensor")
    if _on_meta(gm):
        # built on the meta device (see edgeslice.models.load_model): meta tensors already carry
        # only shapes, so shapes propagate without a fake-tensor copy of the model
        fake, x = None, torch.empty((batch, *input_shape), device="meta")
    else:
        fake = FakeTensorMode()
        with fake:  # a fake input of that shape: nothing is allocated, whatever its size
            x = torch.empty((batch, *input_shape))
    try:
        # ShapeProp prints its own traceback and the fake-tensor logger logs one before
        # re-raising; the user gets our one-line error instead
        with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()), _quiet("torch._subclasses.fake_tensor"):
            _FlopShapeProp(gm, fake_mode=fake).propagate(x)
    except Exception as exc:
        root = exc
        while root.__cause__ is not None:
            root = root.__cause__
        node = re.search(r"node=%(\w+)", str(exc))
        where = f" at layer {node.group(1)!r}" if node else ""
        first = str(root).strip().splitlines()[0] if str(root).strip() else type(root).__name__
        raise TraceError(f"model {spec!r} fails on input {batch}x{'x'.join(map(str, input_shape))}{where}: {first}; "
                         "check --input (C x H x W, large enough for every pooling layer)") from None

    names = {placeholders[0].name: INPUT}
    layers: list[Layer] = []
    out_name = None
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            continue
        if node.op == "output":
            res = node.args[0]
            if not isinstance(res, fx.Node) or res.name not in names:
                raise TraceError(f"model {spec!r} returns {type(res).__name__}; edgeslice supports models returning one tensor")
            out_name = names[res.name]
            continue
        meta = node.meta.get("tensor_meta")
        if not isinstance(meta, TensorMetadata):
            # Non-tensor helpers (x.size(0) feeding a flattening view) are folded away.
            if node.op == "call_method" and node.target == "size" and all(
                u.op == "call_method" and u.target in ("view", "reshape") for u in node.users
            ):
                continue
            raise TraceError(f"layer {node.name!r} ({node.op} {node.target}) does not produce one tensor; edgeslice supports single-tensor layers")
        if node.name == INPUT:
            raise TraceError(f"model {spec!r} has a layer named {INPUT!r}, which is reserved for the model input")
        kind, target, inputs, geom, attrs = _classify(node, gm, batch)
        shape = tuple(int(v) for v in meta.shape)
        if not shape or shape[0] != batch:
            raise TraceError(f"layer {node.name!r} produces shape {shape}: edgeslice needs the batch dimension ({batch}) first")
        if meta.dtype != torch.float32:
            raise TraceError(f"layer {node.name!r} produces {meta.dtype}; edgeslice supports float32 models")
        in_names, in_shapes = [], []
        for a in inputs:
            if a.name not in names:
                raise TraceError(f"layer {node.name!r} reads {a.name!r}, which is not a supported tensor layer")
            ameta = a.meta["tensor_meta"]
            if len(ameta.shape) != len(shape) and kind not in ("flatten", "linear"):
                raise TraceError(f"layer {node.name!r} combines tensors of different rank; edgeslice needs same-rank inputs")
            in_names.append(names[a.name])
            in_shapes.append(tuple(int(v) for v in ameta.shape[1:]))
        out_shape = shape[1:]
        if kind == "linear" and len(out_shape) != 1:
            raise TraceError(f"layer {node.name!r}: Linear on a {len(shape)}-D tensor cannot be cut; flatten to (N, features) first")
        if kind in ("conv", "maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool", "pixel_unshuffle") and len(out_shape) != 3:
            raise TraceError(f"layer {node.name!r}: {kind} needs (N, C, H, W) tensors, got {shape}")
        flops = int(node.meta.get("flops", 0))
        if kind not in ("conv", "linear") and flops:
            raise TraceError(f"layer {node.name!r}: torch counts {flops} FLOPs for a {kind} layer; edgeslice cannot apportion them")
        numel = 1
        for v in out_shape:
            numel *= v
        if flops % (batch * numel):
            raise TraceError(f"layer {node.name!r}: FLOPs {flops} are not a whole number per output element")
        pbytes = 0
        if node.op == "call_module":
            m = gm.get_submodule(node.target)
            pbytes = sum(p.numel() * p.element_size() for p in m.parameters()) + sum(
                b.numel() * b.element_size() for b in m.buffers() if b.dtype.is_floating_point)
        layers.append(Layer(
            name=node.name, kind=kind, target=target, inputs=tuple(in_names), in_shapes=tuple(in_shapes),
            out_shape=out_shape, flops=flops, param_bytes=int(pbytes), out_bytes=int(batch * numel * 4),
            geometry=geom, attrs=tuple(sorted(attrs)),
        ))
        names[node.name] = node.name
    if out_name is None or out_name == INPUT:
        raise TraceError(f"model {spec!r} has no layers between its input and output")
    return LayerGraph(spec=spec, input_shape=input_shape, batch=batch, layers=tuple(layers), output=out_name), gm


def _on_meta(model: nn.Module) -> bool:
    """Whether ``model`` was built on the meta device (its first parameter or buffer is a meta tensor)."""
    for t in model.parameters():
        return t.is_meta
    for t in model.buffers():
        return t.is_meta
    return False


def module_spec(model: nn.Module) -> str:
    """The spec recorded for a model given as an object: ``<module ClassName>`` (it names no file to rebuild from)."""
    return f"<module {type(model).__name__}>"


def trace(spec: str | nn.Module, input_shape: tuple[int, ...] | None = None, batch: int = 1, weights: str | None = None,
          *, meta: bool = False):
    """Load the model named by ``spec`` (see :mod:`edgeslice.models`) and trace it.

    With ``meta=True`` the model is built on the meta device (``weights`` is then
    ignored): the same LayerGraph, and a GraphModule whose parameters have
    shapes but no storage — what a worker materialises its share into.

    ``spec`` may also be an ``nn.Module``: it is switched to eval mode and traced
    as it is (``input_shape`` is then required, and ``weights`` not accepted:
    load a state dict into the module first); its graph's spec is
    :func:`module_spec`.

    Returns ``(LayerGraph, GraphModule)``; the GraphModule holds the model's weights.
    """
    from edgeslice.models import load_model, model_info, normalize_spec

    if isinstance(spec, nn.Module):
        name = module_spec(spec)
        if input_shape is None:
            raise TraceError(f"model {name} is an nn.Module: give its input shape (C, H, W), "
                             "e.g. input_shape=(3, 224, 224)")
        if weights is not None:
            raise TraceError(f"model {name} is an nn.Module: load the weights into it "
                             "(model.load_state_dict(torch.load(file))) instead of passing weights")
        return trace_module(spec.eval(), input_shape, batch, spec=name)
    if input_shape is None:
        input_shape = model_info(spec).default_input
    from edgeslice.models.zoo import check_input

    check_input(spec, tuple(input_shape))
    model = load_model(spec, None if meta else weights, meta=meta)
    return trace_module(model, input_shape, batch, spec=normalize_spec(spec))  # a model file's path made absolute
