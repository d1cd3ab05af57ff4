"""A small U-Net for semantic segmentation (see :mod:`edgeslice.models.zoo`).

After Ronneberger, Fischer & Brox, "U-Net: Convolutional Networks for
Biomedical Image Segmentation" (MICCAI 2015): an encoder of double 3x3 convs
and 2x2 max pools, a bottleneck, and a decoder that upsamples, concatenates
the encoder map of the same resolution (the skip) and applies a double 3x3
conv again, ending in a 1x1 conv to per-pixel class scores.  It is in the zoo
because its output is as large as its input and its long skips keep
full-resolution maps alive across the whole network, which stresses spatial
partitioning differently from the classifiers.

Written as U-Nets commonly are in the wild rather than exactly as in the
paper: padded convs (output size equals input size), batch norm after every
conv, and bilinear upsampling with ``F.interpolate`` instead of the paper's
2x2 up-convolution.  The outermost up stage uses ``align_corners=True`` and
the others ``align_corners=False``, so that both variants appear in the zoo.
Base width 16 (the paper uses 64) and depth 4: widths 16-32-64-128, a
256-channel bottleneck at stride 16, so sides must be multiples of 16.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# --------------------------------------------------------------------------
# U-Net
# --------------------------------------------------------------------------


class DoubleConv(nn.Sequential):
    """(3x3 conv, batch norm, ReLU) twice; padded, so the size is kept."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(),
        )


class Down(nn.Module):
    """2x2 max pool, then a double conv."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2)
        self.conv = DoubleConv(in_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x))


class Up(nn.Module):
    """Bilinear x2 upsampling, concatenation with the skip, then a double conv."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int, align_corners: bool = False) -> None:
        super().__init__()
        self.align_corners = align_corners
        self.conv = DoubleConv(skip_ch + in_ch, out_ch)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=self.align_corners)
        return self.conv(torch.cat([skip, up], dim=1))


class UNet(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 2, base: int = 16, depth: int = 4) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        widths = [base * 2 ** i for i in range(depth + 1)]  # 16, 32, 64, 128, 256
        self.inc = DoubleConv(in_channels, widths[0])
        self.downs = nn.ModuleList(Down(widths[i], widths[i + 1]) for i in range(depth))
        # Decoder from the bottleneck outwards; the last (full-resolution) stage
        # uses align_corners=True.
        self.ups = nn.ModuleList(
            Up(widths[i + 1], widths[i], widths[i], align_corners=(i == 0))
            for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inc(x)
        skips = []
        for down in self.downs:  # a fixed-length ModuleList: fx unrolls the loop
            skips.append(x)
            x = down(x)
        for up in self.ups:
            x = up(x, skips.pop())
        return self.head(x)


def unet_small(num_classes: int = 2) -> nn.Module:
    """U-Net, base width 16, depth 4, bilinear upsampling, ``num_classes`` output maps.

    Input ``B x 3 x H x W`` with H and W multiples of 16; output
    ``B x num_classes x H x W`` (2 x 128 x 128 at the zoo's default input).
    1,964,114 parameters at 2 classes.
    """
    return UNet(num_classes=num_classes)
