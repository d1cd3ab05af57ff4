"""Region algebra: hand-worked windows, tightness against autograd, and single-layer edge cases."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from edgeslice.execute.check import check_plan
from edgeslice.graph import trace_module
from edgeslice.planners import make_plan
from edgeslice.program import regions as R


def test_window_hand_examples():
    # 3x3 conv, pad 1, on 224 rows: top strip of 112 output rows reads rows 0..112 (padding above)
    assert R.window(0, 112, 3, 1, 1, 1, 224) == (-1, 113, 0, 113)
    # bottom strip reads from row 111 and pads one row below
    assert R.window(112, 224, 3, 1, 1, 1, 224) == (111, 225, 111, 224)
    # stride 2, kernel 3, pad 1 (ResNet stem maxpool): outputs 10..20 read rows 19..41
    assert R.window(10, 20, 3, 2, 1, 1, 112) == (19, 40, 19, 40)
    # dilation 2, kernel 3: the receptive field is 5 rows
    assert R.window(4, 5, 3, 1, 0, 2, 9) == (4, 9, 4, 9)
    assert R.adaptive_range(0, 1, 10, 7) == (0, 2)
    assert R.adaptive_range(6, 7, 10, 7) == (8, 10)


def test_region_set_operations():
    a, b = ((0, 4), (2, 8)), ((2, 6), (0, 3))
    assert R.intersect(a, b) == ((2, 4), (2, 3))
    assert R.intersect(a, ((4, 5), (0, 9))) is None
    assert R.hull(a, b) == ((0, 6), (0, 8))
    assert R.volume(a) == 24
    assert R.parse(R.fmt(a)) == a
    assert R.slices(((2, 6), (0, 3)), ((3, 4), (1, 3)))[1:] == (slice(1, 2), slice(1, 3))


def _support_box(grad: torch.Tensor):
    """Bounding box of the nonzero entries of a (C, H, W) gradient, as a region."""
    nz = grad.abs().sum(dim=0) > 0
    rows = torch.nonzero(nz.any(1)).flatten()
    cols = torch.nonzero(nz.any(0)).flatten()
    chans = torch.nonzero(grad.abs().sum(dim=(1, 2)) > 0).flatten()
    return ((int(chans[0]), int(chans[-1]) + 1), (int(rows[0]), int(rows[-1]) + 1), (int(cols[0]), int(cols[-1]) + 1))


def _random_out_region(rng, shape):
    out = []
    for n in shape:
        a = rng.randrange(n)
        out.append((a, rng.randint(a + 1, n)))
    return tuple(out)


@pytest.mark.parametrize("seed", range(60))
def test_conv_backward_is_exactly_the_receptive_field(seed):
    """The input region equals the support of d(out[region])/d(input) with positive weights."""
    rng = random.Random(seed)
    k = (rng.randint(1, 5), rng.randint(1, 5))
    s = (rng.randint(1, 3), rng.randint(1, 3))
    d = (rng.randint(1, 2), rng.randint(1, 2))
    # real models pad at most the kernel's extent (no output reads only padding)
    p = (rng.randint(0, min(2, d[0] * (k[0] - 1))), rng.randint(0, min(2, d[1] * (k[1] - 1))))
    groups = rng.choice([1, 2, 4])
    cin, cout = 4 * rng.randint(1, 2), 4 * rng.randint(1, 3)
    h, w = rng.randint(d[0] * (k[0] - 1) + 1, 20), rng.randint(d[1] * (k[1] - 1) + 1, 20)
    conv = nn.Conv2d(cin, cout, k, s, p, d, groups=groups, bias=False)
    nn.init.constant_(conv.weight, 1.0)
    g, _ = trace_module(nn.Sequential(conv), (cin, h, w))
    layer = g.layers[0]
    out = _random_out_region(rng, layer.out_shape)
    computed, (need,) = R.backward(layer, out)
    x = torch.ones(1, cin, h, w, requires_grad=True)
    y = conv(x)
    (c0, c1), (h0, h1), (w0, w1) = computed
    y[:, c0:c1, h0:h1, w0:w1].sum().backward()
    assert need == _support_box(x.grad[0])
    # the computed region widens the channel range only to whole groups
    if groups == 1:
        assert computed == out
    else:
        opg = cout // groups
        assert computed[0] == (out[0][0] // opg * opg, -(-out[0][1] // opg) * opg) and computed[1:] == out[1:]


@pytest.mark.parametrize("seed", range(40))
def test_avgpool_backward_is_exactly_the_window(seed):
    rng = random.Random(100 + seed)
    k = (rng.randint(1, 4), rng.randint(1, 4))
    s = (rng.randint(1, 3), rng.randint(1, 3))
    p = (rng.randint(0, k[0] // 2), rng.randint(0, k[1] // 2))
    pool = nn.AvgPool2d(k, s, p, ceil_mode=rng.random() < 0.5, count_include_pad=rng.random() < 0.5)
    h, w = rng.randint(k[0], 17), rng.randint(k[1], 17)
    g, _ = trace_module(nn.Sequential(pool), (3, h, w))
    layer = g.layers[0]
    out = _random_out_region(rng, layer.out_shape)
    _, (need,) = R.backward(layer, out)
    x = torch.ones(1, 3, h, w, requires_grad=True)
    (c0, c1), (h0, h1), (w0, w1) = out
    pool(x)[:, c0:c1, h0:h1, w0:w1].sum().backward()
    assert need == _support_box(x.grad[0])


@pytest.mark.parametrize("hw,out", [((10, 10), (7, 7)), ((9, 13), (4, 5)), ((7, 7), (7, 7)), ((5, 3), (1, 1))])
def test_adaptive_backward_matches_torch_bins(hw, out):
    pool = nn.AdaptiveAvgPool2d(out)
    g, _ = trace_module(nn.Sequential(pool), (2, *hw))
    layer = g.layers[0]
    for i in range(out[0]):
        for j in range(out[1]):
            _, (need,) = R.backward(layer, ((0, 2), (i, i + 1), (j, j + 1)))
            x = torch.ones(1, 2, *hw, requires_grad=True)
            pool(x)[:, :, i, j].sum().backward()
            assert need == _support_box(x.grad[0])


class _Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(8, 12, 3, padding=1, groups=4)
        self.b = nn.Conv2d(12, 12, 3, stride=2, padding=1, groups=12)

    def forward(self, x):
        return self.b(self.a(x))


EDGE_LAYERS = {
    "conv_dilated_strided": lambda: nn.Sequential(nn.Conv2d(3, 6, (3, 5), stride=(3, 2), padding=(2, 1), dilation=(2, 1))),
    "maxpool_ceil_pad_dilation": lambda: nn.Sequential(nn.MaxPool2d(3, stride=2, padding=1, dilation=2, ceil_mode=True)),
    "maxpool_googlenet": lambda: nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), nn.MaxPool2d(3, 2, ceil_mode=True)),
    "avgpool_ceil_nopad_count": lambda: nn.Sequential(nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)),
    "avgpool_ceil_include_pad": lambda: nn.Sequential(nn.AvgPool2d((2, 3), (2, 2), (1, 1), ceil_mode=True)),
    "avgpool_divisor_override": lambda: nn.Sequential(nn.AvgPool2d(3, 2, 1, divisor_override=5)),
    "adaptive_avg_nonuniform": lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d((7, 5))),
    "adaptive_max_nonuniform": lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveMaxPool2d((4, 6))),
    "grouped_unaligned": lambda: nn.Sequential(nn.Conv2d(3, 8, 1), _Grouped()),
    "pixel_unshuffle": lambda: nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.PixelUnshuffle(2), nn.Conv2d(20, 4, 1)),
}


@pytest.mark.parametrize("name", list(EDGE_LAYERS))
def test_edge_case_layers_under_random_cuts(name):
    """Random spatial and channel cuts of unusual layers reproduce the layer exactly."""
    torch.manual_seed(0)
    model = EDGE_LAYERS[name]().eval()
    g, gm = trace_module(model, (3, 20, 23 if name != "pixel_unshuffle" else 22), batch=2, spec=name)
    x = torch.randn(2, *g.input_shape)
    with torch.no_grad():
        ref = gm(x)
    kinds = set()
    for seed in range(25):
        plan = make_plan("random", g, devices=3, seed=seed)
        kinds |= {s.cut for s in plan.segments}
        res = check_plan(plan, graph=g, gm=gm, x=x, reference=ref)
        assert res["rel_err"] <= 1e-5, (name, seed, res["rel_err"])
        assert res["flops_program"] >= res["flops_model"]
    assert "spatial" in kinds


def test_grouped_channel_cut_counts_whole_groups():
    """A channel range that splits a group computes the whole group: the recomputation is counted."""
    from edgeslice.plan import ModelRef, Part, Plan, Segment
    from edgeslice.program import lower

    conv = nn.Conv2d(8, 8, 3, padding=1, groups=4)  # 2 output channels per group
    g, gm = trace_module(nn.Sequential(conv), (8, 6, 6))
    name = g.layers[0].name
    ref = ModelRef(g.spec, g.input_shape, 1, g.fingerprint)
    plan = Plan(ref, ("d0", "d1"), "d0", "d0",
                (Segment(name, name, "channel", (Part("d0", channels=(0, 3)), Part("d1", channels=(3, 8)))),))
    prog = lower(plan, g)
    per_channel = g.layers[0].flops // 8
    # part 0 computes channels 0..4 (groups 0,1), part 1 channels 2..8 (groups 1..3): one group twice
    assert prog.flops == g.flops + 2 * per_channel
    assert check_plan(plan, graph=g, gm=gm)["ok"]


# ---- backward_boxes: many whole-channel requests at once -----------------------------------------

def _odd_layers_graph():
    """Layers whose windows take backward's rare paths: dilation, a window wholly in the padding, ceil mode,
    adaptive pooling, broadcasting, pixel-unshuffle."""

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 4, 3, padding=2, dilation=2)
            self.b = nn.Conv2d(4, 4, 3, stride=3, padding=3)  # its first window lies wholly in the padding
            self.p = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
            self.q = nn.AdaptiveAvgPool2d((6, 4))
            self.s = nn.Conv2d(4, 1, 1)
            self.r = nn.AdaptiveAvgPool2d((1, 4))
            self.u = nn.PixelUnshuffle(2)

        def forward(self, x):
            y = self.p(self.b(self.a(x)))
            y = self.q(y)
            y = y * torch.sigmoid(self.r(self.s(y)))  # (1, 4) broadcast over the rows
            return self.u(torch.cat([y, y], 1))

    return trace_module(M(), (3, 23, 17), spec="odd")[0]


@pytest.mark.parametrize("spec,shape", [("yolov2", (3, 64, 64)), ("mobilenet_v2", (3, 48, 40)), ("resnet50", (3, 40, 56)),
                                        ("googlenet", (3, 64, 64)), ("odd", None)])
def test_backward_boxes_equals_backward_layer_by_layer(traced, spec, shape):
    """Every spatially local layer, random whole-channel boxes: the vectorised rule gives backward's input regions."""
    g = _odd_layers_graph() if spec == "odd" else traced(spec, shape)[0]
    rng = random.Random(1)
    checked = 0
    for l in g.layers:
        if not l.spatial:
            continue
        C, H, W = l.out_shape
        # one-row boxes at and next to the borders (where clipping, dilation gaps and all-padding windows bite), and random ones
        boxes = [[h, h + 1, w, w + 1] for h, w in ((0, 0), (min(1, H - 1), min(1, W - 1)), (H - 1, W - 1),
                                                   (max(0, H - 2), max(0, W - 2)))]
        for _ in range(6):
            h0, w0 = rng.randrange(H), rng.randrange(W)
            boxes.append([h0, rng.randint(h0 + 1, H), w0, rng.randint(w0 + 1, W)])
        got = R.backward_boxes(l, np.array(boxes))
        for n, (h0, h1, w0, w1) in enumerate(boxes):
            comp, ins = R.backward(l, ((0, C), (h0, h1), (w0, w1)))
            assert comp[1:] == ((h0, h1), (w0, w1)), l.name
            for shp, want, arr in zip(l.in_shapes, ins, got):
                assert want[0] == (0, shp[0]), l.name  # whole channels in, whole channels out
                assert tuple(map(tuple, arr[n].reshape(2, 2).tolist())) == want[1:], (l.name, boxes[n])
        checked += 1
    assert checked > 5


def test_backward_boxes_refuses_a_non_local_layer(traced):
    g, _ = traced("alexnet", (3, 64, 64))
    lin = next(l for l in g.layers if l.kind == "linear")
    with pytest.raises(ValueError, match="not spatially local"):
        R.backward_boxes(lin, np.array([[0, 1, 0, 1]]))
