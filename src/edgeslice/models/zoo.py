"""Reference model zoo: the classic CNNs that edgeslice partitions.

torchvision cannot be imported in this environment (it breaks beside the
CPU build of torch), so edgeslice carries its own clean re-implementations
of the architectures it benchmarks against.  Every model here is written
with plain ``torch.nn`` and matches torchvision's layer order,
hyper-parameters and parameter counts exactly (YOLOv2, which torchvision
does not ship, follows the Darknet ``yolov2-voc.cfg`` layout).

The models are written to be friendly to ``torch.fx.symbolic_trace`` and to
the layer-graph partitioner built on top of it:

* no data-dependent control flow and no use of ``x.size()`` / ``x.shape``
  (flattening is ``torch.flatten(x, 1)``);
* every layer is its own module and no module instance is called twice in a
  forward pass (torchvision's ResNet blocks reuse one ``self.relu``; here
  each use has its own ``nn.ReLU``);
* no in-place activations;
* residual additions are written ``out + identity`` and concatenations
  ``torch.cat([...], 1)``.

No pretrained weights are shipped and nothing is downloaded.  ``ZOO`` maps a
short name to a :class:`ZooEntry` holding the factory and the default input
shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

__all__ = [
    "ZooEntry",
    "ZOO",
    "vgg16",
    "alexnet",
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "googlenet",
    "yolov2",
]


# --------------------------------------------------------------------------
# VGG-16
# --------------------------------------------------------------------------

# Configuration "D" of Simonyan & Zisserman: output channels of each 3x3
# conv, "M" for a 2x2 max pool.
_VGG16_CFG: tuple[int | str, ...] = (
    64, 64, "M",
    128, 128, "M",
    256, 256, 256, "M",
    512, 512, 512, "M",
    512, 512, 512, "M",
)


class VGG(nn.Module):
    def __init__(self, cfg: tuple[int | str, ...], num_classes: int = 1000,
                 dropout: float = 0.5) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                assert isinstance(v, int)
                layers.append(nn.Conv2d(in_ch, v, kernel_size=3, padding=1))
                layers.append(nn.ReLU())
                in_ch = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        return x


def vgg16(num_classes: int = 1000) -> nn.Module:
    """VGG-16, configuration D without batch norm.

    From Simonyan & Zisserman, "Very Deep Convolutional Networks for
    Large-Scale Image Recognition" (ICLR 2015): thirteen 3x3 convolutions in
    five stages separated by 2x2 max pools, an adaptive 7x7 average pool and
    three fully connected layers (25088->4096->4096->num_classes) with dropout.
    Matches torchvision's ``vgg16`` (138,357,544 parameters at 1000 classes).
    """
    return VGG(_VGG16_CFG, num_classes=num_classes)


# --------------------------------------------------------------------------
# AlexNet
# --------------------------------------------------------------------------


class AlexNet(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        return x


def alexnet(num_classes: int = 1000) -> nn.Module:
    """AlexNet, in the single-tower form torchvision uses.

    From Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep
    Convolutional Neural Networks" (NeurIPS 2012), with the channel widths of
    Krizhevsky's "One weird trick for parallelizing convolutional neural
    networks" (2014) as in torchvision: five convolutions with three 3x3/2
    max pools, an adaptive 6x6 average pool and three fully connected layers
    with dropout.  Needs an input side of at least 63 pixels.  Matches
    torchvision's ``alexnet`` (61,100,840 parameters at 1000 classes).
    """
    return AlexNet(num_classes=num_classes)


# --------------------------------------------------------------------------
# ResNet
# --------------------------------------------------------------------------


def _conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_ch: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_ch, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu1(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:  # fixed at construction, not data-dependent
            identity = self.downsample(x)
        out = out + identity
        out = self.relu2(out)
        return out


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck: the stride sits on the 3x3 conv."""

    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        width = planes
        self.conv1 = _conv1x1(in_ch, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu1 = nn.ReLU()
        self.conv2 = _conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu2 = nn.ReLU()
        self.conv3 = _conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.downsample = downsample
        self.relu3 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu1(out)
        out = self.conv2(out)
        out = self.bn2(out)
        out = self.relu2(out)
        out = self.conv3(out)
        out = self.bn3(out)
        if self.downsample is not None:  # fixed at construction, not data-dependent
            identity = self.downsample(x)
        out = out + identity
        out = self.relu3(out)
        return out


class ResNet(nn.Module):
    def __init__(self, block: type[BasicBlock] | type[Bottleneck],
                 layers: tuple[int, int, int, int], num_classes: int = 1000) -> None:
        super().__init__()
        self.in_ch = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block: type[BasicBlock] | type[Bottleneck], planes: int,
                    blocks: int, stride: int = 1) -> nn.Sequential:
        downsample: nn.Module | None = None
        if stride != 1 or self.in_ch != planes * block.expansion:
            downsample = nn.Sequential(
                _conv1x1(self.in_ch, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers: list[nn.Module] = [block(self.in_ch, planes, stride, downsample)]
        self.in_ch = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.in_ch, planes))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.fc(x)
        return x


def resnet18(num_classes: int = 1000) -> nn.Module:
    """ResNet-18.

    From He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition"
    (CVPR 2016): a 7x7/2 stem and max pool, four stages of two BasicBlocks
    (two 3x3 convs with batch norm and an identity or 1x1-conv+BN shortcut),
    global average pooling and one fully connected layer.  Each ReLU is its
    own module.  Matches torchvision's ``resnet18`` (11,689,512 parameters at
    1000 classes).
    """
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes=num_classes)


def resnet50(num_classes: int = 1000) -> nn.Module:
    """ResNet-50 (v1.5).

    From He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition"
    (CVPR 2016), in the v1.5 variant torchvision uses: the stride of each
    downsampling Bottleneck (1x1 -> 3x3 -> 1x1, expansion 4) sits on the 3x3
    conv rather than the first 1x1.  Stages of 3, 4, 6 and 3 blocks.  Matches
    torchvision's ``resnet50`` (25,557,032 parameters at 1000 classes).
    """
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes=num_classes)


# --------------------------------------------------------------------------
# MobileNetV2
# --------------------------------------------------------------------------


def _make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round channel counts as MobileNetV2's reference code does."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:  # never round down by more than 10%
        new_v += divisor
    return new_v


class ConvBNReLU6(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1) -> None:
        padding = (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU6(),
        )


class InvertedResidual(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        assert stride in (1, 2)
        hidden = int(round(in_ch * expand_ratio))
        self.use_res_connect = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(in_ch, hidden, kernel_size=1))
        layers.extend([
            ConvBNReLU6(hidden, hidden, kernel_size=3, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_ch, kernel_size=1, bias=False),
            nn.BatchNorm2d(out_ch),
        ])
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # use_res_connect is a Python bool fixed at construction, so fx
        # resolves it while tracing.
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    # t (expansion), c (output channels), n (repeats), s (first stride)
    _SETTINGS: tuple[tuple[int, int, int, int], ...] = (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    )

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0,
                 dropout: float = 0.2) -> None:
        super().__init__()
        in_ch = _make_divisible(32 * width_mult)
        self.last_channel = _make_divisible(1280 * max(1.0, width_mult))
        features: list[nn.Module] = [ConvBNReLU6(3, in_ch, stride=2)]
        for t, c, n, s in self._SETTINGS:
            out_ch = _make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(in_ch, out_ch, s if i == 0 else 1, t))
                in_ch = out_ch
        features.append(ConvBNReLU6(in_ch, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(self.last_channel, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        return x


def mobilenet_v2(num_classes: int = 1000) -> nn.Module:
    """MobileNetV2, width multiplier 1.0.

    From Sandler, Howard, Zhu, Zhmoginov & Chen, "MobileNetV2: Inverted
    Residuals and Linear Bottlenecks" (CVPR 2018): a 3x3/2 stem, seventeen
    inverted residual blocks (1x1 expansion, depthwise 3x3, linear 1x1
    projection, ReLU6 activations, ``x + block(x)`` when the stride is 1 and
    the widths match), a 1x1 conv to 1280 channels, global average pooling,
    dropout 0.2 and a linear classifier.  Matches torchvision's
    ``mobilenet_v2`` (3,504,872 parameters at 1000 classes).
    """
    return MobileNetV2(num_classes=num_classes)


# --------------------------------------------------------------------------
# GoogLeNet
# --------------------------------------------------------------------------


class BasicConv2d(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1,
                 padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=padding,
                              bias=False)
        self.bn = nn.BatchNorm2d(out_ch, eps=0.001)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    def __init__(self, in_ch: int, ch1x1: int, ch3x3red: int, ch3x3: int,
                 ch5x5red: int, ch5x5: int, pool_proj: int) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(in_ch, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_ch, ch3x3red, kernel_size=1),
            BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1),
        )
        # The paper's 5x5 branch; torchvision (and this port) use a 3x3 here.
        self.branch3 = nn.Sequential(
            BasicConv2d(in_ch, ch5x5red, kernel_size=1),
            BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_ch, pool_proj, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1(x)
        b2 = self.branch2(x)
        b3 = self.branch3(x)
        b4 = self.branch4(x)
        return torch.cat([b1, b2, b3, b4], 1)


class GoogLeNet(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        self.conv1 = BasicConv2d(3, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, kernel_size=1)
        self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)

        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)

        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.maxpool1(x)
        x = self.conv2(x)
        x = self.conv3(x)
        x = self.maxpool2(x)
        x = self.inception3a(x)
        x = self.inception3b(x)
        x = self.maxpool3(x)
        x = self.inception4a(x)
        x = self.inception4b(x)
        x = self.inception4c(x)
        x = self.inception4d(x)
        x = self.inception4e(x)
        x = self.maxpool4(x)
        x = self.inception5a(x)
        x = self.inception5b(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.dropout(x)
        x = self.fc(x)
        return x


def googlenet(num_classes: int = 1000) -> nn.Module:
    """GoogLeNet (Inception v1) without auxiliary classifiers.

    From Szegedy et al., "Going Deeper with Convolutions" (CVPR 2015), as
    torchvision builds it with ``aux_logits=False, transform_input=False``:
    conv+BN(eps=0.001)+ReLU units, nine four-branch Inception modules
    concatenated on the channel axis (the "5x5" branch is a 3x3 conv, as in
    torchvision), ceil-mode max pools, global average pooling, dropout 0.2
    and one linear layer.  6,624,904 parameters at 1000 classes.
    """
    return GoogLeNet(num_classes=num_classes)


# --------------------------------------------------------------------------
# YOLOv2
# --------------------------------------------------------------------------


class ConvBNLeaky(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, kernel_size: int) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel_size, padding=(kernel_size - 1) // 2, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.LeakyReLU(0.1),
        )


def _darknet_stage(spec: list[tuple[int, int] | str], in_ch: int) -> tuple[nn.Sequential, int]:
    """Build a run of Darknet layers: (out_channels, kernel) or "M" (2x2 max pool)."""
    layers: list[nn.Module] = []
    for item in spec:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            assert isinstance(item, tuple)
            out_ch, k = item
            layers.append(ConvBNLeaky(in_ch, out_ch, k))
            in_ch = out_ch
    return nn.Sequential(*layers), in_ch


class YOLOv2(nn.Module):
    def __init__(self, num_classes: int = 20, num_anchors: int = 5) -> None:
        super().__init__()
        # Darknet-19 up to the passthrough source (stride 16, 512 channels).
        self.stage1, ch = _darknet_stage([
            (32, 3), "M",
            (64, 3), "M",
            (128, 3), (64, 1), (128, 3), "M",
            (256, 3), (128, 1), (256, 3), "M",
            (512, 3), (256, 1), (512, 3), (256, 1), (512, 3),
        ], 3)
        pass_ch = ch
        # Rest of Darknet-19 (stride 32, 1024 channels).
        self.stage2, ch = _darknet_stage([
            "M",
            (1024, 3), (512, 1), (1024, 3), (512, 1), (1024, 3),
        ], ch)
        # Detection head.
        self.head, ch = _darknet_stage([(1024, 3), (1024, 3)], ch)
        # Passthrough: 1x1 conv to 64 channels, then space-to-depth (x4 channels).
        self.passthrough = nn.Sequential(
            ConvBNLeaky(pass_ch, 64, 1),
            nn.PixelUnshuffle(2),
        )
        self.fuse = ConvBNLeaky(64 * 4 + ch, 1024, 3)
        self.detector = nn.Conv2d(1024, num_anchors * (5 + num_classes), kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fine = self.stage1(x)
        main = self.stage2(fine)
        main = self.head(main)
        passthrough = self.passthrough(fine)
        x = torch.cat([passthrough, main], 1)
        x = self.fuse(x)
        x = self.detector(x)
        return x


def yolov2(num_classes: int = 20, num_anchors: int = 5) -> nn.Module:
    """YOLOv2 for Pascal VOC (Darknet-19 backbone, passthrough layer).

    From Redmon & Farhadi, "YOLO9000: Better, Faster, Stronger" (CVPR 2017),
    following Darknet's ``yolov2-voc.cfg``: the 18 convolutions of Darknet-19
    (conv+BN+LeakyReLU(0.1), five 2x2 max pools), two 3x3x1024 head convs, a
    passthrough branch (1x1 conv to 64 channels on the 26x26 stride-16
    features, space-to-depth with ``nn.PixelUnshuffle(2)``) concatenated in
    front of the head output, a 3x3x1024 conv and a final 1x1 conv with bias
    to ``num_anchors * (5 + num_classes)`` channels.  Input sides must be
    multiples of 32; 416x416 gives a 125x13x13 output.  Note that
    ``PixelUnshuffle`` orders channels differently from Darknet's ``reorg``
    layer (the shapes are the same).
    """
    return YOLOv2(num_classes=num_classes, num_anchors=num_anchors)


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ZooEntry:
    """A named reference model: factory, default input shape (C, H, W), one-line description."""

    name: str
    factory: Callable[[], nn.Module]
    input_shape: tuple[int, int, int]
    description: str


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        ZooEntry("vgg16", vgg16, (3, 224, 224),
                 "VGG-16 (Simonyan & Zisserman 2014), 13 conv + 3 FC"),
        ZooEntry("resnet18", resnet18, (3, 224, 224),
                 "ResNet-18 (He et al. 2015), 8 BasicBlocks with residual adds"),
        ZooEntry("resnet50", resnet50, (3, 224, 224),
                 "ResNet-50 v1.5 (He et al. 2015), 16 Bottleneck blocks with residual adds"),
        ZooEntry("mobilenet_v2", mobilenet_v2, (3, 224, 224),
                 "MobileNetV2 (Sandler et al. 2018), depthwise inverted residuals"),
        ZooEntry("alexnet", alexnet, (3, 224, 224),
                 "AlexNet (Krizhevsky et al. 2012), 5 conv + 3 FC"),
        ZooEntry("yolov2", yolov2, (3, 416, 416),
                 "YOLOv2 VOC (Redmon & Farhadi 2016), Darknet-19 + passthrough detector"),
        ZooEntry("googlenet", googlenet, (3, 224, 224),
                 "GoogLeNet (Szegedy et al. 2014), 9 Inception modules, no aux heads"),
    )
}
