"""The analytic cost model: FLOPs ÷ sustained rate, per-kind efficiency, fixed overheads.

``time = layer_overhead + (flops / efficiency[kind] + elements × ops[kind]) / (gflops × (1 − cpu_load))``

Convolutions run near the device's sustained rate; fully-connected layers at
batch 1 are bound by reading their weights, so they get a low efficiency;
layers torch counts no FLOPs for (activations, pooling, batch-norm, concat)
still touch every output element, a few operations each.  A device's
background ``cpu_load`` leaves ``1 − cpu_load`` of it for us (OfpCNN's
observation that latency scales with the load).

Example::

    >>> from edgeslice.cluster import Device
    >>> from edgeslice.graph import trace
    >>> g, _ = trace("alexnet", (3, 96, 96))
    >>> t = AnalyticCost().layer_time(g.layers[0], 1.0, Device("pi", gflops=8), 1)
    >>> 0 < t < 1
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgeslice.cluster.model import Device
from edgeslice.cost.base import CostModel
from edgeslice.graph.layer import Layer

DEFAULT_EFFICIENCY = {"conv": 1.0, "linear": 0.35}
# operations per output element for layers torch counts no FLOPs for
DEFAULT_ELEMENT_OPS = {
    "act": 1.0, "batchnorm": 2.0, "binary": 1.0, "cat": 0.5, "identity": 0.0, "flatten": 0.0,
    "pixel_unshuffle": 0.5, "adaptive_avgpool": 1.0, "adaptive_maxpool": 1.0,
}


@dataclass
class AnalyticCost(CostModel):
    efficiency: dict = field(default_factory=lambda: dict(DEFAULT_EFFICIENCY))
    element_ops: dict = field(default_factory=lambda: dict(DEFAULT_ELEMENT_OPS))
    layer_overhead_s: float = 2e-5
    task_overhead_s: float = 2e-4

    def __hash__(self):
        return id(self)

    def layer_time(self, layer: Layer, fraction: float, device: Device, batch: int) -> float:
        elements = batch * fraction
        for n in layer.out_shape:
            elements *= n
        if layer.kind in ("maxpool", "avgpool"):
            ops = layer.geometry.kernel[0] * layer.geometry.kernel[1]
        else:
            ops = self.element_ops.get(layer.kind, 1.0)
        work = layer.flops * fraction / self.efficiency.get(layer.kind, 1.0) + elements * ops
        rate = device.gflops * 1e9 * max(1e-3, 1.0 - device.cpu_load)
        return self.layer_overhead_s + work / rate
