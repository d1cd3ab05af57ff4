"""Timelines as Chrome trace-event JSON, to open in Perfetto or chrome://tracing.

A PNG or HTML Gantt (:mod:`edgeslice.viz.gantt`) shows a run at a glance; a
trace file lets people zoom, search, select and follow a tensor from the
device that produced it to the one that uses it, in viewers they already
know (ui.perfetto.dev, chrome://tracing).  The format is the JSON object
form of the trace-event format: ``{"traceEvents": [...], "displayTimeUnit": "ms"}``.

Layout:

- one process per timeline (``"measured"``, ``"predicted"``, ...), so two runs
  sit one above the other on one time axis;
- one thread per device, then one per link the timeline uses; a resource whose
  slices overlap without nesting (a measured link with several transfers in
  flight) gets extra rows ``"a->b #2"``, because viewers expect one thread's
  slices to nest;
- every compute and transfer is a complete event (``"ph": "X"``; ``ts`` and
  ``dur`` in microseconds) over the time it held its resource; a transfer's
  arrival (one link latency later) is in its ``args``;
- a flow arrow per transfer, from its slice on the link to the compute that
  uses it (with the Program; both ends bound to the middle of their slices)
  or else to the destination device at the arrival (binding to the next slice
  that starts there);
- request arrivals and finishes as instant events.

Example::

    >>> from edgeslice.sim.simulate import Event, Timeline
    >>> tl = Timeline(("d0", "d1"), (0.0,), (0.003,), (
    ...     Event(0, "x0", "transfer", "d0->d1", 0.0, 0.001, 0.0015, -1, nbytes=4096),
    ...     Event(0, "s0p0", "compute", "d1", 0.0015, 0.003, 0.003, 0, flops=10**6)), ("d0->d1",))
    >>> doc = trace_events([("predicted", tl)])
    >>> [(ev["name"], ev["ts"], ev["dur"]) for ev in doc["traceEvents"] if ev["ph"] == "X"]
    [('x0', 0.0, 1000.0), ('s0p0', 1500.0, 1500.0)]
    >>> sorted(ev["ph"] for ev in doc["traceEvents"] if ev["ph"] in "sf")
    ['f', 's']
"""

from __future__ import annotations

import json
from itertools import count
from pathlib import Path

from edgeslice.errors import EdgesliceError
from edgeslice.program.program import ComputeTask, Program, TransferTask
from edgeslice.sim.simulate import Event, Timeline


def check_writable(path: str | Path, what: str = "trace file") -> Path:
    """Raise :class:`EdgesliceError` now if a trace cannot be written to ``path`` (so a long run is not wasted).

    The file is opened for appending (what was there stays) and removed again if this made it.
    """
    path = Path(path)
    existed = path.exists()
    try:
        with open(path, "a"):
            pass
    except OSError as exc:
        raise EdgesliceError(f"cannot write the {what} {str(path)!r}: {exc.strerror or exc}") from None
    if not existed:
        path.unlink(missing_ok=True)
    return path


def write_trace(path: str | Path, timelines: list[tuple[str, Timeline]], program: Program | None = None) -> Path:
    """Write :func:`trace_events` to ``path`` (one event per line); return the path."""
    path = Path(path)
    doc = trace_events(timelines, program)
    lines = ",\n".join(json.dumps(ev) for ev in doc["traceEvents"])
    path.write_text(f'{{"displayTimeUnit": "{doc["displayTimeUnit"]}", "traceEvents": [\n{lines}\n]}}\n')
    return path


def trace_events(timelines: list[tuple[str, Timeline]], program: Program | None = None) -> dict:
    """The trace-event JSON object for ``(label, timeline)`` pairs; ``program`` adds layers and tensors."""
    events: list[dict] = []
    flow_ids = count(1)  # unique across the file, whatever the timeline or request
    consumer = _consumers(program)
    for pid, (label, tl) in enumerate(timelines, 1):
        rows, tid_of = _tracks(tl)
        events.append(_meta("process_name", pid, 0, name=label))
        events.append(_meta("process_sort_index", pid, 0, sort_index=pid))
        for i, row in enumerate(rows):
            events.append(_meta("thread_name", pid, i + 1, name=row))
            events.append(_meta("thread_sort_index", pid, i + 1, sort_index=i))
        row_tid = {row: i + 1 for i, row in enumerate(rows)}
        slices = {(e.request, e.task): (_mid(e), tid_of[i]) for i, e in enumerate(tl.events) if e.kind == "compute"}
        for i, e in enumerate(tl.events):
            x = _slice(e, program)
            x.update(pid=pid, tid=tid_of[i])
            events.append(x)
            if e.kind != "transfer":
                continue
            flow = {"cat": "transfer", "name": x["name"], "id": next(flow_ids), "pid": pid}
            events.append({"ph": "s", **flow, "tid": tid_of[i], "ts": _mid(e)})
            used = slices.get((e.request, consumer.get(e.task)))
            if used is not None:  # bind to the compute that uses the data
                events.append({"ph": "f", "bp": "e", **flow, "tid": used[1], "ts": used[0]})
            else:  # the destination device at the arrival: binds to its next slice
                dst = _destination(e, program)
                events.append({"ph": "f", **flow, "tid": row_tid.get(dst, tid_of[i]), "ts": _us(e.end)})
        for r, (a, f) in enumerate(zip(tl.arrivals, tl.finishes)):
            for what, t in (("arrives", a), ("done", f)):
                events.append({"ph": "i", "s": "p", "cat": "request", "name": f"request {r} {what}", "pid": pid,
                               "tid": 1, "ts": _us(t), "args": {"request": r}})
    return {"displayTimeUnit": "ms", "traceEvents": events}


def _us(seconds: float) -> float:
    """Seconds to microseconds, rounded to the nanosecond so that adjacent slices share their boundary exactly."""
    return round(seconds * 1e6, 3)


def _mid(e: Event) -> float:
    """The middle of ``e``'s slice: a flow bound there is inside it, whatever order a viewer gives equal timestamps."""
    return round((_us(e.start) + _us(e.busy_end)) / 2, 3)


def _meta(what: str, pid: int, tid: int, **args) -> dict:
    return {"ph": "M", "name": what, "pid": pid, "tid": tid, "args": args}


def _slice(e: Event, program: Program | None) -> dict:
    """The complete event of ``e`` (no pid/tid yet): it held its resource over [start, busy_end)."""
    ts = _us(e.start)
    args = {"request": e.request, "task": e.task, "segment": e.segment, "bytes": e.nbytes, "flops": e.flops}
    name = e.task
    t = program.task_by_id.get(e.task) if program is not None else None
    if isinstance(t, ComputeTask) and t.steps:
        layers = [s.layer for s in t.steps]
        args["layers"] = layers
        name = f"{e.task} {layers[0]}" + (f"..{layers[-1]}" if len(layers) > 1 else "")
    elif isinstance(t, TransferTask):
        args.update(src=t.src, dst=t.dst, tensor=t.tensor, source=t.source)
    if e.kind == "transfer":
        args["arrival_us"] = _us(e.end)
        args["latency_us"] = round(_us(e.end) - _us(e.busy_end), 3)
    return {"ph": "X", "cat": e.kind, "name": name, "ts": ts, "dur": round(_us(e.busy_end) - ts, 3), "args": args}


def _tracks(tl: Timeline) -> tuple[list[str], list[int]]:
    """Row names (devices, then used links, with extra rows for overlaps) and each event's tid."""
    used = [e.resource for e in tl.events]
    devices = list(dict.fromkeys([*tl.devices, *(e.resource for e in tl.events if e.kind == "compute")]))
    links = [l for l in tl.links if l in used] + sorted({r for r in used if r not in devices and r not in tl.links})
    lane_ends: dict[str, list[float]] = {r: [] for r in devices + links}
    lane_of = [0] * len(tl.events)
    order = sorted(range(len(tl.events)), key=lambda i: (tl.events[i].start, tl.events[i].busy_end))
    for i in order:
        e = tl.events[i]
        ends = lane_ends[e.resource]
        lane = next((k for k, end in enumerate(ends) if end <= _us(e.start)), len(ends))
        if lane == len(ends):
            ends.append(0.0)
        ends[lane] = max(ends[lane], _us(e.busy_end))
        lane_of[i] = lane
    rows, first = [], {}
    for r in devices + links:
        first[r] = len(rows) + 1
        rows += [r] + [f"{r} #{k + 1}" for k in range(1, len(lane_ends[r]))]
    return rows, [first[e.resource] + lane_of[i] for i, e in enumerate(tl.events)]


def _consumers(program: Program | None) -> dict[str, str]:
    """Transfer id -> the first compute task (Program order) that assembles a piece of it."""
    out: dict[str, str] = {}
    for t in program.computes if program is not None else ():
        for need in t.needs:
            for piece in need.pieces:
                out.setdefault(piece.task, t.id)
    return out


def _destination(e: Event, program: Program | None) -> str:
    t = program.task_by_id.get(e.task) if program is not None else None
    if isinstance(t, TransferTask):
        return t.dst
    return e.resource.split("->")[-1]  # "a->b" -> "b"; "medium" stays (its own row)
