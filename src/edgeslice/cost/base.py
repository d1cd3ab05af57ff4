"""Cost models: how long a piece of work takes on a device, and bytes over a link.

A cost is a value (seconds) and every cost model answers the same three
questions, so planners, the simulator and benchmarks can swap them
(DESIGN.md style rule 6):

- :meth:`CostModel.layer_time` — computing a *fraction* of one layer's output
  (a tile, a channel range, a partial sum) on a device;
- :meth:`CostModel.task_time` — a compute task: its steps plus a fixed per-task
  overhead (dispatch, assembling inputs);
The device's background CPU load is an *input* of every answer: each call reads
the ``cpu_load`` of the device it is given, so a caller asks about another load
by passing the device with it (:meth:`Cluster.at` for a load schedule's value at
a time — what the simulator does per task — :meth:`Cluster.with_loads` for
measured figures).  The analytic model divides by ``1 − load``; FCPM
(:mod:`edgeslice.cost.learned`) has learned what the load does.

- :meth:`CostModel.transfer_time` — a transfer: serialisation time at the
  link's bandwidth (following the cluster's bandwidth trace from the start
  time) and the link's latency.
"""

from __future__ import annotations

from edgeslice.cluster.model import LOAD_PROFILE_FORMAT, Cluster, Device, Link, Profile
from edgeslice.graph.cache import AnalysisCache
from edgeslice.graph.layer import Layer, LayerGraph
from edgeslice.program.regions import volume


def step_fraction(layer: Layer, region, inputs) -> float:
    """Share of ``layer``'s work a step computing ``region`` (and input range ``inputs``) does."""
    total = 1
    for n in layer.out_shape:
        total *= n
    f = volume(region) / total
    if inputs is not None:
        f *= (inputs[1] - inputs[0]) / layer.in_shapes[0][0]
    return f


def reduce_elements(need, batch: int) -> int:
    """Additions a partial-sum need takes: one per element of each piece after the first."""
    return (len(need.pieces) - 1) * volume(need.region) * batch if need.reduce else 0


class CostModel:
    """Base class: subclasses implement :meth:`layer_time`; the rest derives from it."""

    task_overhead_s: float = 2e-4

    def layer_time(self, layer: Layer, fraction: float, device: Device, batch: int) -> float:
        raise NotImplementedError

    def steps_time(self, graph: LayerGraph, steps, device: Device) -> float:
        # this model's own bounded cache (not the graph's): its times go when the model goes. Keyed on the
        # objects (not id()): a same-named device with another speed must never read an old entry
        per_graph = self.__dict__.setdefault("_times", {})
        held = per_graph.get(id(graph))
        if held is None or held[0] is not graph:  # the graph is held too, so its id is never reused
            held = per_graph[id(graph)] = (graph, AnalysisCache())
        cache = held[1]
        key = (device, steps)
        t = cache.get(key)
        if t is None:
            t = sum(self.layer_time(graph.layer(s.layer), step_fraction(graph.layer(s.layer), s.region, s.inputs),
                                    device, graph.batch) for s in steps)
            cache[key] = t
        return t

    def task_time(self, graph: LayerGraph, task, device: Device) -> float:
        """Its steps, the per-task overhead, and adding up the partial sums it reads (:meth:`reduce_time`)."""
        t = self.task_overhead_s + self.steps_time(graph, task.steps, device)
        for need in getattr(task, "needs", ()):
            if need.reduce:
                t += self.reduce_time(reduce_elements(need, graph.batch), device)
        return t

    def reduce_time(self, elements: int, device: Device) -> float:
        """Adding ``elements`` numbers into a sum (an input-partitioned Linear layer's partial sums):
        one operation each at the device's rate."""
        if not elements:
            return 0.0
        return elements / (device.gflops * 1e9 * max(1e-3, 1.0 - device.cpu_load))

    @staticmethod
    def transfer_time(nbytes: int, link: Link, start: float = 0.0, trace: tuple[tuple[float, float], ...] = ()) -> tuple[float, float]:
        """``(serialisation_s, latency_s)`` of sending ``nbytes`` over ``link`` from time ``start``."""
        rate = link.bandwidth_mbps * 1e6 / 8.0  # bytes per second
        latency = link.latency_ms / 1e3
        if not trace:
            return nbytes / rate, latency
        # piecewise-constant factor: the last step at or before t applies (1.0 before the first)
        points = sorted(trace)
        i = 0
        while i < len(points) and points[i][0] <= start:
            i += 1
        factor = points[i - 1][1] if i else 1.0
        t, left = start, float(nbytes)
        while True:
            nxt = points[i][0] if i < len(points) else float("inf")
            can = (nxt - t) * rate * factor
            if can >= left:
                return t + left / (rate * factor) - start, latency
            left -= can
            t, factor = nxt, points[i][1]
            i += 1


class ClusterCost:
    """Per-device dispatch: a device with a profile uses it (its content, else its file), the others the analytic model."""

    def __init__(self, cluster: Cluster, analytic: CostModel | None = None):
        from edgeslice.cost.analytic import AnalyticCost
        from edgeslice.cost.profiled import ProfiledCost

        self.cluster = cluster
        self.analytic = analytic or AnalyticCost()
        self.task_overhead_s = self.analytic.task_overhead_s
        self._by_device: dict[str, CostModel] = {}
        profiles: dict[str, CostModel] = {}
        for d in cluster.devices:
            if d.profile_data is None and not d.profile:
                self._by_device[d.name] = self.analytic
                continue
            # the content the cluster carries (loaded YAML, a plan's cluster), else a Device built in code with a path
            prof = d.profile_data if d.profile_data is not None else Profile.read(d.profile)
            key = "sha256:" + prof.digest
            if key not in profiles:
                data = prof.data()
                if data.get("format") == LOAD_PROFILE_FORMAT:  # measured under load: FCPM predicts
                    from edgeslice.cost.learned.fcpm import FCPMCost

                    profiles[key] = FCPMCost(data, prof.digest, self.analytic, where=d.profile or "profile")
                else:
                    profiles[key] = ProfiledCost(data, self.analytic, where=d.profile or "profile")
            self._by_device[d.name] = profiles[key]

    def model_for(self, device: Device) -> CostModel:
        return self._by_device.get(device.name, self.analytic)

    def layer_time(self, layer: Layer, fraction: float, device: Device, batch: int) -> float:
        return self.model_for(device).layer_time(layer, fraction, device, batch)

    def steps_time(self, graph: LayerGraph, steps, device: Device) -> float:
        return self.model_for(device).steps_time(graph, steps, device)

    def task_time(self, graph: LayerGraph, task, device: Device) -> float:
        return self.model_for(device).task_time(graph, task, device)

    def reduce_time(self, elements: int, device: Device) -> float:
        return self.model_for(device).reduce_time(elements, device)

    def transfer(self, nbytes: int, src: str, dst: str, start: float = 0.0) -> tuple[float, float]:
        return CostModel.transfer_time(nbytes, self.cluster.link(src, dst), start, self.cluster.bandwidth_trace)
