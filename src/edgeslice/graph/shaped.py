"""Shape-specialised tracing: ``torch.fx`` with every tensor's shape known while the model's code runs.

``torch.fx.symbolic_trace`` cannot answer ``x.size()``: a proxy has no shape,
so ``b, c, h, w = x.size()`` (channel shuffles), ``F.avg_pool2d(x, x.size(2))``
(squeeze-excitation) and ``x.view(x.size(0), -1)`` fail or leave size nodes in
the graph.  We trace for one input shape and batch, so every shape is a
constant: :class:`ShapedTracer` computes each node's value on fake tensors
(no memory, no arithmetic) *as the node is created*, and its proxies answer
``size()``, ``shape``, ``dim()``, ``ndim``, ``numel()``, ``len()`` and
``.data`` with those concrete values.  Shape arithmetic is then ordinary
Python on ints and folds away; the graph keeps only tensor operations, with
the module paths a user recognises as layer names.

The same pass fills what :mod:`torch.fx.passes.shape_prop` would —
``node.meta["tensor_meta"]`` — and counts each node's FLOPs with torch's
flop counter (``node.meta["flops"]``), so the model is run (on fakes) once.

A branch on tensor *values* (``if x.sum() > 0``) still cannot be traced: it is
refused in one line naming the line of the user's code.

Example::

    >>> import torch
    >>> from torch import nn
    >>> class Shuffle(nn.Module):
    ...     def forward(self, x):
    ...         b, c, h, w = x.size()
    ...         return x.view(b, 2, c // 2, h, w).transpose(1, 2).reshape(b, c, h, w)
    >>> gm = shaped_trace(Shuffle(), torch.empty(1, 4, 3, 3, device="meta"))
    >>> [n.target for n in gm.graph.nodes if n.op == "call_method"]
    ['view', 'transpose', 'reshape']
"""

from __future__ import annotations

import contextlib
import linecache
import sysconfig
import traceback
from pathlib import Path

import torch
from torch import fx, nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.passes.shape_prop import _extract_tensor_metadata
from torch.utils.flop_counter import FlopCounterMode

from edgeslice.errors import TraceError

_TORCH = str(Path(torch.__file__).parent)
_HERE = str(Path(__file__).parent)
_STDLIB = sysconfig.get_paths()["stdlib"]


def _ours(filename: str) -> bool:
    return filename.startswith((_TORCH, _HERE, _STDLIB, "<"))


def user_line(tb=None) -> str:
    """``file.py:LINE (`code`)`` of the innermost frame of the model's own code (not torch, the standard library or
    this tracer): in traceback ``tb``, else in the current stack."""
    frames = traceback.extract_tb(tb) if tb is not None else traceback.extract_stack()
    for f in reversed(frames):
        if not _ours(f.filename):
            code = (f.line or linecache.getline(f.filename, f.lineno)).strip()
            return f"{Path(f.filename).name}:{f.lineno} (`{code[:80]}`)"
    return "an unknown line"


class ShapedProxy(fx.Proxy):
    """An fx proxy that knows its value on fake tensors, so shape questions get concrete answers."""

    def _known(self):
        v = self.node.meta.get("value")
        if not isinstance(v, torch.Tensor):
            raise TraceError(f"{user_line()}: {self.node.name} is not a tensor here; edgeslice traces tensor code only")
        return v

    def size(self, dim=None):
        v = self._known()
        return v.size() if dim is None else v.size(dim)

    @property
    def shape(self):
        return self._known().shape

    def dim(self):
        return self._known().dim()

    @property
    def ndim(self):
        return self._known().dim()

    def numel(self):
        return self._known().numel()

    def __len__(self):
        return len(self._known())

    @property
    def dtype(self):
        return self._known().dtype

    @property
    def data(self):  # x.data.size(): the same tensor, for tracing
        return self

    def __iter__(self):
        v = self.node.meta.get("value")
        if isinstance(v, (tuple, list)):  # x1, x2 = x.chunk(2, 1): one getitem per part
            return iter([self[i] for i in range(len(v))])
        raise TraceError(f"{user_line()}: iterating over a tensor is not traceable; index or split it explicitly")


# ops torch's flop counter gives no FLOPs (it counts mm, addmm, bmm, baddbmm, convolution and attention only)
_NO_FLOP_MODULES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.SiLU, nn.GELU, nn.Hardswish, nn.Hardsigmoid,
                    nn.ELU, nn.Hardtanh, nn.Mish, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d,
                    nn.BatchNorm1d, nn.BatchNorm2d, nn.Dropout, nn.Dropout2d, nn.Identity, nn.Flatten, nn.Upsample,
                    nn.PixelUnshuffle)
_NO_FLOPS = {"add", "sub", "mul", "truediv", "div", "cat", "concat", "flatten", "view", "reshape", "transpose", "permute",
             "contiguous", "chunk", "split", "getitem", "mean", "sigmoid", "relu", "tanh", "expand", "expand_as", "size"}
_NO_FLOP_PREFIXES = ("max_pool", "avg_pool", "adaptive_", "dropout", "interpolate", "hard", "leaky_relu", "relu", "silu",
                     "gelu", "elu", "clamp", "clip")


class ShapedTracer(fx.Tracer):
    """A tracer whose nodes carry their fake value (``meta["value"]``), tensor metadata and FLOPs."""

    def __init__(self, fake: FakeTensorMode | None):
        super().__init__()
        self.fake = fake  # None: the model and input are on the meta device already
        self.input_value = None
        self._running = False

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return ShapedProxy(node, self)

    def to_bool(self, obj) -> bool:
        raise TraceError(f"the model branches on tensor values at {user_line()}; edgeslice needs the same dataflow "
                         f"for every input (compute both branches and select with torch.where, or move the test out "
                         f"of forward)")

    def iter(self, obj):
        return ShapedProxy.__iter__(obj)

    def keys(self, obj):
        raise TraceError(f"{user_line()}: ** on a tensor is not traceable")

    def _value(self, a):
        if isinstance(a, fx.Proxy):
            return a.node.meta.get("value")
        if isinstance(a, fx.Node):
            return a.meta.get("value")
        return a

    def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None, proxy_factory_fn=None):
        rv = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
        node = rv.node
        if kind in ("placeholder", "get_attr"):
            value = self.input_value if kind == "placeholder" else self._attr(target)
            if isinstance(value, torch.Tensor):
                node.meta["tensor_meta"] = _extract_tensor_metadata(value)
        else:
            value = self._run(node, kind, target)
        node.meta["value"] = value
        return rv

    def getattr(self, attr, attr_val, parameter_proxy_cache):
        if self._running:  # inside a leaf's forward on fakes: its parameters are plain tensors
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    def _counts(self, kind: str, target) -> bool:
        """Whether a node can have FLOPs in torch's counting (matrix products and convolutions only): the flop
        counter costs as much as the fake op itself, so it runs only there."""
        if kind == "call_module":
            return not isinstance(self.root.get_submodule(target), _NO_FLOP_MODULES)
        name = target if isinstance(target, str) else getattr(target, "__name__", "")
        return not any(name.startswith(p) for p in _NO_FLOP_PREFIXES) and name not in _NO_FLOPS

    def _attr(self, target: str):
        obj = self.root
        self._running = True  # plain attribute reads, not recorded again
        try:
            for atom in target.split("."):
                obj = getattr(obj, atom)
        finally:
            self._running = False
        return obj

    def _run(self, node: fx.Node, kind: str, target):
        args = fx.node.map_aggregate(node.args, self._value)
        kwargs = fx.node.map_aggregate(node.kwargs, self._value)
        ctx = self.fake if self.fake is not None else contextlib.nullcontext()
        counter = FlopCounterMode(display=False) if self._counts(kind, target) else contextlib.nullcontext()
        try:
            with ctx, counter, torch.no_grad():
                if kind == "call_function":
                    out = target(*args, **kwargs)
                elif kind == "call_method":
                    out = getattr(args[0], target)(*args[1:], **kwargs)
                elif kind == "call_module":  # the leaf's own forward: the traced __call__ would record it again
                    self._running = True
                    try:
                        out = self.root.get_submodule(target).forward(*args, **kwargs)
                    finally:
                        self._running = False
                else:
                    return None
        except TraceError:
            raise
        except Exception as exc:
            if type(exc).__name__ in ("DataDependentOutputException", "DynamicOutputShapeException", "GuardOnDataDependentSymNode"):
                raise TraceError(f"the model reads tensor values at {user_line()} ({node.name}); edgeslice needs the "
                                 f"same dataflow for every input") from None
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ShapeFailure(node.name, first) from None
        node.meta["flops"] = int(counter.get_total_flops()) if isinstance(counter, FlopCounterMode) else 0
        meta = fx.node.map_aggregate(out, lambda v: _extract_tensor_metadata(v) if isinstance(v, torch.Tensor) else v)
        node.meta["tensor_meta"] = meta
        return out


class ShapeFailure(Exception):
    """A node failed on its fake inputs (a shape that does not fit): ``trace`` words it with the input shape."""

    def __init__(self, node: str, why: str):
        super().__init__(why)
        self.node, self.why = node, why


def shaped_trace(model: nn.Module, x: torch.Tensor, fake: FakeTensorMode | None = None) -> fx.GraphModule:
    """Trace ``model`` for input ``x`` (a fake or meta tensor); nodes carry ``tensor_meta`` and ``flops``.

    Nodes whose values nothing reads (a shape computation's leftovers) are removed.
    """
    tracer = ShapedTracer(fake)
    tracer.input_value = x
    graph = tracer.trace(model)
    gm = fx.GraphModule(tracer.root, graph, model.__class__.__name__)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    for n in gm.graph.nodes:
        n.meta.pop("value", None)  # fake tensors must not outlive their mode
    return gm
