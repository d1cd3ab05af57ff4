"""YOLOv2 (VOC), after Darknet's ``yolov2-voc.cfg`` (see :mod:`edgeslice.models.zoo`)."""

from __future__ import annotations

import torch
from torch import nn

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
