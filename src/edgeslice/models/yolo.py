"""YOLO detectors after Darknet's cfg files (see :mod:`edgeslice.models.zoo`).

* YOLOv2 (VOC), after ``yolov2-voc.cfg`` (Redmon & Farhadi, "YOLO9000:
  Better, Faster, Stronger", CVPR 2017): one chain with a space-to-depth
  passthrough.
* YOLOv3-tiny (COCO), after ``yolov3-tiny.cfg`` (Redmon & Farhadi, "YOLOv3:
  An Incremental Improvement", 2018): a short backbone with two detection
  heads, the second fed by a nearest-neighbour ``nn.Upsample`` of a deep map
  concatenated with an earlier stride-16 map.  It is in the zoo for the
  upsample, the long skip and the two heads, which edgeslice needs merged
  into one output tensor.
"""

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


# --------------------------------------------------------------------------
# YOLOv3-tiny
# --------------------------------------------------------------------------


class YOLOv3Tiny(nn.Module):
    """YOLOv3-tiny; returns both heads flattened and concatenated into one tensor.

    edgeslice places exactly one output tensor per model, so instead of the
    usual pair ``(h1, h2)`` -- ``B x A(5+C) x H/32 x W/32`` and
    ``B x A(5+C) x H/16 x W/16`` -- ``forward`` returns
    ``torch.cat([h1.view(B, -1), h2.view(B, -1)], 1)``.  The heads are
    recovered by splitting at ``A(5+C) * (H/32) * (W/32)`` and viewing each
    part back to its 4-d shape.
    """

    def __init__(self, num_classes: int = 80, num_anchors: int = 3) -> None:
        super().__init__()
        head_ch = num_anchors * (5 + num_classes)
        # cfg layers 0-8: five 3x3 convs, the first four each followed by a
        # 2x2/2 max pool; layer 8 (256 channels, stride 16) is the route source.
        self.backbone, ch = _darknet_stage([
            (16, 3), "M",
            (32, 3), "M",
            (64, 3), "M",
            (128, 3), "M",
            (256, 3),
        ], 3)
        route_ch = ch
        # cfg layers 9-13: the fifth 2x2/2 max pool, a 3x3x512 conv, the sixth
        # max pool (stride 1), a 3x3x1024 conv and a 1x1 conv to 256.
        # Darknet's stride-1 pool is 2x2 and pads one row and one column on the
        # bottom/right only (so 13x13 stays 13x13 at 416).  Asymmetric padding
        # may not be supported by everything downstream of the tracer, so a
        # symmetric 3x3/1 pool with padding 1 stands in for it: same shape,
        # a window one pixel wider.
        self.trunk = nn.Sequential(
            nn.MaxPool2d(kernel_size=2, stride=2),
            ConvBNLeaky(ch, 512, 3),
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
            ConvBNLeaky(512, 1024, 3),
            ConvBNLeaky(1024, 256, 1),
        )
        # cfg layers 14-15: first head (stride 32); the last 1x1 conv is linear, with bias.
        self.head1 = nn.Sequential(
            ConvBNLeaky(256, 512, 3),
            nn.Conv2d(512, head_ch, kernel_size=1),
        )
        # cfg layers 17-20: route back to layer 13, 1x1 conv to 128, upsample x2,
        # route together with layer 8.
        self.lateral = ConvBNLeaky(256, 128, 1)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        # cfg layers 21-22: second head (stride 16).
        self.head2 = nn.Sequential(
            ConvBNLeaky(128 + route_ch, 256, 3),
            nn.Conv2d(256, head_ch, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        route = self.backbone(x)
        deep = self.trunk(route)
        h1 = self.head1(deep)
        up = self.upsample(self.lateral(deep))
        h2 = self.head2(torch.cat([up, route], 1))
        return torch.cat([h1.view(h1.size(0), -1), h2.view(h2.size(0), -1)], 1)


def yolov3_tiny(num_classes: int = 80, num_anchors: int = 3) -> nn.Module:
    """YOLOv3-tiny for COCO (80 classes, 3 anchors per head, 255-channel heads).

    Following Darknet's ``yolov3-tiny.cfg``: conv+BN+LeakyReLU(0.1) blocks of
    16-32-64-128-256-512-1024 channels with six max pools (five 2x2/2 and a
    stride-1 one, here 3x3/1 with padding 1), a 1x1 conv to 256, the first
    head (3x3x512, then a 1x1 conv with bias to ``num_anchors * (5 +
    num_classes)``) at stride 32, and the second head (3x3x256, 1x1 with bias)
    at stride 16 on ``cat([upsample(1x1 conv to 128), the 256-channel
    stride-16 map])``.  8,852,366 parameters at 80 classes.  Input sides must
    be multiples of 32 (the upsampled map must meet the stride-16 map);
    416x416 gives heads of 255x13x13 and 255x26x26, returned flattened and
    concatenated as one ``B x 215475`` tensor (see :class:`YOLOv3Tiny`).
    """
    return YOLOv3Tiny(num_classes=num_classes, num_anchors=num_anchors)
