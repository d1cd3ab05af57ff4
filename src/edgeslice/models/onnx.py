"""ONNX files as models: ``--model net.onnx`` becomes a torch module, then is traced like any other.

Edge users often hold a CNN only as an ONNX file (exported from another
framework or a training pipeline).  :func:`load_onnx` turns one into an
``nn.Module`` that runs the ONNX graph with torch: every weighted or windowed
node becomes a real torch module (``Conv`` → ``nn.Conv2d``, ``Gemm`` →
``nn.Linear``, ``BatchNormalization``, pools), named after the ONNX node, so
channel cuts slice real parameters; element-wise and reshaping nodes become the
torch calls edgeslice's tracer classifies.  Shape arithmetic an exporter
writes (``Shape`` → ``Gather`` → ``Div`` → ``Slice`` for a ``chunk``) runs on
constants while tracing, exactly as ``x.size()`` does in torch code.

``check`` compares the partitioned model with the ONNX file itself run by
onnxruntime (:func:`run_onnxruntime`).  An ONNX op with no torch counterpart
here is refused in one line naming the node and the op type.

Needs the ``onnx`` extra (``pip install -e '.[onnx]'``; ``make test`` installs it).
Written for the ops torch's exporter emits for CNNs (opset 11–21); no external
converter is used (onnx2torch pulls torchvision and a CUDA build of torch).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgeslice.errors import ModelError

_ELEMENTWISE = {
    "Relu": F.relu, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh, "HardSwish": F.hardswish, "Exp": torch.exp,
    "Neg": torch.neg, "Abs": torch.abs, "Sqrt": torch.sqrt, "Erf": torch.erf, "Softplus": F.softplus, "Mish": F.mish,
}
_BINARY = {"Add": (torch.add, np.add), "Sub": (torch.sub, np.subtract), "Mul": (torch.mul, np.multiply),
           "Div": (torch.div, None), "Pow": (torch.pow, np.power)}


OPS = frozenset(_ELEMENTWISE) | frozenset(_BINARY) | {
    "Conv", "Gemm", "MatMul", "BatchNormalization", "MaxPool", "AveragePool", "GlobalAveragePool", "LeakyRelu",
    "HardSigmoid", "Clip", "Identity", "Dropout", "Constant", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat",
    "Flatten", "Reshape", "Transpose", "Split", "Slice", "Resize", "ReduceMean",
}


def _require():
    try:
        import onnx
    except ImportError:
        raise ModelError("reading ONNX files needs the onnx extra: pip install -e '.[onnx]' (make test installs it)") from None
    return onnx


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _name(node, i: int) -> str:
    raw = node.name or f"{node.op_type}_{i}"
    name = re.sub(r"\W+", "_", raw).strip("_") or f"n{i}"
    return name if not name[0].isdigit() else f"n_{name}"


def _sym_pads(pads, node) -> tuple[int, int]:
    pads = list(pads or [0, 0, 0, 0])
    if pads[:2] != pads[2:]:
        raise ModelError(f"ONNX node {node.name!r} ({node.op_type}) pads asymmetrically {pads}; edgeslice cuts symmetric padding only")
    return int(pads[0]), int(pads[1])


class OnnxModule(nn.Module):
    """An ONNX graph run with torch ops; weighted nodes are submodules named after their ONNX nodes."""

    def __init__(self, model, path: str):
        super().__init__()
        from onnx import numpy_helper

        g = model.graph
        self.path = path
        self.consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        for node in g.node:  # exporters share equal initializers through Identity nodes
            if node.op_type == "Identity" and node.input[0] in self.consts:
                self.consts[node.output[0]] = self.consts[node.input[0]]
        inputs = [i for i in g.input if i.name not in self.consts]
        if len(inputs) != 1 or len(g.output) != 1:
            raise ModelError(f"ONNX file {path!r} has {len(inputs)} inputs and {len(g.output)} outputs; edgeslice takes "
                             f"models with one input tensor and one output tensor")
        self.input_name, self.output_name = inputs[0].name, g.output[0].name
        dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
        self.input_shape = tuple(dims[1:]) if all(d > 0 for d in dims[1:]) else None
        self.nodes = []
        self.mods = nn.ModuleDict()
        for i, node in enumerate(g.node):
            if node.op_type not in OPS:
                raise ModelError(f"ONNX file {path!r}: node {node.name or _name(node, i)!r} is a {node.op_type}, which "
                                 f"edgeslice cannot convert; supported ops: {', '.join(sorted(OPS))}")
            key = _name(node, i)
            m = self._module(node)
            if m is not None:
                self.mods[key] = m
            self.nodes.append((key, node, _attrs(node)))

    def _w(self, node, k: int) -> torch.Tensor | None:
        if len(node.input) <= k or not node.input[k]:
            return None
        if node.input[k] not in self.consts:
            raise ModelError(f"ONNX node {node.name!r} ({node.op_type}) takes its weights from {node.input[k]!r}, which is "
                             f"computed; edgeslice needs weights stored in the file")
        return torch.from_numpy(np.array(self.consts[node.input[k]], dtype=np.float32))

    def _module(self, node) -> nn.Module | None:
        a, op = _attrs(node), node.op_type
        if op == "Conv":
            w, b = self._w(node, 1), self._w(node, 2)
            if len(w.shape) != 4:
                raise ModelError(f"ONNX node {node.name!r}: only 2-D convolutions can be cut (weight {tuple(w.shape)})")
            if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                raise ModelError(f"ONNX node {node.name!r}: auto_pad={a['auto_pad']!r}; export with explicit pads")
            groups = int(a.get("group", 1))
            m = nn.Conv2d(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]), tuple(a.get("strides", [1, 1])),
                          _sym_pads(a.get("pads"), node), tuple(a.get("dilations", [1, 1])), groups, bias=b is not None)
            m.weight.data.copy_(w)
            if b is not None:
                m.bias.data.copy_(b)
            return m
        if op == "Gemm":
            w, b = self._w(node, 1), self._w(node, 2)
            if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
                raise ModelError(f"ONNX node {node.name!r}: Gemm with transA/alpha/beta cannot be cut")
            w = w if a.get("transB", 0) else w.t()
            m = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
            m.weight.data.copy_(w)
            if b is not None:
                m.bias.data.copy_(b.reshape(-1))
            return m
        if op == "BatchNormalization":
            scale, bias, mean, var = (self._w(node, k) for k in range(1, 5))
            m = nn.BatchNorm2d(scale.shape[0], eps=float(a.get("epsilon", 1e-5)))
            for t, v in ((m.weight, scale), (m.bias, bias), (m.running_mean, mean), (m.running_var, var)):
                t.data.copy_(v)
            return m.eval()
        if op in ("MaxPool", "AveragePool"):
            k = tuple(a["kernel_shape"])
            s, p = tuple(a.get("strides", [1] * len(k))), _sym_pads(a.get("pads"), node)
            if op == "MaxPool":
                return nn.MaxPool2d(k, s, p, tuple(a.get("dilations", [1, 1])), ceil_mode=bool(a.get("ceil_mode", 0)))
            return nn.AvgPool2d(k, s, p, ceil_mode=bool(a.get("ceil_mode", 0)),
                                count_include_pad=bool(a.get("count_include_pad", 0)))
        if op == "MatMul" and len(node.input) == 2 and node.input[1] in self.consts and self.consts[node.input[1]].ndim == 2:
            w = self._w(node, 1).t()
            m = nn.Linear(w.shape[1], w.shape[0], bias=False)
            m.weight.data.copy_(w)
            return m
        if op == "GlobalAveragePool":
            return nn.AdaptiveAvgPool2d(1)
        if op == "LeakyRelu":
            return nn.LeakyReLU(float(a.get("alpha", 0.01)))
        return None

    def forward(self, x):
        env = {self.input_name: x}
        env.update(self.consts)
        for key, node, a in self.nodes:
            ins = [env[n] if n else None for n in node.input]
            out = self._run(key, node, a, ins)
            outs = out if isinstance(out, (tuple, list)) and len(node.output) > 1 else (out,)
            for name, v in zip(node.output, outs):
                env[name] = v
        return env[self.output_name]

    def _run(self, key, node, a, ins):
        op = node.op_type
        if key in self.mods:
            return self.mods[key](ins[0])
        x = ins[0] if ins else None
        const = all(not _tensor(v) for v in ins if v is not None)
        if op in _ELEMENTWISE:
            return _ELEMENTWISE[op](x)
        if op == "HardSigmoid":
            alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
            return F.hardsigmoid(x) if abs(alpha - 1 / 6) < 1e-7 and beta == 0.5 else torch.clamp(x * alpha + beta, 0.0, 1.0)
        if op == "Clip":
            lo = _scalar(ins[1]) if len(ins) > 1 and ins[1] is not None else a.get("min")
            hi = _scalar(ins[2]) if len(ins) > 2 and ins[2] is not None else a.get("max")
            return F.hardtanh(x, -np.inf if lo is None else float(lo), np.inf if hi is None else float(hi))
        if op in _BINARY:
            t, n = _BINARY[op]
            if const:
                return (np.floor_divide if op == "Div" and np.issubdtype(np.asarray(ins[0]).dtype, np.integer)
                        else (n or np.true_divide))(ins[0], ins[1])
            return t(*(v if _tensor(v) else _scalar_or_tensor(v, node) for v in ins))
        if op in ("Identity", "Dropout"):
            return x
        if op == "Constant":
            from onnx import numpy_helper

            return numpy_helper.to_array(a["value"]) if "value" in a else np.array(a.get("value_float", a.get("value_int")))
        if op == "Shape":
            return np.array(tuple(x.shape), dtype=np.int64)
        if op == "Gather" and const:
            return np.take(ins[0], ins[1], axis=int(a.get("axis", 0)))
        if op in ("Unsqueeze", "Squeeze") and const:
            axes = a.get("axes", ins[1].tolist() if len(ins) > 1 and ins[1] is not None else None)
            return np.expand_dims(x, tuple(axes)) if op == "Unsqueeze" else np.squeeze(x, tuple(axes) if axes else None)
        if op == "Concat" and const:
            return np.concatenate([np.atleast_1d(v) for v in ins], axis=int(a["axis"]))
        if op == "Concat":
            return torch.cat(ins, int(a["axis"]))
        if op == "Flatten":
            return torch.flatten(x, int(a.get("axis", 1)))
        if op == "Reshape":
            shape = [int(v) for v in np.asarray(ins[1]).tolist()]
            shape = [x.shape[i] if v == 0 and not a.get("allowzero", 0) else v for i, v in enumerate(shape)]
            return x.reshape(shape)
        if op == "Transpose":
            return x.permute(*a["perm"])
        if op == "Split":
            sizes = a.get("split") or (np.asarray(ins[1]).tolist() if len(ins) > 1 and ins[1] is not None else None)
            axis = int(a.get("axis", 0))
            if sizes is None:
                n = len(node.output)
                sizes = [x.shape[axis] // n] * n
            return torch.split(x, [int(v) for v in sizes], axis)
        if op == "Slice":
            return _slice(x, ins)
        if op == "Resize":
            return _resize(node, a, x, ins)
        if op == "ReduceMean":
            axes = a.get("axes") or (np.asarray(ins[1]).tolist() if len(ins) > 1 and ins[1] is not None else None)
            return x.mean(tuple(int(v) for v in axes), keepdim=bool(a.get("keepdims", 1)))
        raise ModelError(f"ONNX node {node.name or key!r} ({op}) is used on a {'constant' if const else 'tensor'} in a way "
                         f"edgeslice cannot convert")


def _tensor(v) -> bool:
    """A tensor of the model (a real one, or an fx proxy while edgeslice traces); else a constant (numpy)."""
    return isinstance(v, (torch.Tensor, torch.fx.Proxy))


def _scalar(v) -> float:
    return float(np.asarray(v).reshape(-1)[0])


def _scalar_or_tensor(v, node):
    arr = np.asarray(v)
    if arr.size == 1:
        return float(arr.reshape(-1)[0])
    raise ModelError(f"ONNX node {node.name!r} ({node.op_type}) combines a tensor with a stored constant of shape "
                     f"{arr.shape}; edgeslice cuts stored weights only inside Conv, Gemm and BatchNormalization")


def _slice(x, ins):
    starts, ends = np.asarray(ins[1]).tolist(), np.asarray(ins[2]).tolist()
    axes = np.asarray(ins[3]).tolist() if len(ins) > 3 and ins[3] is not None else list(range(len(starts)))
    steps = np.asarray(ins[4]).tolist() if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
    idx = [slice(None)] * x.dim()
    for s, e, ax, st in zip(starts, ends, axes, steps):
        n = x.shape[ax]
        idx[ax] = slice(max(-n, min(int(s), n)), max(-n - 1, min(int(e), n)), int(st))
    return x[tuple(idx)]


def _resize(node, a, x, ins):
    def text(v):
        return v.decode() if isinstance(v, bytes) else v

    mode = text(a.get("mode", "nearest"))
    ctm = text(a.get("coordinate_transformation_mode", "half_pixel"))
    scales = np.asarray(ins[2]).tolist() if len(ins) > 2 and ins[2] is not None and np.asarray(ins[2]).size else None
    sizes = np.asarray(ins[3]).tolist() if len(ins) > 3 and ins[3] is not None else None
    if mode == "nearest" and ctm == "asymmetric" and text(a.get("nearest_mode", "round_prefer_floor")) == "floor":
        kw = {"mode": "nearest"}
    elif mode == "linear" and ctm in ("half_pixel", "pytorch_half_pixel", "align_corners"):
        kw = {"mode": "bilinear", "align_corners": ctm == "align_corners"}
    else:
        raise ModelError(f"ONNX node {node.name!r}: Resize mode {mode!r} with coordinate_transformation_mode {ctm!r} "
                         f"has no torch counterpart here (nearest/asymmetric/floor and linear/half_pixel or align_corners do)")
    if sizes:
        return F.interpolate(x, size=tuple(int(v) for v in sizes[2:]), **kw)
    return F.interpolate(x, scale_factor=tuple(float(v) for v in scales[2:]), **kw)


def load_onnx(path: str | Path) -> OnnxModule:
    """The ONNX file at ``path`` as an ``nn.Module`` in eval mode (refused in one line if it cannot be)."""
    onnx = _require()
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"ONNX file {str(path)!r} cannot be read: {first[:200]}") from None
    return OnnxModule(model, str(path)).eval()


def run_onnxruntime(path: str, x: torch.Tensor) -> torch.Tensor:
    """The ONNX file's own output for input ``x``, computed by onnxruntime (the reference ``check`` uses)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return torch.from_numpy(sess.run(None, {name: x.numpy()})[0])
