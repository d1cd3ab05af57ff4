"""The simulator: a deterministic discrete-event model of a Program on a cluster.

Resources are the devices (compute tasks) and the links (transfers): each
carries one task at a time.  A link is one direction of a device pair
(``"a->b"``); with ``cluster.medium == "shared"`` every transfer shares one
channel (``"medium"``), as in a Wi-Fi cell.  A transfer holds its link for its
serialisation time (bytes ÷ bandwidth, following the bandwidth trace) and
arrives one link latency later.  Input and output tasks take no resource (adding up the
output's partial sums, where the last Linear layer is input-partitioned, delays its finish).

Policy (the runtime follows the same): a device runs its compute tasks in
(request, Program order) — all of request r's before any of request r+1's,
waiting rather than skipping ahead when the next one is not ready.  A
transfer is sent as soon as its data exists; a link carries one at a time, the
earliest request's first (in Program order within a request).  Different
devices work on different requests at once: that is pipelining across
requests.  Events are ordered by (time, priority, sequence) and
resources are dispatched only after every event of an instant is processed,
so the timeline is a function of its inputs — tests assert it exactly.

Example::

    >>> from edgeslice.cluster import Cluster
    >>> from edgeslice.cost import ClusterCost
    >>> from edgeslice.graph import trace
    >>> from edgeslice.planners import make_plan
    >>> from edgeslice.program import lower
    >>> g, _ = trace("alexnet", (3, 96, 96))
    >>> c = Cluster.uniform(2)
    >>> tl = simulate(lower(make_plan("random", g, c, seed=1), g), g, c, ClusterCost(c))
    >>> tl.latency_s > 0
    True
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field, replace
from statistics import median
from typing import NamedTuple

from edgeslice.cluster.model import Cluster
from edgeslice.graph.layer import LayerGraph
from edgeslice.program.program import ComputeTask, InputTask, OutputTask, Program, TransferTask

_FREE, _DONE, _ARRIVE = 0, 1, 2  # event priorities within one instant


class Event(NamedTuple):
    """One task of one request on one resource: it held the resource over [start, busy_end) and finished at end."""

    request: int
    task: str
    kind: str  # "compute" | "transfer"
    resource: str
    start: float
    busy_end: float
    end: float
    segment: int
    nbytes: int = 0
    flops: int = 0


@dataclass(frozen=True)
class Timeline:
    """A simulated (or measured) run: every event, and when each request arrived and finished."""

    devices: tuple[str, ...]
    arrivals: tuple[float, ...]
    finishes: tuple[float, ...]
    events: tuple[Event, ...]
    links: tuple[str, ...] = field(default=())

    @property
    def latencies(self) -> tuple[float, ...]:
        return tuple(f - a for a, f in zip(self.arrivals, self.finishes))

    @property
    def latency_s(self) -> float:
        """Latency of the request (median over requests when there are several)."""
        return median(self.latencies)

    @property
    def makespan_s(self) -> float:
        return max(self.finishes) - min(self.arrivals)

    def busy(self, resource: str) -> float:
        return sum(e.busy_end - e.start for e in self.events if e.resource == resource)

    def bytes_on(self, resource: str) -> int:
        return sum(e.nbytes for e in self.events if e.resource == resource)

    @property
    def bytes_total(self) -> int:
        return sum(e.nbytes for e in self.events if e.kind == "transfer")

    def summary(self) -> dict:
        span = self.makespan_s
        per_device = {d: {"busy_s": self.busy(d), "idle_s": span - self.busy(d)} for d in self.devices}
        per_link = {l: {"busy_s": self.busy(l), "bytes": self.bytes_on(l)} for l in self.links}
        return {
            "latency_s": self.latency_s,
            "latencies_s": list(self.latencies),
            "makespan_s": span,
            "throughput_rps": len(self.arrivals) / span if span > 0 else float("inf"),
            "per_device": per_device,
            "per_link": per_link,
            "bytes_total": self.bytes_total,
        }


def _output_time(t: OutputTask, graph: LayerGraph, devices: dict, cost) -> float:
    """The sink adding up the model output's partial sums (an input-partitioned last Linear layer), else 0."""
    if not t.need.reduce:
        return 0.0
    from edgeslice.cost.base import reduce_elements

    return cost.reduce_time(reduce_elements(t.need, graph.batch), devices[t.device])


def _at(device, t: float):
    """``device`` with the load its schedule gives at time ``t`` (a compute task's cost follows the load it starts under)."""
    load = device.load_at(t)
    return device if load == device.cpu_load else replace(device, cpu_load=load)


def _resource(t, cluster: Cluster) -> str | None:
    if isinstance(t, ComputeTask):
        return t.device
    if isinstance(t, TransferTask):
        return "medium" if cluster.medium == "shared" else f"{t.src}->{t.dst}"
    return None


def simulate(program: Program, graph: LayerGraph, cluster: Cluster, cost, *, arrivals: tuple[float, ...] = (0.0,),
             events: bool = True, overlap: bool = False, window: int | None = None) -> Timeline:
    """Simulate ``program`` for requests arriving at ``arrivals`` (seconds); return the Timeline.

    One request takes :func:`_simulate_one` (list scheduling, no event queue);
    several take the discrete-event loop.  Both give the same timeline for one
    request (tested).  With ``overlap`` (note *overlap*, DeCNN's inter-sample
    overlap; :mod:`edgeslice.runtime.serve` runs the same policy) a device whose
    earliest request's next compute is not ready runs the next compute of the
    earliest later request that is, instead of waiting; one request is unchanged.
    With ``window`` (``run --inflight``) request ``r`` arrives no earlier than
    the finish of request ``r - window``: at most ``window`` in the system, as
    the runtime's source admits them; the Timeline's arrivals are the actual ones.
    """
    if len(arrivals) == 1:
        return _simulate_one(program, graph, cluster, cost, arrivals[0], events)
    return _simulate_des(program, graph, cluster, cost, arrivals, overlap, window)


def _simulate_one(program: Program, graph: LayerGraph, cluster: Cluster, cost, arrival: float, with_events: bool) -> Timeline:
    """One request: each task starts at max(its inputs ready, its resource free), in Program order.

    With in-order resources and one request this is exactly what the event
    loop computes, at a fraction of the cost (planners call it thousands of times).
    """
    devices = {d.name: d for d in cluster.devices}
    shared = cluster.medium == "shared"
    ready: dict[str, float] = {}
    free: dict[str, float] = {}
    events: list[Event] = []
    seg_of: dict[str, int] = {}
    finish = None
    for t in program.tasks:
        tt = type(t)
        if tt is ComputeTask:
            dev = devices.get(t.device)
            if dev is None:
                from edgeslice.errors import ClusterError

                raise ClusterError(f"task {t.id} runs on {t.device!r}, which is not a device of cluster {cluster.name!r}")
            start = free.get(t.device, arrival)
            for need in t.needs:
                for p in need.pieces:
                    r = ready.get(p.task)
                    if r is None:
                        from edgeslice.errors import LoweringError

                        raise LoweringError(f"task {t.id} reads from {p.task}, which does not come before it in the Program")
                    if r > start:
                        start = r
            end = start + cost.task_time(graph, t, dev if not dev.load_schedule else _at(dev, start))
            free[t.device] = ready[t.id] = end
            seg_of[t.id] = t.segment
            if with_events:
                events.append(Event(0, t.id, "compute", t.device, start, end, end, t.segment, 0, t.flops))
        elif tt is TransferTask:
            res = "medium" if shared else f"{t.src}->{t.dst}"
            start = ready[t.source]
            f = free.get(res, arrival)
            if f > start:
                start = f
            ser, lat = cost.transfer(t.nbytes, t.src, t.dst, start)
            free[res] = start + ser
            ready[t.id] = start + ser + lat
            if with_events:
                events.append(Event(0, t.id, "transfer", res, start, start + ser, start + ser + lat,
                                    seg_of.get(t.source, -1), t.nbytes, 0))
        elif tt is InputTask:
            ready[t.id] = arrival
        else:
            finish = max((ready[p.task] for p in t.need.pieces), default=arrival) + _output_time(t, graph, devices, cost)
    links = tuple(sorted(r for r in free if r not in devices))
    if with_events:
        events.sort(key=lambda e: (e.start, e.resource, e.request, e.task))
    return Timeline(tuple(devices), (arrival,), (finish,), tuple(events), links)


def _simulate_des(program: Program, graph: LayerGraph, cluster: Cluster, cost, arrivals: tuple[float, ...],
                  overlap: bool = False, window: int | None = None) -> Timeline:
    """Several requests: the discrete-event loop (see the module docstring for the policy)."""
    tasks = program.tasks
    n = len(tasks)
    index = {t.id: i for i, t in enumerate(tasks)}
    devices = {d.name: d for d in cluster.devices}
    deps: list[list[int]] = [[] for _ in range(n)]
    for i, t in enumerate(tasks):
        if isinstance(t, ComputeTask):
            deps[i] = sorted({index[p.task] for need in t.needs for p in need.pieces})
        elif isinstance(t, TransferTask):
            deps[i] = [index[t.source]]
        elif isinstance(t, OutputTask):
            deps[i] = sorted({index[p.task] for p in t.need.pieces})
    users: list[list[int]] = [[] for _ in range(n)]
    for i, ds in enumerate(deps):
        for d in ds:
            users[d].append(i)
    res_of = [_resource(t, cluster) for t in tasks]
    queue: dict[str, list[int]] = {}
    for i, r in enumerate(res_of):
        if r is not None:
            queue.setdefault(r, []).append(i)
    seg_of = {}
    for i, t in enumerate(tasks):
        if isinstance(t, ComputeTask):
            seg_of[i] = t.segment
        elif isinstance(t, TransferTask):
            src = tasks[index[t.source]]
            seg_of[i] = src.segment if isinstance(src, ComputeTask) else -1
    durations = {}
    for i, t in enumerate(tasks):
        if isinstance(t, ComputeTask):
            if t.device not in devices:
                from edgeslice.errors import ClusterError

                raise ClusterError(f"task {t.id} runs on {t.device!r}, which is not a device of cluster {cluster.name!r}")
            durations[i] = cost.task_time(graph, t, devices[t.device])

    out_time = {i: _output_time(t, graph, devices, cost) for i, t in enumerate(tasks) if isinstance(t, OutputTask)}
    nreq = len(arrivals)
    remaining = [[len(deps[i]) for i in range(n)] for _ in range(nreq)]
    done = [[None] * n for _ in range(nreq)]
    cursor = {r: [0] * nreq for r in queue}
    busy = {r: False for r in queue}
    finishes = [None] * nreq
    events: list[Event] = []
    heap: list = []
    seq = 0

    def push(t, prio, kind, req, i):
        nonlocal seq
        heapq.heappush(heap, (t, prio, seq, kind, req, i))
        seq += 1

    given = tuple(arrivals)
    arrivals = list(given)
    for req, a in enumerate(given):
        if window is None or req < window:
            push(a, _ARRIVE, "arrive", req, -1)
        else:
            arrivals[req] = float("inf")  # set when request req - window finishes

    dirty: set[str] = set()

    def complete(req: int, i: int, t: float):
        done[req][i] = t
        if isinstance(tasks[i], OutputTask):
            finishes[req] = t
            nxt = req + (window or nreq)
            if window is not None and nxt < nreq:
                arrivals[nxt] = max(given[nxt], t)
                push(arrivals[nxt], _ARRIVE, "arrive", nxt, -1)
        for u in users[i]:
            remaining[req][u] -= 1
            if remaining[req][u] == 0:
                if res_of[u] is None:  # output task: no resource (the sink adds partial sums, if any)
                    complete(req, u, t + out_time.get(u, 0.0))
                else:
                    dirty.add(res_of[u])

    def dispatch(res: str, now: float):
        if busy[res]:
            return
        q = queue[res]
        for req in range(nreq):
            c = cursor[res][req]
            if c >= len(q):
                continue  # this request is through this resource: the next request may go
            if now < arrivals[req]:
                return  # the next request has not arrived yet
            if remaining[req][q[c]] == 0 and done[req][q[c]] is None:
                i = q[c]
                cursor[res][req] = c + 1
                busy[res] = True
                t = tasks[i]
                if isinstance(t, ComputeTask):
                    d = devices[tasks[i].device]
                    end = now + (durations[i] if not d.load_schedule else
                                 cost.task_time(graph, tasks[i], _at(d, now)))
                    events.append(Event(req, t.id, "compute", res, now, end, end, seg_of[i], 0, t.flops))
                    push(end, _FREE, "free", req, i)
                    push(end, _DONE, "done", req, i)
                else:
                    ser, lat = cost.transfer(t.nbytes, t.src, t.dst, now)
                    events.append(Event(req, t.id, "transfer", res, now, now + ser, now + ser + lat, seg_of[i], t.nbytes, 0))
                    push(now + ser, _FREE, "free", req, i)
                    push(now + ser + lat, _DONE, "done", req, i)
                return
            if res in devices and not overlap:
                return  # devices are strict FIFO: wait for this request's next compute

    while heap:
        now = heap[0][0]
        while heap and heap[0][0] == now:
            _, _, _, kind, req, i = heapq.heappop(heap)
            if kind == "arrive":
                for j, t in enumerate(tasks):
                    if isinstance(t, InputTask):
                        complete(req, j, now)
            elif kind == "free":
                busy[res_of[i]] = False
                dirty.add(res_of[i])
            else:
                complete(req, i, now)
        for res in sorted(dirty):
            dispatch(res, now)
        dirty.clear()

    if any(f is None for f in finishes):
        from edgeslice.errors import LoweringError

        stuck = [tasks[i].id for i in range(n) if done[0][i] is None][:5]
        raise LoweringError(f"the program deadlocks: tasks {', '.join(stuck)} never become ready")
    links = tuple(sorted(r for r in queue if r not in devices))
    events.sort(key=lambda e: (e.start, e.resource, e.request, e.task))
    return Timeline(tuple(d.name for d in cluster.devices), tuple(arrivals), tuple(finishes), tuple(events), links)
