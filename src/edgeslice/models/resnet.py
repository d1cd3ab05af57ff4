"""ResNet-18 and ResNet-50 v1.5, as torchvision lays them out (see :mod:`edgeslice.models.zoo`)."""

from __future__ import annotations

import torch
from torch import nn

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
    """``widths`` are the four stages' planes (the stem has ``widths[0]`` channels); torchvision's are the default.

    Wider stages are what :mod:`edgeslice.models.decoupled` builds before grouping the convolutions.
    """

    def __init__(self, block: type[BasicBlock] | type[Bottleneck],
                 layers: tuple[int, int, int, int], num_classes: int = 1000,
                 widths: tuple[int, int, int, int] = (64, 128, 256, 512)) -> None:
        super().__init__()
        self.in_ch = widths[0]
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, widths[0], layers[0])
        self.layer2 = self._make_layer(block, widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3] * block.expansion, num_classes)
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


class CifarResNet(nn.Module):
    """He et al.'s CIFAR ResNet-(6n+2): a 3x3 stem of 16 channels, three stages of ``n`` BasicBlocks
    (16, 32, 64 channels, strides 1, 2, 2) with 1x1-conv+BN projection shortcuts where the shape
    changes, global average pooling and one fully connected layer."""

    def __init__(self, n: int, num_classes: int = 10) -> None:
        super().__init__()
        self.in_ch = 16
        self.conv1 = _conv3x3(3, 16)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.layer1 = self._stage(16, n, 1)
        self.layer2 = self._stage(32, n, 2)
        self.layer3 = self._stage(64, n, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)

    def _stage(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        down = None
        if stride != 1 or self.in_ch != planes:
            down = nn.Sequential(_conv1x1(self.in_ch, planes, stride), nn.BatchNorm2d(planes))
        layers: list[nn.Module] = [BasicBlock(self.in_ch, planes, stride, down)]
        self.in_ch = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet32(num_classes: int = 10) -> nn.Module:
    """ResNet-32 for 32x32 images (He et al., CVPR 2016, section 4.2: n = 5, 31 convs + 1 FC).

    One of the four models Li et al. (TMC 2024) place block by block.  With
    projection shortcuts (option B) it has 466,906 parameters at 10 classes.
    """
    return CifarResNet(5, num_classes=num_classes)
