"""Tests for DeCNN's decoupled variants (edgeslice.models.decoupled) and the ``<zoo name>:k=v`` model spec.

Structure is checked on models built on the meta device (shapes, no storage:
milliseconds even for the VGG); numbers on real models at small inputs, each
built once.  Every variant traces and six random 4-device plans of it verify
in-process against the unpartitioned model.  The file stays under a minute on
two cores.
"""

from __future__ import annotations

import functools
from collections import Counter

import pytest
import torch
from torch import nn

from edgeslice.errors import ModelError
from edgeslice.execute.check import check_plan
from edgeslice.graph import trace
from edgeslice.models import load_model, model_info, normalize_spec
from edgeslice.models.decoupled import ChannelShuffle, decouple
from edgeslice.models.resnet import BasicBlock, Bottleneck
from edgeslice.models.zoo import ZOO
from edgeslice.planners import make_plan

torch.set_num_threads(2)

RESNETS = ["resnet50_decoupled", "resnet50_decoupled_x175", "resnet18_decoupled"]
NAMES = RESNETS + ["vgg16_bn_decoupled"]

# Parameter counts, by hand.  A conv with g groups has in*out*k*k/g weights; BN has 2*C affine parameters
# (running statistics are buffers).  A bottleneck (in, w) has 1x1 in*w/g, 3x3 9*w*w/g, 1x1 w*4w/g and BN
# 2w + 2w + 8w; the first block of a stage adds a down-sample 1x1 in*4w/g + BN 8w.  A BasicBlock (in, w) has
# 3x3 9*in*w/g, 3x3 9*w*w/g and BN 4w; a down-sample 1x1 in*w/g + BN 2w where the width changes.
# resnet50_decoupled (widths 96/192/384/768), g=4:
#   stem 3*96*49 + 192                                        =     14,304
#   stage 1: first 43,392 (ds 9,216 + 768) + 2 x 40,320       =    124,032
#   stage 2: first 215,808 + 3 x 158,976                      =    692,736
#   stage 3: first 855,552 + 5 x 631,296                      =  4,012,032
#   stage 4: first 3,406,848 + 2 x 2,515,968                  =  8,438,784
#   fc 3072*1000 + 1000                                       =  3,073,000   total 16,354,888
# resnet50_decoupled_x175 (112/224/448/896), g=4:
#   stem 3*112*49 + 224 = 16,688; stages 168,000 (58,688 + 2 x 54,656), 940,800 (292,992 + 3 x 215,936),
#   5,454,848 (1,163,008 + 5 x 858,368), 11,479,552 (4,634,112 + 2 x 3,422,720); fc 3,585,000  total 21,644,888
# resnet18_decoupled (96/192/384/768), g=4:
#   stem 14,304; stage 1 2 x (2 x 20,736 + 384) = 83,712; stage 2 130,176 (41,472 + 82,944 + 768 + ds 4,992)
#   + 166,656 = 296,832; stage 3 518,400 + 665,088 = 1,183,488; stage 4 2,068,992 + 2,657,280 = 4,726,272;
#   fc 768*1000 + 1000 = 769,000                                                              total 7,073,608
# vgg16_bn_decoupled, g=4 (conv 9*in*out/g + out bias, BN 2*out; the first conv ungrouped):
#   3->96 2,880; 96->112 24,528; 112->224 57,120; 224->224 113,568; 224->448 227,136; 2 x 448->448 452,928;
#   448->896 905,856; 4 x 896->896 1,809,024; 896->512 1,033,728                     convs 10,506,768
#   classifier 25088*4096 + 4096 + 4096*4096 + 4096 + 4096*1000 + 1000                 123,642,856
#                                                                                      total 134,149,624
# With g=2 every grouped conv has twice the weights (same sums, /2 instead of /4):
#   29,542,984, 39,595,352, 13,349,704 and 144,632,824.
EXPECTED_PARAMS = {
    ("resnet50_decoupled", 4): 16_354_888,
    ("resnet50_decoupled_x175", 4): 21_644_888,
    ("resnet18_decoupled", 4): 7_073_608,
    ("vgg16_bn_decoupled", 4): 134_149_624,
    ("resnet50_decoupled", 2): 29_542_984,
    ("resnet50_decoupled_x175", 2): 39_595_352,
    ("resnet18_decoupled", 2): 13_349_704,
    ("vgg16_bn_decoupled", 2): 144_632_824,
}

SIDE = {"vgg16_bn_decoupled": 32}  # its adaptive 7x7 pool takes any side; 32 keeps the 896-channel convs cheap
PERMUTES = {"resnet50_decoupled": 3, "resnet50_decoupled_x175": 3, "resnet18_decoupled": 3, "vgg16_bn_decoupled": 2}


def _meta(name: str, groups: int = 4) -> nn.Module:
    with torch.device("meta"):
        return ZOO[name].factory(groups=groups)


@functools.cache
def _real(name: str) -> nn.Module:
    return load_model(name)


@functools.cache
def _traced(name: str):
    side = SIDE.get(name, 64)
    return trace(name, (3, side, side))


# ---- structure -----------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("groups", [4, 2])
def test_parameter_count(name: str, groups: int) -> None:
    n = sum(p.numel() for p in _meta(name, groups).parameters())
    print(f"{name} groups={groups}: {n:,} parameters")
    assert n == EXPECTED_PARAMS[name, groups]


def test_registered_with_imagenet_inputs() -> None:
    for name in NAMES:
        assert ZOO[name].input_shape == (3, 224, 224) and ZOO[name].side == 1
        assert ZOO[name].description and "\n" not in ZOO[name].description


@pytest.mark.parametrize("name", RESNETS)
@pytest.mark.parametrize("groups", [4, 2])
def test_resnet_blocks_grouped_stem_and_fc_not(name: str, groups: int) -> None:
    m = _meta(name, groups)
    widths = {"resnet50_decoupled_x175": (112, 224, 448, 896)}.get(name, (96, 192, 384, 768))
    stem = m.conv1
    assert (stem.in_channels, stem.out_channels, stem.kernel_size, stem.stride) == (3, widths[0], (7, 7), (2, 2))
    assert m.conv1.groups == 1
    assert isinstance(m.fc, nn.Linear) and m.fc.out_features == 1000
    expansion = 4 if "50" in name else 1
    assert m.fc.in_features == widths[3] * expansion
    blocks = [b for b in m.modules() if isinstance(b, (Bottleneck, BasicBlock))]
    assert len(blocks) == (16 if "50" in name else 8)
    block_convs = []
    for b in blocks:
        block_convs += [c for c in (b.conv1, b.conv2, getattr(b, "conv3", None)) if c is not None]
        if b.downsample is not None:
            block_convs.append(b.downsample[0])
    assert len(block_convs) == (16 * 3 + 4 if "50" in name else 8 * 2 + 3)
    assert all(c.groups == groups for c in block_convs)
    convs = [c for c in m.modules() if isinstance(c, nn.Conv2d)]
    assert len(convs) == len(block_convs) + 1  # every conv but the stem is in a block
    # three shuffles, after the last block of stages 1-3, none inside a block or after stage 4
    shuffles = [(n, s.groups) for n, s in m.named_modules() if isinstance(s, ChannelShuffle)]
    assert shuffles == [("layer1.shuffle1", groups), ("layer2.shuffle2", groups), ("layer3.shuffle3", groups)]
    for i in (1, 2, 3):
        assert isinstance(list(getattr(m, f"layer{i}").children())[-1], ChannelShuffle)
    for i, w in enumerate(widths, start=1):
        assert getattr(m, f"layer{i}")[0].conv2.out_channels == w


def test_vgg_layers_as_the_issue_lists_them() -> None:
    m = _meta("vgg16_bn_decoupled")
    seq = []
    for layer in m.features:
        if isinstance(layer, nn.Conv2d):
            assert layer.kernel_size == (3, 3) and layer.padding == (1, 1)
            seq.append((layer.in_channels, layer.out_channels, layer.groups))
        elif isinstance(layer, nn.MaxPool2d):
            seq.append("pool")
        elif isinstance(layer, ChannelShuffle):
            seq.append(("shuffle", layer.groups))
        else:
            assert isinstance(layer, (nn.BatchNorm2d, nn.ReLU)), layer
    assert seq == [(3, 96, 1), (96, 112, 4), "pool", (112, 224, 4), (224, 224, 4), "pool", (224, 448, 4),
                   ("shuffle", 4), (448, 448, 4), (448, 448, 4), "pool", (448, 896, 4), (896, 896, 4),
                   ("shuffle", 4), (896, 896, 4), "pool", (896, 896, 4), (896, 896, 4), (896, 512, 4), "pool"]
    # conv, BN, ReLU everywhere; a shuffle after the ReLU
    kinds = [type(x).__name__ for x in m.features]
    assert kinds[:3] == ["Conv2d", "BatchNorm2d", "ReLU"] and kinds[16:18] == ["ReLU", "ChannelShuffle"]
    assert isinstance(m.avgpool, nn.AdaptiveAvgPool2d) and m.avgpool.output_size == (7, 7)
    linears = [(x.in_features, x.out_features) for x in m.classifier if isinstance(x, nn.Linear)]
    assert linears == [(25088, 4096), (4096, 4096), (4096, 1000)]
    assert [type(x).__name__ for x in m.classifier] == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout",
                                                        "Linear"]


def test_channel_shuffle_interleaves_the_groups() -> None:
    x = torch.arange(8.0).view(1, 8, 1, 1).expand(2, 8, 3, 2)
    y = ChannelShuffle(4)(x)
    assert y[0, :, 0, 0].tolist() == [0, 2, 4, 6, 1, 3, 5, 7]
    assert torch.equal(y[1], y[0]) and y.shape == x.shape
    assert repr(ChannelShuffle(4)) == "ChannelShuffle(groups=4)"


def test_decouple_refuses_what_it_cannot_do() -> None:
    def net():
        return nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Conv2d(6, 6, 3))
    with pytest.raises(ValueError, match="divide 6"):
        decouple(net(), 4, keep=["0"])
    with pytest.raises(ValueError, match="divide 3"):  # the first conv's 3 input channels, not kept
        decouple(net(), 2)
    with pytest.raises(ValueError, match="no module 'conv9'"):
        decouple(net(), 2, keep=["conv9"])
    with pytest.raises(ValueError, match="positive integer"):
        decouple(net(), 0, keep=["0"])
    with pytest.raises(ValueError, match="already grouped"):
        decouple(nn.Sequential(nn.Conv2d(4, 4, 1, groups=2)), 2)
    wrapped = nn.Module()
    wrapped.body = net()
    with pytest.raises(ValueError, match="not inside an nn.Sequential"):
        decouple(wrapped, 2, keep=["body.0"], shuffle_after=["body"])
    assert wrapped.body[2].groups == 1  # refused before anything changed
    m = decouple(wrapped, 3, keep=["body.0"], shuffle_after=["body.1"])
    assert [n for n, _ in m.body.named_children()] == ["0", "1", "shuffle1", "2"]
    assert m.body[0].groups == 1 and m.body[3].groups == 3 and m.body.shuffle1.groups == 3


# ---- numbers ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_output_shapes_and_every_module_once(name: str) -> None:
    model = _real(name)
    side = SIDE.get(name, 64)
    counts: Counter[int] = Counter()
    handles = [m.register_forward_hook(lambda mod, _i, _o: counts.update([id(mod)])) for m in model.modules()]
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, side, side, generator=g)
    try:
        with torch.no_grad():
            y1 = model(x[:1])
    finally:
        for h in handles:
            h.remove()
    with torch.no_grad():
        y2 = model(x)
    assert y1.shape == (1, 1000) and y2.shape == (2, 1000)
    assert torch.isfinite(y2).all()
    assert torch.allclose(y2[:1], y1, rtol=1e-4, atol=1e-5)
    names = {id(m): n or "<root>" for n, m in model.named_modules()}
    assert not {names[i]: c for i, c in counts.items() if c > 1}, "a module called twice"
    assert not [n for n, m in model.named_modules() if not list(m.children()) and id(m) not in counts]
    assert not [n for n, m in model.named_modules() if getattr(m, "inplace", False)]


@pytest.mark.parametrize("name", NAMES)
def test_traces_with_shuffles_as_permute_layers(name: str) -> None:
    g, _ = _traced(name)
    kinds = Counter(layer.kind for layer in g.layers)
    print(f"{name} at {g.input_shape}: {len(g.layers)} layers, {kinds['permute']} permute")
    assert kinds["permute"] == PERMUTES[name]
    assert kinds["conv"] == {"resnet50_decoupled": 53, "resnet50_decoupled_x175": 53, "resnet18_decoupled": 20,
                             "vgg16_bn_decoupled": 13}[name]
    convs = [layer for layer in g.layers if layer.kind == "conv"]
    assert convs[0].geometry.groups == 1 and all(c.geometry.groups == 4 for c in convs[1:])


@pytest.mark.parametrize("name", NAMES)
def test_random_plans_verify(name: str) -> None:
    g, gm = _traced(name)
    errs = []
    for seed in range(6):
        plan = make_plan("random", g, devices=4, seed=seed)
        errs.append(check_plan(plan, graph=g, gm=gm)["rel_err"])
    print(f"{name}: rel_err of 6 random plans {[f'{e:.1e}' for e in errs]}")
    assert all(e <= 1e-5 for e in errs), errs


# ---- the model spec --------------------------------------------------------------------

def test_spec_with_groups_builds_that_model() -> None:
    m = load_model("resnet50_decoupled:g=2", meta=True)
    assert m.layer2[1].conv2.groups == 2 and m.layer4[0].downsample[0].groups == 2 and m.conv1.groups == 1
    assert m.layer1.shuffle1.groups == 2
    assert sum(p.numel() for p in m.parameters()) == EXPECTED_PARAMS["resnet50_decoupled", 2]
    m = load_model("vgg16_bn_decoupled:groups=8,num_classes=10", meta=True)
    assert m.features[3].groups == 8 and m.classifier[-1].out_features == 10
    assert load_model("vgg16:num_classes=10", meta=True).classifier[-1].out_features == 10  # any zoo factory
    info = model_info("resnet50_decoupled:g=2")
    assert info.default_input == (3, 224, 224) and info.spec == "resnet50_decoupled:g=2"
    assert "groups=2" in info.description and "\n" not in info.description
    assert normalize_spec("resnet50_decoupled:g=2") == "resnet50_decoupled:g=2"
    assert normalize_spec("resnet50_decoupled: g=2") == "resnet50_decoupled: g=2"  # as written


def test_spec_with_groups_traces() -> None:
    g, _ = trace("resnet18_decoupled:g=2", (3, 32, 32))
    assert g.spec == "resnet18_decoupled:g=2"
    convs = [layer for layer in g.layers if layer.kind == "conv"]
    assert convs[0].geometry.groups == 1 and {c.geometry.groups for c in convs[1:]} == {2}


@pytest.mark.parametrize("spec, words", [
    ("resnet50_decoupled:h=2", ["unknown parameter 'h'", "accepts g, groups, num_classes"]),
    ("resnet50_decoupled:g=two", ["g='two' is not an integer", "accepts g, groups, num_classes"]),
    ("resnet50_decoupled:g=2,groups=4", ["'groups' twice"]),
    ("resnet50_decoupled:g=2,", ["'' is not 'k=v'", "accepts g, groups"]),
    ("resnet50_decoupld:g=2", ["'resnet50_decoupld' is not one", "resnet50_decoupled", "file.py:factory"]),
    ("net.py:g=2", ["only zoo models take 'k=v'"]),
    ("alexnet:g=2", ["unknown parameter 'g'", "alexnet accepts num_classes"]),
])
def test_bad_specs_are_refused_in_one_line(spec: str, words: list[str]) -> None:
    for call in (model_info, load_model):
        with pytest.raises(ModelError) as exc:
            call(spec)
        msg = str(exc.value)
        assert "\n" not in msg and repr(spec) in msg, msg
        for w in words:
            assert w in msg, msg


@pytest.mark.parametrize("spec, words", [
    ("resnet50_decoupled:g=5", ["5 groups", "divide 96"]),
    ("resnet50_decoupled_x175:g=3", ["3 groups", "divide 112"]),
    ("vgg16_bn_decoupled:g=3", ["3 groups", "divide 16"]),
    ("resnet18_decoupled:g=0", ["positive integer"]),
])
def test_groups_that_do_not_divide_are_refused_in_one_line(spec: str, words: list[str]) -> None:
    with pytest.raises(ModelError) as exc:
        load_model(spec, meta=True)
    msg = str(exc.value)
    assert "\n" not in msg and repr(spec) in msg, msg
    for w in words:
        assert w in msg, msg


def test_file_specs_still_load(tmp_path) -> None:
    f = tmp_path / "net.py"
    f.write_text("from torch import nn\n\ndef build():\n    return nn.Conv2d(3, 4, 1)\n")
    assert isinstance(load_model(f"{f}:build"), nn.Conv2d)
    assert normalize_spec(f"{f}:build") == f"{f.resolve()}:build"
    assert model_info(f"{f}:build").default_input == (3, 224, 224)
