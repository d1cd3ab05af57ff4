"""Tests for the reference model zoo (edgeslice.models.zoo).

Models are built once per test session (VGG-16 alone takes ~2 s to
initialise) and run in eval mode under ``torch.no_grad()`` on small inputs
so that the file stays well under a minute on two cores.
"""

from __future__ import annotations

import functools
from collections import Counter

import pytest
import torch
import torch.fx
from torch import nn

from edgeslice.models.zoo import ZOO, ZooEntry, yolov2, yolov3_tiny

torch.set_num_threads(2)

NAMES = ["vgg16", "resnet18", "resnet50", "mobilenet_v2", "alexnet", "yolov2", "googlenet",
         "shufflenet_v2", "yolov3_tiny", "unet_small", "resnet32", "nin"]
# DeCNN's decoupled variants are registered too; test_decoupled.py checks them.
DECOUPLED = ["resnet50_decoupled", "resnet50_decoupled_x175", "resnet18_decoupled", "vgg16_bn_decoupled"]
# The two more that Li et al. (TMC 2024) place; registered after the decoupled ones.
MEC = ["resnet32", "nin"]

# torchvision's parameter counts at default settings (1000 classes).
# YOLOv2 (VOC, 20 classes, 5 anchors) has no torchvision counterpart; its count
# checked by hand (conv weight in*out*k*k plus 2*out BN affine params; running
# stats are buffers, not parameters):
#   Darknet-19, 18 convs:
#     928 + 18,560 + 73,984 + 8,320 + 73,984 + 295,424 + 33,024 + 295,424
#     + 1,180,672 + 131,584 + 1,180,672 + 131,584 + 1,180,672
#     + 4,720,640 + 525,312 + 4,720,640 + 525,312 + 4,720,640   = 19,817,376
#   head, 2 x (1024*1024*9 + 2048)                                = 18,878,464
#   passthrough 1x1, 512*64 + 128                                 =     32,896
#   fuse 3x3, 1280*1024*9 + 2048                                  = 11,798,528
#   detector 1x1 with bias, 1024*125 + 125                        =    128,125
#   total                                                         = 50,655,389
# YOLOv3-tiny (COCO, 80 classes, 3 anchors, 255-channel heads), same rules:
#   backbone 16-32-64-128-256, 3x3:  464 + 4,672 + 18,560 + 73,984 + 295,424
#   trunk 3x3x512, 3x3x1024, 1x1x256: 1,180,672 + 4,720,640 + 262,656
#   head1 3x3x512, 1x1x255 + bias:    1,180,672 + 130,815
#   lateral 1x1x128:                  33,024
#   head2 3x3x256 on 384, 1x1x255:    885,248 + 65,535          total 8,852,366
# U-Net (width 16, depth 4, 2 classes), double 3x3 convs with BN:
#   inc 2,800; downs 13,952 + 55,552 + 221,696 + 885,760;
#   ups 590,336 + 147,712 + 36,992 + 9,280; head 1x1 with bias 34  total 1,964,114
EXPECTED_PARAMS = {
    "vgg16": 138_357_544,
    "alexnet": 61_100_840,
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "mobilenet_v2": 3_504_872,
    "googlenet": 6_624_904,
    "yolov2": 50_655_389,
    "shufflenet_v2": 2_278_604,
    "yolov3_tiny": 8_852_366,
    "unet_small": 1_964_114,
    # ResNet-32 (CIFAR, n=5, projection shortcuts, 10 classes): stem 432 + 32 BN; stage 1 ten 3x3
    # 16->16 convs 23,040 + BN 320; stage 2 first conv 4,608, nine 32->32 convs 82,944, proj 512 + BN
    # 704; stage 3 first 18,432, nine 64->64 331,776, proj 2,048 + BN 1,408; fc 650   total 466,906
    "resnet32": 466_906,
    # NiN (ImageNet): mlpconv 96 53,568; 256 746,240; 384 1,180,800; 1000 5,459,000   total 7,439,608
    "nin": 7_439_608,
}

# Small inputs (C, H, W) and the output shape they give, without the batch dim.
SMALL_INPUT = {
    "vgg16": ((3, 64, 64), (1000,)),
    "resnet18": ((3, 64, 64), (1000,)),
    "resnet50": ((3, 64, 64), (1000,)),
    "mobilenet_v2": ((3, 64, 64), (1000,)),
    "googlenet": ((3, 64, 64), (1000,)),
    "alexnet": ((3, 96, 96), (1000,)),  # AlexNet needs a side of at least 63
    "yolov2": ((3, 128, 128), (125, 4, 4)),
    "shufflenet_v2": ((3, 64, 64), (1000,)),
    "yolov3_tiny": ((3, 128, 128), (255 * (4 * 4 + 8 * 8),)),  # both heads, flattened
    "unet_small": ((3, 64, 64), (2, 64, 64)),
    "resnet32": ((3, 32, 32), (10,)),
    "nin": ((3, 96, 96), (1000,)),
}


@functools.cache
def _model(name: str) -> nn.Module:
    torch.manual_seed(0)
    return ZOO[name].factory().eval()


def _input(name: str, batch: int = 1) -> torch.Tensor:
    shape, _ = SMALL_INPUT[name]
    g = torch.Generator().manual_seed(1)
    return torch.randn(batch, *shape, generator=g)


def test_registry() -> None:
    assert list(ZOO) == NAMES[:-2] + DECOUPLED + MEC
    for name, entry in ZOO.items():
        assert isinstance(entry, ZooEntry)
        assert entry.name == name
        assert callable(entry.factory)
        assert entry.description and "\n" not in entry.description
        expected = {"yolov2": (3, 416, 416), "yolov3_tiny": (3, 416, 416),
                    "unet_small": (3, 128, 128), "resnet32": (3, 32, 32)}.get(name, (3, 224, 224))
        assert entry.input_shape == expected
        c, h, w = entry.input_shape
        assert h % entry.side == 0 and w % entry.side == 0


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count(name: str) -> None:
    n = sum(p.numel() for p in _model(name).parameters())
    assert n == EXPECTED_PARAMS[name]


@pytest.mark.parametrize("name", NAMES)
def test_output_shape_batch2(name: str) -> None:
    _, out_shape = SMALL_INPUT[name]
    with torch.no_grad():
        y = _model(name)(_input(name, batch=2))
    assert y.shape == (2, *out_shape)
    assert torch.isfinite(y).all()


def test_yolov2_full_resolution() -> None:
    with torch.no_grad():
        y = _model("yolov2")(torch.randn(1, *ZOO["yolov2"].input_shape))
    assert y.shape == (1, 125, 13, 13)


@pytest.mark.parametrize("shape", [(3, 416, 416), (3, 320, 416)])
def test_yolov3_tiny_heads_flattened(shape) -> None:
    _, h, w = shape
    with torch.no_grad():
        y = _model("yolov3_tiny")(torch.randn(2, *shape))
    assert y.shape == (2, 255 * ((h // 32) * (w // 32) + (h // 16) * (w // 16)))


def test_yolov3_tiny_head_width_follows_classes_and_anchors() -> None:
    m = yolov3_tiny(num_classes=20, num_anchors=2)
    assert m.head1[-1].out_channels == m.head2[-1].out_channels == 2 * (5 + 20)


def test_non_square_inputs() -> None:
    with torch.no_grad():
        assert _model("shufflenet_v2")(torch.randn(2, 3, 96, 64)).shape == (2, 1000)
        assert _model("unet_small")(torch.randn(2, 3, 48, 64)).shape == (2, 2, 48, 64)


def test_yolov2_head_width_follows_classes_and_anchors() -> None:
    m = yolov2(num_classes=80, num_anchors=3)
    assert m.detector.out_channels == 3 * (5 + 80)


@pytest.mark.parametrize("name", NAMES)
def test_fx_trace_matches_eager(name: str) -> None:
    model = _model(name)
    traced = torch.fx.symbolic_trace(model)
    x = _input(name)
    with torch.no_grad():
        eager = model(x)
        fx_out = traced(x)
    assert fx_out.shape == eager.shape
    assert torch.allclose(fx_out, eager, rtol=1e-5, atol=1e-6)
    # Each layer is its own module: no call_module target appears twice.
    targets = Counter(n.target for n in traced.graph.nodes if n.op == "call_module")
    assert targets, "expected the graph to call submodules"
    repeated = {t: c for t, c in targets.items() if c > 1}
    assert not repeated, f"modules called more than once in the graph: {repeated}"


@pytest.mark.parametrize("name", NAMES)
def test_no_module_called_twice(name: str) -> None:
    model = _model(name)
    counts: Counter[int] = Counter()
    names = {id(m): n or "<root>" for n, m in model.named_modules()}
    handles = [
        m.register_forward_hook(lambda mod, _inp, _out: counts.update([id(mod)]))
        for m in model.modules()  # modules() yields each shared instance once
    ]
    try:
        with torch.no_grad():
            model(_input(name))
    finally:
        for h in handles:
            h.remove()
    twice = {names[i]: c for i, c in counts.items() if c > 1}
    assert not twice, f"module instances called more than once: {twice}"
    # Every leaf module with work to do is actually used.
    unused = [n for n, m in model.named_modules()
              if not list(m.children()) and id(m) not in counts]
    assert not unused, f"leaf modules never called: {unused}"


@pytest.mark.parametrize("name", NAMES)
def test_no_inplace_ops(name: str) -> None:
    inplace = [n for n, m in _model(name).named_modules() if getattr(m, "inplace", False)]
    assert not inplace
