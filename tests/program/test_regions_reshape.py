"""Region rules of the kinds real model code needs (issue 13): exact against autograd's gradient support.

For a layer and an output box, the input region :func:`~edgeslice.program.regions.backward` names must
be exactly the bounding box of the inputs the box's outputs depend on — the support of
``d out[box].sum() / d input`` (every weight involved is positive, so nothing cancels).  Covered:
nearest and bilinear up-sampling (``align_corners`` both ways, ``scale_factor`` and ``size``, odd and
non-integer ratios, borders), channel permutations (shuffles written three ways), slices, split and
chunk, expand, the mean over H and W, and unflatten.  Then every kind under random spatial, channel
and mixed cuts reproduces its model.
"""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edgeslice.execute.check import check_plan
from edgeslice.graph import trace_module
from edgeslice.planners import make_plan
from edgeslice.program import regions as R


def _support(grad: torch.Tensor) -> tuple:
    """Bounding box of the nonzero entries of one sample's gradient, one (lo, hi) per dimension."""
    nz = grad != 0
    box = []
    for d in range(grad.dim()):
        other = tuple(i for i in range(grad.dim()) if i != d)
        idx = torch.nonzero(nz.any(dim=other) if other else nz).flatten()
        box.append((int(idx[0]), int(idx[-1]) + 1))
    return tuple(box)


def _boxes(rng, shape, n=12):
    """Boxes at the borders and random ones."""
    out = [tuple((0, 1) for _ in shape), tuple((s - 1, s) for s in shape), tuple((0, s) for s in shape)]
    for _ in range(n):
        box = []
        for s in shape:
            a = rng.randrange(s)
            box.append((a, rng.randint(a + 1, s)))
        out.append(tuple(box))
    return out


def _check_layer_against_autograd(model: nn.Module, in_shape, kind: str, seed: int = 0):
    g, _ = trace_module(model.eval(), in_shape)
    layer = next(l for l in g.layers if l.kind == kind)
    rng = random.Random(seed)
    x = torch.rand(1, *layer.in_shapes[0]) + 0.5
    sub = _sub_model(model, g, layer)
    for box in _boxes(rng, layer.out_shape):
        xi = x.clone().requires_grad_(True)
        y = sub(xi)
        y[(slice(None),) + tuple(slice(a, b) for a, b in box)].sum().backward()
        comp, ins = R.backward(layer, box)
        assert comp == box, (layer.name, box)
        want = None if not xi.grad.any() else _support(xi.grad[0])  # a box of padding alone reads nothing
        assert ins[0] == want, (layer.name, box, ins[0])


def _sub_model(model, g, layer):
    """The model from ``layer``'s input to its output (every test model has the layer right after the input)."""
    assert layer.inputs == ("input",), "test models put the layer under test first"
    return lambda x: model(x)


class _Up(nn.Module):
    def __init__(self, **kw):
        super().__init__()
        self.kw = kw

    def forward(self, x):
        return F.interpolate(x, **self.kw)


UPSAMPLES = [
    ({"scale_factor": 2, "mode": "nearest"}, (2, 7, 5)),
    ({"scale_factor": 3, "mode": "nearest"}, (1, 4, 6)),
    ({"scale_factor": 1.5, "mode": "nearest"}, (2, 9, 7)),
    ({"size": (11, 13), "mode": "nearest"}, (2, 5, 4)),
    ({"size": (4, 3), "mode": "nearest"}, (1, 9, 8)),  # down-sampling by size
    ({"scale_factor": 2, "mode": "bilinear", "align_corners": False}, (2, 7, 5)),
    ({"scale_factor": 2, "mode": "bilinear", "align_corners": True}, (2, 7, 5)),
    ({"scale_factor": 2.5, "mode": "bilinear", "align_corners": False}, (1, 5, 9)),
    ({"size": (13, 17), "mode": "bilinear", "align_corners": True}, (2, 6, 7)),
    ({"size": (13, 17), "mode": "bilinear", "align_corners": False}, (2, 6, 7)),
    ({"scale_factor": 2, "mode": "bilinear", "align_corners": False, "recompute_scale_factor": True}, (1, 5, 5)),
]


@pytest.mark.parametrize("kw,shape", UPSAMPLES, ids=lambda v: str(v))
def test_upsampling_reads_exactly_what_autograd_says(kw, shape):
    _check_layer_against_autograd(_Up(**kw), shape, "upsample")


def test_nn_upsample_modules_are_upsampling_layers():
    for m in (nn.Upsample(scale_factor=2), nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
              nn.UpsamplingNearest2d(scale_factor=2), nn.UpsamplingBilinear2d(size=(9, 9))):
        _check_layer_against_autograd(nn.Sequential(m), (2, 5, 4), "upsample")


def _shuffle_view(x, g=3):
    b, c, h, w = x.size()
    x = x.view(b, g, c // g, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(b, -1, h, w)


def _shuffle_permute(x, g=3):
    b, c, h, w = x.shape
    return x.reshape(b, g, c // g, h, w).permute(0, 2, 1, 3, 4).reshape(b, c, h, w)


def _shuffle_data(x, g=3):
    b, c, h, w = x.data.size()
    return x.view(b, g, -1, h, w).transpose(1, 2).flatten(1, 2)


class _Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


@pytest.mark.parametrize("fn", [_shuffle_view, _shuffle_permute, _shuffle_data], ids=lambda f: f.__name__)
def test_a_channel_shuffle_is_a_permutation_however_written(fn):
    _check_layer_against_autograd(_Fn(fn), (6, 5, 7), "permute")
    g, _ = trace_module(_Fn(fn), (6, 5, 7))
    assert [l.kind for l in g.layers] == ["permute"] and g.layers[0].attr("perm") == (0, 2, 4, 1, 3, 5)


@pytest.mark.parametrize("fn,kind", [
    (lambda x: x[:, 2:5], "slice"),
    (lambda x: x[:, :, 1:, :-2], "slice"),
    (lambda x: x[..., 2:4], "slice"),
    (lambda x: x.expand(-1, -1, 6, 5), "expand"),
    (lambda x: x.mean((2, 3), keepdim=True), "mean"),
    (lambda x: torch.mean(x, [-1, -2]), "mean"),
])
def test_slices_expand_and_means_read_exactly_what_autograd_says(fn, kind):
    shape = (4, 1, 1) if kind == "expand" else (6, 5, 7)
    _check_layer_against_autograd(_Fn(fn), shape, kind)


def test_split_and_chunk_parts_are_offset_slices():
    class M(nn.Module):
        def forward(self, x):
            a, b = x.chunk(2, dim=1)
            c, d, e = torch.split(x, [1, 2, 3], 1)
            return torch.cat([b, a, e * 2, c, d], 1)

    g, _ = trace_module(M(), (6, 3, 4))
    starts = [l.attr("start")[0] for l in g.layers if l.kind == "slice"]
    assert starts == [0, 3, 0, 1, 3]


def test_unflatten_reads_the_flat_hull():
    class M(nn.Module):
        def forward(self, x):
            return x.view(x.size(0), 3, 4, 5)

    g, _ = trace_module(M(), (60,))
    layer = g.layers[0]
    assert layer.kind == "unflatten"
    rng = random.Random(3)
    for box in _boxes(rng, layer.out_shape):
        xi = torch.rand(1, 60, requires_grad=True)
        M()(xi)[(slice(None),) + tuple(slice(a, b) for a, b in box)].sum().backward()
        assert R.backward(layer, box)[1][0] == _support(xi.grad[0]), box


# ---- every kind under random cuts -------------------------------------------------------------


class _SE(nn.Module):
    """Squeeze-excitation as written in the wild: pooled with F.avg_pool2d(x, x.size(2)), viewed, gated."""

    def __init__(self, c=8):
        super().__init__()
        self.conv = nn.Conv2d(3, c, 3, padding=1)
        self.fc1 = nn.Conv2d(c, 4, 1)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(4, c)

    def forward(self, x):
        out = self.conv(x)
        w = F.avg_pool2d(out, out.size(2))
        w = self.act(self.fc1(w))
        w = torch.sigmoid(self.fc2(w.view(w.size(0), -1)))
        return out * w.view(w.size(0), -1, 1, 1)


class _Unit(nn.Module):
    """A ShuffleNetV2-style unit with a DPN-style slice and an up-sampling skip."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 12, 3, padding=1)
        self.b = nn.Conv2d(6, 6, 3, padding=1, groups=6)
        self.c = nn.Conv2d(12, 6, 3, stride=2, padding=1)
        self.d = nn.Conv2d(12, 4, 1)

    def forward(self, x):
        y = self.a(x)
        y1, y2 = y.chunk(2, dim=1)
        y = _shuffle_view(torch.cat([y1, self.b(y2)], 1), 2)
        z = F.interpolate(self.c(y), size=(y.size(2), y.size(3)), mode="bilinear", align_corners=False)
        z = torch.cat([y[:, :6], z], 1)
        return F.hardswish(self.d(z)) + y[:, 6:10]


@pytest.mark.parametrize("model", [_SE, _Unit, lambda: _Fn(_shuffle_permute)], ids=["se", "unit", "shuffle"])
@pytest.mark.parametrize("batch", [1, 2])
def test_new_kinds_under_random_cuts(model, batch):
    torch.manual_seed(0)
    m = model().eval()
    # (the SE block as written pools with a square window: out.size(2) by out.size(2))
    shape = (6, 9, 11) if isinstance(m, _Fn) else (3, 12, 12) if isinstance(m, _SE) else (3, 13, 10)
    assert {"spatial", "channel"} <= _random_cuts_reproduce(m, shape, batch)[1]


def _random_cuts_reproduce(m: nn.Module, shape, batch: int, plans: int = 20):
    """Trace ``m``; ``plans`` random plans must each reproduce it; return (graph, the cut kinds drawn)."""
    g, gm = trace_module(m, shape, batch=batch)
    x = torch.randn(batch, *shape)
    with torch.no_grad():
        ref = m(x)
    cuts = set()
    for seed in range(plans):
        plan = make_plan("random", g, devices=2 + seed % 3, seed=seed)
        cuts |= {s.cut for s in plan.segments}
        res = check_plan(plan, graph=g, gm=gm, x=x, reference=ref)
        assert res["rel_err"] <= 1e-5, (seed, res["rel_err"], [s.cut for s in plan.segments])
    return g, cuts


@pytest.mark.parametrize("pads", [(1, 2, 0, 3), (0, 0, 2, 2), (3, 0, 0, 0), (2, 1)])
def test_zero_padding_reads_exactly_what_autograd_says(pads):
    _check_layer_against_autograd(_Fn(lambda x: F.pad(x, list(pads))), (3, 5, 6), "pad")


class _UNetPad(nn.Module):
    """A U-Net stage as commonly written: pad the up-sampled map to its skip's size, then concatenate."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 4, 3, stride=2)  # 13x11 -> 6x5, up to 12x10: padded by one row and column
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.out = nn.Conv2d(7, 2, 3, padding=1)

    def forward(self, x):
        y = self.up(self.down(x))
        dy, dx = x.size(2) - y.size(2), x.size(3) - y.size(3)
        y = F.pad(y, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.out(torch.cat([x, y], 1))


@pytest.mark.parametrize("batch", [1, 2])
def test_a_unet_that_pads_to_its_skip_under_random_cuts(batch):
    torch.manual_seed(0)
    m = _UNetPad().eval()
    g, cuts = _random_cuts_reproduce(m, (3, 13, 11), batch)
    assert "pad" in {l.kind for l in g.layers}
    assert {"spatial", "channel"} <= cuts
