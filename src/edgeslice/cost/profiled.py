"""The profiled cost model: per-layer times measured on a real machine.

``edgeslice profile --model M -o profile.json`` runs every layer of the model
on the machine it runs on, with the same kernels the executor uses, at several
output fractions (row strips of a feature map, ranges of features) — the tile
sizes planners produce — and fits ``time = a + b × fraction`` per layer by
least squares.  A device in a cluster file says ``profile: file.json`` (and
optionally ``scale``: a multiplier on the measured times, e.g. 3.0 for a device
three times slower than the profiled machine).

For a layer the profile does not know (another model), the model falls back
to the analytic one at the profile's effective rate (measured FLOPs per
second), so one profile still calibrates any model.
"""

from __future__ import annotations

import platform
import statistics
import time
from dataclasses import replace
from math import ceil

from edgeslice.cluster.model import PROFILE_FORMAT, Device, Profile
from edgeslice.cost.base import CostModel
from edgeslice.graph.layer import Layer

__all__ = ["PROFILE_FORMAT", "ProfiledCost", "measure"]

FRACTIONS = (1.0, 0.5, 0.25, 0.125, 0.0625)


class ProfiledCost(CostModel):
    def __init__(self, data: dict, fallback: CostModel, where: str = "profile"):
        self.where = where
        self.fallback = fallback
        self.task_overhead_s = fallback.task_overhead_s
        self.batch = data["batch"]
        self.fits = {name: tuple(v["fit"]) for name, v in data["layers"].items()}
        self.kinds = {name: (v["kind"], v["flops"]) for name, v in data["layers"].items()}
        self.effective_gflops = float(data["effective_gflops"])

    @classmethod
    def load(cls, path: str, fallback: CostModel) -> "ProfiledCost":
        """Read and validate the profile file at ``path`` (a :class:`ClusterError` naming it if it is not one)."""
        return cls(Profile.read(path).data(), fallback, where=path)

    def __hash__(self):
        return id(self)

    def layer_time(self, layer: Layer, fraction: float, device: Device, batch: int) -> float:
        fit = self.fits.get(layer.name)
        if fit is not None and batch == self.batch and self.kinds[layer.name] == (layer.kind, layer.flops):
            a, b = fit
            t = max(0.0, a + b * fraction)
        else:
            t = self.fallback.layer_time(layer, fraction, replace(device, gflops=self.effective_gflops, cpu_load=0.0), batch)
        return t * device.scale


def layer_features(layer: Layer) -> dict:
    """What a learned predictor may use of a layer besides its FLOPs (see :mod:`edgeslice.cost.learned`)."""
    g = layer.geometry
    in_el = sum(_prod(s) for s in layer.in_shapes)
    return {"in_elems": in_el, "out_elems": _prod(layer.out_shape), "param_bytes": layer.param_bytes,
            "kernel": g.kernel[0] * g.kernel[1] if g else 1, "groups": g.groups if g else 1,
            "cin": layer.in_shapes[0][0] if layer.in_shapes and layer.in_shapes[0] else 0,
            "cout": layer.out_shape[0] if layer.out_shape else 0}


def _prod(shape) -> int:
    n = 1
    for v in shape:
        n *= v
    return n


def _whole_time(gm, graph, batch: int, repeat: int, min_time_s: float, gen) -> float:
    """Seconds of one forward pass of the whole (unpartitioned) model: what whole-model accuracy is judged on."""
    import torch

    x = torch.randn((batch, *graph.input_shape), generator=gen)
    with torch.no_grad():
        gm(x)  # warm-up
        times = []
        k, t0 = 0, time.perf_counter()
        while k < max(1, repeat) or time.perf_counter() - t0 < min_time_s:
            t1 = time.perf_counter()
            gm(x)
            times.append(time.perf_counter() - t1)
            k += 1
    return statistics.median(times)


def measure(spec: str, input_shape, batch: int = 1, *, repeat: int = 3, threads: int = 1,
            fractions=FRACTIONS, progress=None, min_time_s: float = 0.0) -> dict:
    """Measure every layer of model ``spec`` at several output fractions; return the profile dict.

    Each (layer, fraction) is the median of ``repeat`` runs.  With ``min_time_s`` > 0 it is instead the
    *mean* over back-to-back runs lasting at least that long: under a CPU quota (the testbed's cgroups)
    a short run may or may not be throttled, and only the mean over several quota periods gives the
    rate a device sustains when it computes tile after tile.
    """
    import numpy as np
    import torch

    from edgeslice.execute.kernels import Kernels, step_inputs
    from edgeslice.graph.trace import trace
    from edgeslice.program.program import Step

    from edgeslice.testbed.procs import join_deferred_cgroups

    torch.set_num_threads(threads)
    graph, gm = trace(spec, input_shape, batch)
    join_deferred_cgroups(f"profiling {spec}")  # on the testbed (deferred): imports and tracing ran at full speed
    kernels = Kernels(graph, gm)
    gen = torch.Generator().manual_seed(0)
    layers, total_t, total_f = {}, 0.0, 0
    for idx, layer in enumerate(graph.layers):
        samples = []
        seen = set()
        for f in fractions:
            if len(layer.out_shape) == 3:
                c, h, w = layer.out_shape
                rows = max(1, ceil(f * h))
                region = ((0, c), (0, rows), (0, w))
                actual = rows / h
            else:
                n = layer.out_shape[0]
                k = max(1, ceil(f * n))
                region = ((0, k),) + tuple((0, m) for m in layer.out_shape[1:])
                actual = k / n
            if region in seen:
                continue
            seen.add(region)
            step = Step(layer.name, region)
            tiles = [None if r is None else torch.randn((batch, *[hi - lo for lo, hi in r]), generator=gen)
                     for r in step_inputs(layer, step)]
            times = []
            with torch.no_grad():
                kernels.run(layer, step, tiles)  # warm-up
                if min_time_s > 0:
                    k, t0 = 0, time.perf_counter()
                    while k < repeat or time.perf_counter() - t0 < min_time_s:
                        kernels.run(layer, step, tiles)
                        k += 1
                    times.append((time.perf_counter() - t0) / k)
                else:
                    for _ in range(repeat):
                        t0 = time.perf_counter()
                        kernels.run(layer, step, tiles)
                        times.append(time.perf_counter() - t0)
            samples.append((actual, statistics.median(times)))
        xs, ys = np.array([s[0] for s in samples]), np.array([s[1] for s in samples])
        if len(samples) >= 2:
            b, a = np.polyfit(xs, ys, 1)
        else:
            a, b = 0.0, float(ys[0])
        layers[layer.name] = {"kind": layer.kind, "flops": layer.flops, "samples": [list(s) for s in samples],
                              "fit": [float(a), float(b)], **layer_features(layer)}
        full = [t for fr, t in samples if fr == 1.0][0]
        total_t += full
        total_f += layer.flops
        if progress:
            progress(idx + 1, len(graph.layers), layer.name)
    whole = _whole_time(gm, graph, batch, repeat, min_time_s, gen)
    return {
        "format": PROFILE_FORMAT, "version": 1, "model": spec, "whole_s": whole, "input": list(graph.input_shape), "batch": batch,
        "fingerprint": graph.fingerprint, "host": platform.node(), "machine": platform.machine(),
        "threads": threads, "repeat": repeat, "min_time_s": min_time_s, "total_s": total_t,
        "effective_gflops": total_f / total_t / 1e9 if total_t > 0 else 1.0, "layers": layers,
    }
