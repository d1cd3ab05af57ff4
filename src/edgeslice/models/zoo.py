"""Reference model zoo: the classic CNNs that edgeslice partitions.

torchvision cannot be imported in this environment (it breaks beside the
CPU build of torch), so edgeslice carries its own clean re-implementations
of the architectures it benchmarks against.  Every model here is written
with plain ``torch.nn`` and matches torchvision's layer order,
hyper-parameters and parameter counts exactly (the detectors, which
torchvision does not ship, follow Darknet's ``yolov2-voc.cfg`` and
``yolov3-tiny.cfg`` layouts; the small U-Net follows Ronneberger et al.'s
layout at a quarter of the width).

The models are written to be friendly to ``torch.fx.symbolic_trace`` and to
the layer-graph partitioner built on top of it:

* no data-dependent control flow.  The older models also avoid ``x.size()``
  / ``x.shape`` (flattening is ``torch.flatten(x, 1)``); ShuffleNetV2,
  YOLOv3-tiny and the U-Net are deliberately written the way such models are
  written in the wild -- ``x.size()`` arithmetic, a view/transpose channel
  shuffle, ``x.chunk``, ``x.view(x.size(0), -1)``, ``nn.Upsample`` and
  ``F.interpolate`` -- so that the tracer is exercised on them;
* every layer is its own module and no module instance is called twice in a
  forward pass (torchvision's ResNet blocks reuse one ``self.relu``; here
  each use has its own ``nn.ReLU``);
* no in-place activations;
* residual additions are written ``out + identity`` and concatenations
  ``torch.cat([...], 1)``.

No pretrained weights are shipped and nothing is downloaded.  ``ZOO`` maps a
short name to a :class:`ZooEntry` holding the factory and the default input
shape.  The architectures live one family per module: :mod:`.classic` (VGG-16,
AlexNet, NiN), :mod:`.resnet`, :mod:`.mobilenet`, :mod:`.shufflenet` (ShuffleNetV2),
:mod:`.googlenet`, :mod:`.yolo` (YOLOv2, YOLOv3-tiny), :mod:`.unet` (small
U-Net), and :mod:`.decoupled` (DeCNN's decoupled ResNets and VGG: group
convolutions and channel shuffles, built from the wide originals by one
function, with ``groups`` chosen in the spec, ``resnet50_decoupled:g=2``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from edgeslice.models.classic import alexnet, nin, vgg16
from edgeslice.models.decoupled import (
    resnet18_decoupled,
    resnet50_decoupled,
    resnet50_decoupled_x175,
    vgg16_bn_decoupled,
)
from edgeslice.models.googlenet import googlenet
from edgeslice.models.mobilenet import mobilenet_v2
from edgeslice.models.resnet import resnet18, resnet32, resnet50
from edgeslice.models.shufflenet import shufflenet_v2
from edgeslice.models.unet import unet_small
from edgeslice.models.yolo import yolov2, yolov3_tiny

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
    "shufflenet_v2",
    "yolov3_tiny",
    "unet_small",
    "resnet50_decoupled",
    "resnet50_decoupled_x175",
    "resnet18_decoupled",
    "vgg16_bn_decoupled",
    "resnet32",
    "nin",
]


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ZooEntry:
    """A named reference model: factory, default input shape (C, H, W), one-line description.

    ``side`` is what height and width must be a multiple of (YOLOv2's passthrough reorganises 2x2 blocks
    of a stride-16 map, and YOLOv3-tiny upsamples a stride-32 map to meet a stride-16 one, so their sides
    are multiples of 32; the U-Net's four x2 upsamplings must meet its skips, so 16);
    :func:`check_input` says so before tracing.
    """

    name: str
    factory: Callable[[], nn.Module]
    input_shape: tuple[int, int, int]
    description: str
    side: int = 1


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
                 "YOLOv2 VOC (Redmon & Farhadi 2016), Darknet-19 + passthrough detector", side=32),
        ZooEntry("googlenet", googlenet, (3, 224, 224),
                 "GoogLeNet (Szegedy et al. 2014), 9 Inception modules, no aux heads"),
        ZooEntry("shufflenet_v2", shufflenet_v2, (3, 224, 224),
                 "ShuffleNetV2 x1.0 (Ma et al. 2018), channel split, chunk and view/transpose shuffle"),
        ZooEntry("yolov3_tiny", yolov3_tiny, (3, 416, 416),
                 "YOLOv3-tiny COCO (Redmon & Farhadi 2018), upsample + route, two heads flattened into one",
                 side=32),
        ZooEntry("unet_small", unet_small, (3, 128, 128),
                 "U-Net (Ronneberger et al. 2015), width 16, depth 4, bilinear upsampling and skip concats",
                 side=16),
        ZooEntry("resnet50_decoupled", resnet50_decoupled, (3, 224, 224),
                 "DeCNN ResNet-50 x1.5 (Du et al. 2021), bottleneck convs in g groups (default 4), 3 shuffles"),
        ZooEntry("resnet50_decoupled_x175", resnet50_decoupled_x175, (3, 224, 224),
                 "DeCNN ResNet-50 x1.75 (Du et al. 2021), bottleneck convs in g groups (default 4), 3 shuffles"),
        ZooEntry("resnet18_decoupled", resnet18_decoupled, (3, 224, 224),
                 "DeCNN-style ResNet-18 x1.5, BasicBlock convs in g groups (default 4), 3 channel shuffles"),
        ZooEntry("vgg16_bn_decoupled", vgg16_bn_decoupled, (3, 224, 224),
                 "DeCNN VGG-16-BN x1.75 (Du et al. 2021), 3x3 convs in g groups (default 4), 2 channel shuffles"),
        ZooEntry("resnet32", resnet32, (3, 32, 32),
                 "ResNet-32 for CIFAR (He et al. 2015), 3 stages of 5 BasicBlocks, 16-32-64 channels"),
        ZooEntry("nin", nin, (3, 224, 224),
                 "Network in Network (Lin et al. 2014), 4 mlpconv blocks, global average pooling, no FC"),
    )
}


def check_input(name: str, input_shape) -> None:
    """Refuse, naming the rule and a size that works, an input a zoo model cannot take.

    >>> check_input("yolov2", (3, 400, 400))
    Traceback (most recent call last):
    ...
    edgeslice.errors.TraceError: model 'yolov2' needs height and width that are multiples of 32, got 400x400; try --input 3x416x416
    """
    base, _, rest = name.partition(":")
    e = ZOO.get(base if "=" in rest else name)  # a zoo model with parameters: 'yolov2:num_classes=80'
    if e is None or e.side == 1 or len(input_shape) != 3:
        return
    c, h, w = input_shape
    if h % e.side or w % e.side:
        from edgeslice.errors import TraceError

        up = [max(e.side, -(-v // e.side) * e.side) for v in (h, w)]
        raise TraceError(f"model {name!r} needs height and width that are multiples of {e.side}, got {h}x{w}; "
                         f"try --input {c}x{up[0]}x{up[1]}")
