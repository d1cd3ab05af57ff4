"""VGG-16 and AlexNet as torchvision lays them out, and NiN (see :mod:`edgeslice.models.zoo`)."""

from __future__ import annotations

import torch
from torch import nn

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
    """VGG from a configuration: conv widths and ``"M"`` pools; with ``batch_norm`` each conv is conv, BN, ReLU.

    The classifier takes the last conv's channels times 7x7 (25088 for the configurations of the paper).
    """

    def __init__(self, cfg: tuple[int | str, ...], num_classes: int = 1000,
                 dropout: float = 0.5, batch_norm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                assert isinstance(v, int)
                layers.append(nn.Conv2d(in_ch, v, kernel_size=3, padding=1))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(v))
                layers.append(nn.ReLU())
                in_ch = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(in_ch * 7 * 7, 4096),
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


def _mlpconv(in_ch: int, out_ch: int, k: int, stride: int, padding: int) -> list[nn.Module]:
    """One NiN block: a kxk conv and two 1x1 convs (the "micro network"), each followed by a ReLU."""
    return [nn.Conv2d(in_ch, out_ch, k, stride, padding), nn.ReLU(),
            nn.Conv2d(out_ch, out_ch, 1), nn.ReLU(),
            nn.Conv2d(out_ch, out_ch, 1), nn.ReLU()]


class NiN(nn.Module):
    """Network in Network for ImageNet: four mlpconv blocks, max pools between, global average pooling."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_mlpconv(3, 96, 11, 4, 0), nn.MaxPool2d(3, 2),
            *_mlpconv(96, 256, 5, 1, 2), nn.MaxPool2d(3, 2),
            *_mlpconv(256, 384, 3, 1, 1), nn.MaxPool2d(3, 2),
            nn.Dropout(0.5),
            *_mlpconv(384, num_classes, 3, 1, 1),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avgpool(self.features(x)), 1)


def nin(num_classes: int = 1000) -> nn.Module:
    """NiN (Lin, Chen & Yan, "Network In Network", ICLR 2014), the ImageNet layout of the authors' Caffe model.

    One of the four models Li et al. (TMC 2024) place block by block.  No
    fully connected layer: the last mlpconv makes one map per class and global
    average pooling reads them.  7,439,608 parameters at 1000 classes.
    """
    return NiN(num_classes=num_classes)
