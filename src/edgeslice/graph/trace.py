"""Tracing a PyTorch model into a :class:`~edgeslice.graph.layer.LayerGraph`.

The model is traced for one input shape and batch (:mod:`edgeslice.graph.shaped`):
``torch.fx`` records the dataflow while every node's value is computed on fake
tensors (nothing allocated, so even VGG-16 at 375×1242 traces in milliseconds),
so ``x.size()``, ``x.shape`` and arithmetic on them are constants, and
``torch.utils.flop_counter.FlopCounterMode`` counts each node's FLOPs with
torch's own formulas.  Each fx node becomes one layer whose kind tells the
region algebra how outputs depend on inputs — except the ops of a reshape
chain, which become one layer by what they do (:mod:`edgeslice.graph.reshape`:
a channel shuffle is a ``permute``), and ``split``/``chunk``, whose parts are
``slice`` layers.  What each node may be is :func:`edgeslice.graph.classify.classify`'s
table; anything else stops with a :class:`TraceError` naming the node, and a
branch on tensor values names the line of the model's code.

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

import torch
from torch import fx, nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.passes.shape_prop import TensorMetadata

from edgeslice.errors import ModelError, TraceError
from edgeslice.graph import reshape
from edgeslice.graph.classify import SUPPORTED, classify  # noqa: F401 - SUPPORTED is part of this module's interface
from edgeslice.graph.layer import INPUT, Layer, LayerGraph
from edgeslice.graph.shaped import ShapeFailure, shaped_trace, user_line


@contextlib.contextmanager
def _quiet(logger_name: str):
    log = logging.getLogger(logger_name)
    before = log.disabled
    log.disabled = True
    try:
        yield
    finally:
        log.disabled = before


def _model_input(model: nn.Module, batch: int, input_shape: tuple[int, ...]):
    if _on_meta(model):
        # built on the meta device (see edgeslice.models.load_model): meta tensors already carry
        # only shapes, so shapes propagate without fake tensors
        return None, torch.empty((batch, *input_shape), device="meta")
    fake = FakeTensorMode(allow_non_fake_inputs=True)  # the real weights take part as constants
    with fake:  # a fake input of that shape: nothing is allocated, whatever its size
        x = torch.empty((batch, *input_shape))
    return fake, x


def _graph_module(model: nn.Module, input_shape, batch: int, spec: str) -> fx.GraphModule:
    """The shape-specialised fx graph of ``model`` (:mod:`edgeslice.graph.shaped`), every failure one TraceError."""
    shape = f"{batch}x{'x'.join(map(str, input_shape))}"
    fake, x = _model_input(model, batch, input_shape)
    try:
        # the fake-tensor logger logs a traceback before re-raising; the user gets our one line instead
        with contextlib.redirect_stderr(io.StringIO()), _quiet("torch._subclasses.fake_tensor"):
            return shaped_trace(model, x, fake)
    except TraceError as exc:
        raise TraceError(f"model {spec!r}: {exc}") from None
    except ModelError:  # the model's own loader refused something (an ONNX node): its message names it
        raise
    except ShapeFailure as exc:
        raise TraceError(f"model {spec!r} fails on input {shape} at layer {exc.node!r}: {exc.why}; "
                         "check --input (C x H x W, large enough for every pooling layer)") from None
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TraceError(f"torch.fx cannot trace model {spec!r} at {user_line(exc.__traceback__)}: {first}") from None


def _output(node: fx.Node, names: dict, spec: str) -> str:
    res = node.args[0]
    if isinstance(res, fx.Node) and res.name in names:
        return names[res.name]
    if isinstance(res, (tuple, list, dict)):
        n = len(res)
        raise TraceError(f"model {spec!r} returns a {type(res).__name__} of {n} values; edgeslice places one output "
                         f"tensor: return one, e.g. torch.cat([a.flatten(1), b.flatten(1)], 1) for several heads")
    if isinstance(res, fx.Node):
        raise TraceError(f"model {spec!r} returns {res.name!r}, a rearranged view edgeslice cannot place "
                         f"(not a channel permutation, flatten or layer output); return a layer's output")
    raise TraceError(f"model {spec!r} returns {type(res).__name__}; edgeslice supports models returning one tensor")


def trace_module(model: nn.Module, input_shape: tuple[int, ...], batch: int = 1, spec: str = "<module>") -> tuple[LayerGraph, fx.GraphModule]:
    """Trace ``model`` for inputs of shape ``(batch, *input_shape)`` into a LayerGraph."""
    input_shape = tuple(int(v) for v in input_shape)
    if batch < 1 or not input_shape or any(v < 1 for v in input_shape):
        raise TraceError(f"input shape {input_shape} with batch {batch} is invalid: sizes must be positive")
    gm = _graph_module(model, input_shape, batch, spec)
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise TraceError(f"model {spec!r} takes {len(placeholders)} inputs; edgeslice supports models with exactly one input tensor")

    names = {placeholders[0].name: INPUT}
    chains: dict[str, tuple[fx.Node, list[fx.Node]]] = {}  # an intermediate of a reshape chain -> (source, ops so far)
    parts: dict[str, tuple] = {}  # a split/chunk node -> (source, dim, offsets)
    layers: list[Layer] = []
    out_name = None
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            continue
        if node.op == "output":
            out_name = _output(node, names, spec)
            continue
        meta = node.meta.get("tensor_meta")
        if isinstance(meta, (tuple, list)) and (sp := reshape.split_parts(node)) is not None:
            parts[node.name] = sp
            continue
        if not isinstance(meta, TensorMetadata):
            raise TraceError(f"layer {node.name!r} ({node.op} {node.target}) does not produce one tensor; edgeslice supports single-tensor layers")
        if node.name == INPUT:
            raise TraceError(f"model {spec!r} has a layer named {INPUT!r}, which is reserved for the model input")
        if reshape.is_shape_op(node, gm):
            src = reshape.source_of(node)
            base, ops = chains.get(src.name, (src, []))
            ops = ops + [node]
            res = reshape.resolve(ops, base, gm, batch) if base.name in names else None
            if res is None:
                chains[node.name] = (base, ops)
                continue
            kind, attrs = res
            target, inputs, geom = str(node.target), [base], None
        elif reshape.is_part(node) and node.args[0].name in parts:
            src, dim, offsets = parts[node.args[0].name]
            start = [0] * (len(src.meta["tensor_meta"].shape) - 1)
            start[dim - 1] = offsets[node.args[1]]
            kind, target, inputs, geom, attrs = "slice", "getitem", [src], None, (("start", tuple(start)),)
        else:
            kind, target, inputs, geom, attrs = classify(node, gm, batch)
        layers.append(_layer(node, gm, batch, names, chains, kind, target, inputs, geom, attrs))
        names[node.name] = node.name
    if out_name is None or out_name == INPUT:
        raise TraceError(f"model {spec!r} has no layers between its input and output")
    return LayerGraph(spec=spec, input_shape=input_shape, batch=batch, layers=tuple(layers), output=out_name), gm


def _layer(node, gm, batch, names, chains, kind, target, inputs, geom, attrs) -> Layer:
    meta = node.meta["tensor_meta"]
    shape = tuple(int(v) for v in meta.shape)
    if not shape or shape[0] != batch:
        raise TraceError(f"layer {node.name!r} produces shape {shape}: edgeslice needs the batch dimension ({batch}) first")
    if meta.dtype != torch.float32:
        raise TraceError(f"layer {node.name!r} produces {meta.dtype}; edgeslice supports float32 models")
    in_names, in_shapes = [], []
    for a in inputs:
        if a.name not in names:
            if a.name in chains:
                raise TraceError(f"layer {node.name!r} reads {a.name!r}, a {len(a.meta['tensor_meta'].shape)}-D rearrangement "
                                 f"of {chains[a.name][0].name!r} that is not a channel permutation, flatten or unflatten; "
                                 f"edgeslice cannot cut it")
            raise TraceError(f"layer {node.name!r} reads {a.name!r}, which is not a supported tensor layer")
        ameta = a.meta["tensor_meta"]
        if len(ameta.shape) != len(shape) and kind not in ("flatten", "linear", "unflatten", "mean"):
            raise TraceError(f"layer {node.name!r} combines tensors of different rank; edgeslice needs same-rank inputs")
        in_names.append(names[a.name])
        in_shapes.append(tuple(int(v) for v in ameta.shape[1:]))
    out_shape = shape[1:]
    if kind == "linear" and len(out_shape) != 1:
        raise TraceError(f"layer {node.name!r}: Linear on a {len(shape)}-D tensor cannot be cut; flatten to (N, features) first")
    if kind in ("conv", "maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool", "pixel_unshuffle", "upsample") and len(out_shape) != 3:
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
    return Layer(
        name=node.name, kind=kind, target=target, inputs=tuple(in_names), in_shapes=tuple(in_shapes),
        out_shape=out_shape, flops=flops, param_bytes=int(pbytes), out_bytes=int(batch * numel * 4),
        geometry=geom, attrs=tuple(sorted(attrs)),
    )


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
