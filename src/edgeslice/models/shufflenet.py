"""ShuffleNetV2 x1.0, laid out as torchvision's ``shufflenet_v2_x1_0`` (see :mod:`edgeslice.models.zoo`).

From Ma, Zhang, Zheng & Sun, "ShuffleNet V2: Practical Guidelines for
Efficient CNN Architecture Design" (ECCV 2018).  It is in the zoo because it
is written the way mobile CNNs are written in the wild, with tensor plumbing
that the older zoo models avoid: ``x.size()`` arithmetic and
``view``/``transpose`` for the channel shuffle, ``x.chunk(2, dim=1)`` for the
channel split of the stride-1 unit, and ``x.view(x.size(0), -1)`` to flatten.
Partitioning it exercises those paths of the tracer and the channel cuts
(a channel split followed by a shuffle mixes the two halves of every unit).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# --------------------------------------------------------------------------
# ShuffleNetV2
# --------------------------------------------------------------------------


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``groups`` equal groups: (g, c/g) -> (c/g, g)."""
    b, c, h, w = x.size()
    x = x.view(b, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(b, -1, h, w)


def _conv_bn_relu(in_ch: int, out_ch: int, kernel_size: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_ch, out_ch, kernel_size, stride, (kernel_size - 1) // 2, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(),
    ]


def _depthwise_bn(ch: int, stride: int) -> list[nn.Module]:
    # ShuffleNetV2 puts no activation after the depthwise 3x3.
    return [
        nn.Conv2d(ch, ch, 3, stride, 1, groups=ch, bias=False),
        nn.BatchNorm2d(ch),
    ]


class ShuffleUnit(nn.Module):
    """One ShuffleNetV2 unit (the paper's Fig. 3c for stride 1, Fig. 3d for stride 2).

    Stride 1: split the channels in half, keep the first half as is, run the
    second through 1x1 -> depthwise 3x3 -> 1x1, concatenate, shuffle.  Stride
    2: both branches see the whole input and halve the resolution, so the
    width doubles.  Only stride-2 units have a ``branch1`` (torchvision keeps
    an empty ``nn.Sequential`` there; a module that is never called would be a
    leaf with no work, so it is left out; the state_dict keys are the same).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        branch_ch = out_ch // 2
        if stride == 1 and in_ch != 2 * branch_ch:
            raise ValueError(f"a stride-1 unit keeps its width: in_ch {in_ch} != out_ch {out_ch}")
        self.stride = stride
        if stride == 2:
            self.branch1 = nn.Sequential(
                *_depthwise_bn(in_ch, stride),
                *_conv_bn_relu(in_ch, branch_ch, 1),
            )
        self.branch2 = nn.Sequential(
            *_conv_bn_relu(in_ch if stride == 2 else branch_ch, branch_ch, 1),
            *_depthwise_bn(branch_ch, stride),
            *_conv_bn_relu(branch_ch, branch_ch, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # self.stride is fixed at construction, so fx resolves the branch while tracing.
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, stages_repeats: tuple[int, ...] = (4, 8, 4),
                 stages_out_channels: tuple[int, ...] = (24, 116, 232, 464, 1024),
                 num_classes: int = 1000) -> None:
        super().__init__()
        if len(stages_repeats) != 3 or len(stages_out_channels) != 5:
            raise ValueError("ShuffleNetV2 takes 3 stage repeats and 5 widths")
        in_ch = stages_out_channels[0]
        self.conv1 = nn.Sequential(*_conv_bn_relu(3, in_ch, 3, stride=2))
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for i, (repeats, out_ch) in enumerate(zip(stages_repeats, stages_out_channels[1:4]), start=2):
            units = [ShuffleUnit(in_ch, out_ch, 2)]
            units += [ShuffleUnit(out_ch, out_ch, 1) for _ in range(repeats - 1)]
            setattr(self, f"stage{i}", nn.Sequential(*units))
            in_ch = out_ch
        last = stages_out_channels[-1]
        self.conv5 = nn.Sequential(*_conv_bn_relu(in_ch, last, 1))
        self.fc = nn.Linear(last, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.maxpool(x)
        x = self.stage2(x)
        x = self.stage3(x)
        x = self.stage4(x)
        x = self.conv5(x)
        # Global average pooling.  torchvision writes x.mean([2, 3]); pooling to
        # 1x1 and flattening with x.view(x.size(0), -1) gives the same numbers
        # and is the other common way to write it in the wild.
        x = F.adaptive_avg_pool2d(x, 1)
        x = x.view(x.size(0), -1)
        x = self.fc(x)
        return x


def shufflenet_v2(num_classes: int = 1000) -> nn.Module:
    """ShuffleNetV2 x1.0.

    A 3x3/2 conv to 24 channels and a 3x3/2 max pool, three stages of 4, 8 and
    4 shuffle units (116, 232 and 464 channels; the first unit of each stage
    has stride 2), a 1x1 conv to 1024 channels, global average pooling and a
    linear classifier.  Every conv is bias-free and followed by batch norm;
    ReLU follows every conv except the depthwise ones.  Matches torchvision's
    ``shufflenet_v2_x1_0`` (2,278,604 parameters at 1000 classes); a 224x224
    input is reduced to 7x7 before pooling, so sides should be multiples of 32
    for the stages to halve evenly (other sizes also run).
    """
    return ShuffleNetV2(num_classes=num_classes)
