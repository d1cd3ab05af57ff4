"""Tracing: kinds, shapes, FLOPs against torch's own counter, user models, and clear refusals."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from edgeslice.errors import ModelError, TraceError
from edgeslice.graph import INPUT, trace, trace_module


@pytest.mark.parametrize("spec,shape", [("resnet18", (3, 64, 48)), ("googlenet", (3, 64, 64)), ("mobilenet_v2", (3, 64, 64))])
def test_layer_flops_add_up_to_torch_flop_counter(traced, spec, shape):
    g, gm = traced(spec, shape, 2)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        gm(torch.randn(2, *shape))
    assert g.flops == fc.get_total_flops() > 0


def test_resnet18_graph_structure(traced):
    g, _ = traced("resnet18", (3, 64, 48))
    assert g.layers[0].kind == "conv" and g.layers[0].inputs == (INPUT,)
    assert g.layers[0].out_shape == (64, 32, 24)
    geo = g.layers[0].geometry
    assert (geo.kernel, geo.stride, geo.padding) == ((7, 7), (2, 2), (3, 3))
    adds = [l for l in g.layers if l.kind == "binary"]
    assert len(adds) == 8 and all(len(a.inputs) == 2 for a in adds)
    assert g.layer(g.output).kind == "linear" and g.layer(g.output).out_shape == (1000,)
    assert g.param_bytes >= 11_689_512 * 4
    assert all(l.out_bytes == 4 * __import__("math").prod(l.out_shape) for l in g.layers)


def test_geometry_of_unusual_layers(traced):
    g, _ = traced("googlenet", (3, 64, 64))
    assert any(l.kind == "maxpool" and l.geometry.ceil_mode for l in g.layers)
    assert any(l.kind == "cat" and len(l.inputs) == 4 for l in g.layers)
    m, _ = traced("mobilenet_v2", (3, 64, 64))
    dw = [l for l in m.layers if l.kind == "conv" and l.geometry.groups > 1]
    assert dw and all(l.geometry.groups == l.in_shapes[0][0] == l.out_shape[0] for l in dw)
    y, _ = traced("yolov2", (3, 128, 96))
    assert [l.attr("factor") for l in y.layers if l.kind == "pixel_unshuffle"] == [2]


def test_fingerprint_depends_on_structure_and_shape_not_batch(traced):
    a, _ = traced("resnet18", (3, 64, 48), 1)
    b, _ = traced("resnet18", (3, 64, 48), 2)
    c, _ = traced("resnet18", (3, 64, 64), 1)
    d, _ = traced("resnet50", (3, 64, 48), 1)
    assert a.fingerprint == b.fingerprint
    assert len({a.fingerprint, c.fingerprint, d.fingerprint}) == 3


def test_user_model_from_file_and_module(tmp_path):
    f = tmp_path / "mynet.py"
    f.write_text(
        "import torch\nfrom torch import nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.c = nn.Conv2d(3, 4, 3)\n"
        "        self.fc = nn.Linear(4 * 6 * 6, 2)\n"
        "    def forward(self, x):\n"
        "        x = torch.relu(self.c(x))\n"
        "        x = x.view(x.size(0), -1)\n"
        "        return self.fc(x)\n"
        "def make():\n    return Net()\n")
    g, _ = trace(f"{f}:make", (3, 8, 8), batch=3)
    assert [l.kind for l in g.layers] == ["conv", "act", "flatten", "linear"]
    g2, _ = trace("edgeslice.models.zoo:alexnet", (3, 64, 64))
    assert g2.layers[0].kind == "conv"


class _Transposed(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(3, 3, 2, stride=2)

    def forward(self, x):
        return self.up(x)


class _ControlFlow(nn.Module):
    def forward(self, x):
        return x * 2 if x.sum() > 0 else x


class _TwoInputs(nn.Module):
    def forward(self, x, y):
        return x + y


class _TupleOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return self.c(x), x


class _RawParam(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1, 3, 1, 1))

    def forward(self, x):
        return x * self.scale


@pytest.mark.parametrize("model,needle", [
    (_Transposed(), "ConvTranspose2d"),
    (_ControlFlow(), r"branches on tensor values at test_trace.py:\d+ \(`return x \* 2 if x.sum\(\) > 0 else x`\)"),
    (_TwoInputs(), "exactly one input"),
    (_TupleOut(), "returns a tuple of 2 values; edgeslice places one output tensor"),
    (_RawParam(), "scale"),
    (nn.Sequential(nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect")), "padding_mode"),
])
def test_unsupported_constructs_are_named(model, needle):
    with pytest.raises(TraceError, match=needle):
        trace_module(model, (3, 8, 8))


def test_model_errors():
    with pytest.raises(ModelError, match="unknown model 'nosuch'"):
        trace("nosuch")
    with pytest.raises(ModelError, match="not found"):
        trace("missing_dir/none.py:f")
    with pytest.raises(ModelError, match="no callable named 'nope'"):
        trace("edgeslice.models.zoo:nope")
    with pytest.raises(TraceError, match="fails on input"):
        trace("alexnet", (3, 8, 8))  # too small for its first pooling layers


def test_analysis_cache_is_bounded_while_speeds_vary():
    """A caller varying device speeds thousands of times (an RL environment) does not grow memory without bound."""
    from edgeslice.cluster import Cluster
    from edgeslice.cost import ClusterCost
    from edgeslice.graph.cache import AnalysisCache
    from edgeslice.planners import make_plan
    from edgeslice.planners._shared.common import evaluate

    g, _ = trace("alexnet", (3, 64, 64))
    object.__setattr__(g, "memo", AnalysisCache(maxsize=500))
    plan = make_plan("modnn", g, devices=3)
    sizes = []
    for i in range(60):
        c = Cluster.uniform(3)
        c = type(c)(c.name, tuple(type(d)(d.name, gflops=1 + i) for d in c.devices), c.default_link)
        evaluate(plan, g, c, ClusterCost(c))
        sizes.append(len(g.memo))
    assert max(sizes) <= 500 and sizes[-1] == sizes[10]  # the graph's cache holds geometry only, not per-speed times
