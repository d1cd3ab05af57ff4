"""Decoupled CNNs (DeCNN): group convolutions and channel shuffles, so a model splits cleanly over g devices.

From Du, Wang, Zhang, Liu & Chen, "Model Parallelism Optimization for
Distributed Inference via Decoupled CNN Structure", IEEE TPDS 32(7), 2021.
Cutting an ordinary CNN by channels makes every device need every channel of
the previous layer, so each layer costs an all-gather.  DeCNN changes the model
instead: every convolution of a stage becomes a group convolution with g groups
(g = the number of devices), so device i only ever reads and writes channel
group i; channels are mixed only by a *channel shuffle* between stages, where
the devices exchange all-to-all.  The networks are widened to win back the
capacity that grouping takes away (x1.5 or x1.75 the channels) and retrained;
the paper reports ResNet-50 over 4 Raspberry Pis 3.21x faster with 65.3% less
memory per device at +1.29% top-1.  No trained weights are shipped here.

:func:`decouple` is the transformation itself, applied to an ordinary model:
it turns every ``nn.Conv2d`` except the ones named in ``keep`` into a group
convolution with the same shape and ``groups`` groups, and puts a
:class:`ChannelShuffle` right after each module named in ``shuffle_after``.
The zoo's variants are the paper's (after the authors' released training
code), each an ordinary widened model from :mod:`.resnet` or :mod:`.classic`
passed through :func:`decouple`:

* ``resnet50_decoupled`` (x1.5): stem conv 7x7/2 3->96 *not* grouped, BN, ReLU,
  max pool 3/2; stages of 3, 4, 6, 3 bottlenecks of widths 96/192/384/768
  (outputs 384/768/1536/3072); every 1x1 and 3x3 conv of every bottleneck and
  every down-sample 1x1 conv grouped; a shuffle after stages 1, 2 and 3 (none
  inside blocks); global average pool; FC 3072->1000 not grouped.
* ``resnet50_decoupled_x175``: the same with widths 112/224/448/896, FC 3584->1000.
* ``resnet18_decoupled`` (x1.5, our choice following the same rule: the paper
  has no ResNet-18): stem 3->96 not grouped, stages of two BasicBlocks of
  widths 96/192/384/768, both 3x3 convs of every block and every down-sample
  1x1 grouped, shuffles after stages 1-3, FC 768->1000.
* ``vgg16_bn_decoupled`` (x1.75): thirteen 3x3 convs with BN and ReLU, all
  grouped except the first: 3->96, 96->112, pool, 112->224, 224->224, pool,
  224->448, shuffle, 448->448, 448->448, pool, 448->896, 896->896, shuffle,
  896->896, pool, 896->896, 896->896, 896->512, pool; then VGG's adaptive 7x7
  average pool and classifier 25088->4096->4096->1000 with ReLU and dropout.

``groups`` (default 4) must divide every grouped conv's channels: 1, 2, 3, 4,
6, 8, ... for the x1.5 ResNets (multiples of 96), 1, 2, 4, 7, 8, 14, 16, ...
for ``resnet50_decoupled_x175`` (112), 1, 2, 4, 8, 16 for the VGG (16).  A
model spec picks it: ``--model resnet50_decoupled:g=2`` (see :mod:`edgeslice.models`).

The shuffle is written the way people write it -- ``x.size()`` arithmetic and
``view``/``transpose``/``view`` -- in a module of its own; edgeslice's tracer
turns that chain into one ``permute`` layer.  As everywhere in the zoo, every
ReLU is its own module and nothing is in place.

Example::

    >>> m = resnet50_decoupled(groups=2)
    >>> m.layer1[0].conv2.groups, m.conv1.groups, m.layer1.shuffle1
    (2, 1, ChannelShuffle(groups=2))
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from edgeslice.models.classic import VGG
from edgeslice.models.resnet import BasicBlock, Bottleneck, ResNet

__all__ = [
    "ChannelShuffle",
    "decouple",
    "resnet50_decoupled",
    "resnet50_decoupled_x175",
    "resnet18_decoupled",
    "vgg16_bn_decoupled",
]


class ChannelShuffle(nn.Module):
    """Interleave ``groups`` equal channel groups, (g, c/g) -> (c/g, g): after it, group i holds 1/g of every group."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.size()
        x = x.view(b, self.groups, c // self.groups, h, w).transpose(1, 2).contiguous()
        return x.view(b, -1, h, w)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


def _grouped(conv: nn.Conv2d, groups: int) -> nn.Conv2d:
    """A conv of ``conv``'s shape with ``groups`` groups, initialised as the zoo's convs are (Kaiming, fan-out)."""
    new = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, groups=groups, bias=conv.bias is not None, padding_mode=conv.padding_mode,
                    device=conv.weight.device, dtype=conv.weight.dtype)
    nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
    if new.bias is not None:
        nn.init.zeros_(new.bias)
    return new


def _parent(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    path, _, last = name.rpartition(".")
    return (model.get_submodule(path) if path else model), last


def decouple(model: nn.Module, groups: int, *, keep: Iterable[str] = (),
             shuffle_after: Iterable[str] = ()) -> nn.Module:
    """Decouple ``model`` in place and return it: every ``nn.Conv2d`` not named in ``keep`` gets ``groups`` groups.

    Each module named in ``shuffle_after`` must sit in an ``nn.Sequential``; a
    ``ChannelShuffle(groups)`` named ``shuffle1``, ``shuffle2``, ... (in the
    order given) is put right after it there, so the other modules keep their
    names and a state dict of the decoupled model differs from the widened
    original's only in the grouped weights' shapes.  The new convs are freshly
    initialised.  ``ValueError``, before anything is changed, if a name is not
    a module of ``model`` (or a shuffle's is not in an ``nn.Sequential``), a
    conv is already grouped, or ``groups`` does not divide the channels it splits.

    >>> m = decouple(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 1)), 2,
    ...              keep=["0"], shuffle_after=["1"])
    >>> [type(c).__name__ for c in m], m[2].groups
    (['Conv2d', 'ReLU', 'ChannelShuffle', 'Conv2d'], 2)
    """
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"groups must be a positive integer, got {groups!r}")
    keep, shuffle_after = set(keep), list(shuffle_after)
    modules = dict(model.named_modules())
    for name in sorted(keep) + shuffle_after:
        if name not in modules:
            raise ValueError(f"{type(model).__name__} has no module {name!r} to keep or shuffle after")
    for name in shuffle_after:
        if not isinstance(_parent(model, name)[0], nn.Sequential):
            raise ValueError(f"module {name!r} is not inside an nn.Sequential; a shuffle can only follow such a module")
    convs = [(n, m) for n, m in modules.items() if isinstance(m, nn.Conv2d) and n not in keep]
    for name, conv in convs:
        if conv.groups != 1:
            raise ValueError(f"conv {name!r} is already grouped ({conv.groups} groups); decouple an ungrouped model")
    common = math.gcd(*(c for _, m in convs for c in (m.in_channels, m.out_channels)))
    if common % groups:
        raise ValueError(f"cannot split {type(model).__name__}'s convolutions into {groups} groups: their channel "
                         f"counts are multiples of {common} only, so use groups that divide {common}")
    for name, conv in convs:
        parent, last = _parent(model, name)
        setattr(parent, last, _grouped(conv, groups))
    for k, name in enumerate(shuffle_after, start=1):
        seq, last = _parent(model, name)
        children = list(seq.named_children())
        for child_name, _ in children:  # re-register in order, the shuffle after ``last``
            delattr(seq, child_name)
        for child_name, child in children:
            seq.add_module(child_name, child)
            if child_name == last:
                seq.add_module(f"shuffle{k}", ChannelShuffle(groups))
    return model


# --------------------------------------------------------------------------
# The variants
# --------------------------------------------------------------------------


def _decoupled_resnet(block: type[BasicBlock] | type[Bottleneck], layers: tuple[int, int, int, int],
                      widths: tuple[int, int, int, int], groups: int, num_classes: int) -> nn.Module:
    """A ResNet of ``widths`` with its stem kept whole and a shuffle after the last block of stages 1-3."""
    model = ResNet(block, layers, num_classes=num_classes, widths=widths)
    return decouple(model, groups, keep=["conv1"],
                    shuffle_after=[f"layer{i}.{layers[i - 1] - 1}" for i in (1, 2, 3)])


def resnet50_decoupled(groups: int = 4, num_classes: int = 1000) -> nn.Module:
    """Decoupled ResNet-50 x1.5 (DeCNN): stage widths 96/192/384/768, grouped bottlenecks, 3 shuffles, FC 3072->1000.

    16,354,888 parameters at 4 groups and 1000 classes (ResNet-50: 25,557,032).
    """
    return _decoupled_resnet(Bottleneck, (3, 4, 6, 3), (96, 192, 384, 768), groups, num_classes)


def resnet50_decoupled_x175(groups: int = 4, num_classes: int = 1000) -> nn.Module:
    """Decoupled ResNet-50 x1.75 (DeCNN): widths 112/224/448/896, grouped bottlenecks, 3 shuffles, FC 3584->1000."""
    return _decoupled_resnet(Bottleneck, (3, 4, 6, 3), (112, 224, 448, 896), groups, num_classes)


def resnet18_decoupled(groups: int = 4, num_classes: int = 1000) -> nn.Module:
    """Decoupled ResNet-18 x1.5 (our choice; DeCNN's rule applied to ResNet-18).

    Widths 96/192/384/768 (ResNet-18's 64/128/256/512 times 1.5, as ``resnet50_decoupled``): stem 3->96
    not grouped, both 3x3 convs of every BasicBlock and every down-sample 1x1 grouped, shuffles after
    stages 1-3, FC 768->1000 not grouped.
    """
    return _decoupled_resnet(BasicBlock, (2, 2, 2, 2), (96, 192, 384, 768), groups, num_classes)


# VGG-16-BN x1.75 as DeCNN's code lists it: conv widths, "M" a 2x2 max pool, "S" a channel shuffle.
_VGG16_BN_X175: tuple[int | str, ...] = (
    96, 112, "M",
    224, 224, "M",
    448, "S", 448, 448, "M",
    896, 896, "S", 896, "M",
    896, 896, 512, "M",
)


def vgg16_bn_decoupled(groups: int = 4, num_classes: int = 1000) -> nn.Module:
    """Decoupled VGG-16-BN x1.75 (DeCNN): 13 convs, all grouped but the first, 2 shuffles, classifier 25088->4096->4096.

    See the module docstring for the layer list; a shuffle follows the ReLU of the conv before it.
    """
    cfg = tuple(v for v in _VGG16_BN_X175 if v != "S")
    after, i = [], 0  # index in ``features``: a conv is conv, BN, ReLU; a pool is one module
    for v in _VGG16_BN_X175:
        if v == "S":
            after.append(f"features.{i - 1}")
        else:
            i += 1 if v == "M" else 3
    model = VGG(cfg, num_classes=num_classes, batch_norm=True)
    return decouple(model, groups, keep=["features.0"], shuffle_after=after)
