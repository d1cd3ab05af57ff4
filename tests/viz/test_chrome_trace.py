"""Chrome trace-event files: one slice per timeline event on its resource's row, paired flows, one process per timeline."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from edgeslice.cluster import Cluster
from edgeslice.cluster.model import Link
from edgeslice.cost import ClusterCost
from edgeslice.planners import make_plan
from edgeslice.program import lower
from edgeslice.sim import simulate
from edgeslice.sim.simulate import Event, Timeline
from edgeslice.viz.trace import trace_events, write_trace


@pytest.fixture(scope="module")
def run(traced):
    """alexnet on three devices, a random plan with transfers: (program, one-request, two-request timelines)."""
    g, _ = traced("alexnet", (3, 96, 96))
    c = Cluster.uniform(3)
    prog = lower(make_plan("random", g, c, seed=1), g)
    one = simulate(prog, g, c, ClusterCost(c))
    two = simulate(prog, g, c, ClusterCost(c), arrivals=(0.0, 0.01))
    assert any(e.kind == "transfer" for e in one.events)
    return prog, one, two


def _load(tmp_path, timelines, program=None):
    path = write_trace(tmp_path / "run.trace.json", timelines, program)
    doc = json.loads(path.read_text())
    assert doc["displayTimeUnit"] == "ms"
    return doc["traceEvents"]


def _threads(events, pid):
    """Row names of process ``pid`` by tid, in thread_sort_index order."""
    names = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name" and e["pid"] == pid}
    order = {e["tid"]: e["args"]["sort_index"] for e in events if e["ph"] == "M" and e["name"] == "thread_sort_index"
             and e["pid"] == pid}
    assert set(order) == set(names)
    return {tid: names[tid] for tid in sorted(names, key=order.get)}


def test_one_slice_per_event_on_its_resource(tmp_path, run):
    prog, tl, _ = run
    events = _load(tmp_path, [("predicted", tl)], prog)
    rows = _threads(events, 1)
    xs = {(x["args"]["request"], x["args"]["task"]): x for x in events if x["ph"] == "X"}
    assert len(xs) == len([x for x in events if x["ph"] == "X"]) == len(tl.events)
    for e in tl.events:
        x = xs[(e.request, e.task)]
        assert rows[x["tid"]] == e.resource and x["pid"] == 1 and x["cat"] == e.kind
        assert x["ts"] == pytest.approx(e.start * 1e6, abs=1e-3)
        assert x["dur"] == pytest.approx((e.busy_end - e.start) * 1e6, abs=2e-3)
        assert (x["args"]["bytes"], x["args"]["flops"], x["args"]["segment"]) == (e.nbytes, e.flops, e.segment)
        if e.kind == "compute":
            layers = [s.layer for s in prog.task_by_id[e.task].steps]
            assert x["args"]["layers"] == layers
            assert x["name"].startswith(f"{e.task} {layers[0]}") and x["name"].endswith(layers[-1])


def test_one_named_row_per_device_then_per_used_link(tmp_path, run):
    prog, tl, _ = run
    rows = list(_threads(_load(tmp_path, [("predicted", tl)], prog), 1).values())
    used_links = [l for l in tl.links if any(e.resource == l for e in tl.events)]
    assert used_links and rows == list(tl.devices) + used_links


def test_every_transfer_has_one_flow_from_its_link_to_its_destination(tmp_path, run):
    prog, tl, _ = run
    events = _load(tmp_path, [("predicted", tl)], prog)
    rows = _threads(events, 1)
    starts = {e["id"]: e for e in events if e["ph"] == "s"}
    finishes = Counter(e["id"] for e in events if e["ph"] == "f")
    transfers = [e for e in tl.events if e.kind == "transfer"]
    assert len(starts) == len([e for e in events if e["ph"] == "s"]) == len(transfers) > 0
    assert finishes == Counter(list(starts))
    xs = [x for x in events if x["ph"] == "X"]

    def inside(ev, cat):
        """The slices of ``cat`` on ``ev``'s row that contain its time."""
        return [x for x in xs if x["cat"] == cat and x["tid"] == ev["tid"] and x["ts"] <= ev["ts"] <= x["ts"] + x["dur"]]

    bound = 0
    for f in (e for e in events if e["ph"] == "f"):
        s = starts[f["id"]]
        assert (s["cat"], s["name"]) == (f["cat"], f["name"])
        (x,) = [x for x in inside(s, "transfer") if x["name"] == s["name"]]  # the send's own slice on its link
        assert rows[f["tid"]] == x["args"]["dst"] and f["ts"] >= x["args"]["arrival_us"] - 1e-3
        if f.get("bp") == "e":  # bound to the compute that uses the data
            (c,) = inside(f, "compute")
            assert c["args"]["request"] == x["args"]["request"] and c["ts"] >= x["args"]["arrival_us"] - 1e-3
            bound += 1
    assert bound > 0


def test_two_timelines_are_two_processes_with_distinct_flow_ids(tmp_path, run):
    prog, _, tl = run
    assert len(tl.arrivals) == 2
    events = _load(tmp_path, [("measured", tl), ("predicted", tl)], prog)
    names = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    assert names == {1: "measured", 2: "predicted"}
    assert Counter(x["pid"] for x in events if x["ph"] == "X") == {1: len(tl.events), 2: len(tl.events)}
    starts = [e["id"] for e in events if e["ph"] == "s"]
    assert len(set(starts)) == len(starts) == 2 * sum(e.kind == "transfer" for e in tl.events)
    assert Counter(e["id"] for e in events if e["ph"] == "f") == Counter(starts)
    instants = [e for e in events if e["ph"] == "i"]
    assert len(instants) == 2 * 2 * 2 and all(e["s"] == "p" for e in instants)


def test_link_latency_shows_in_args_not_in_the_slice(tmp_path, traced):
    g, _ = traced("alexnet", (3, 96, 96))
    c = Cluster("lat", Cluster.uniform(3).devices, Link(100.0, 2.0))
    prog = lower(make_plan("random", g, c, seed=1), g)
    tl = simulate(prog, g, c, ClusterCost(c))
    late = [e for e in tl.events if e.kind == "transfer" and e.end > e.busy_end]
    assert late
    xs = {(x["args"]["request"], x["args"]["task"]): x for x in _load(tmp_path, [("p", tl)], prog) if x["ph"] == "X"}
    for e in late:
        x = xs[(e.request, e.task)]
        assert x["dur"] == pytest.approx((e.busy_end - e.start) * 1e6, abs=2e-3)
        assert x["args"]["arrival_us"] == pytest.approx(e.end * 1e6, abs=1e-3)
        assert x["args"]["latency_us"] == pytest.approx(2000.0, abs=2e-3)


def test_overlapping_transfers_on_one_link_get_their_own_rows():
    """A measured link may carry several transfers at once: they must not share a row."""
    tl = Timeline(("a", "b"), (0.0,), (0.004,), (
        Event(0, "x0", "transfer", "a->b", 0.0, 0.002, 0.002, 0, nbytes=8),
        Event(0, "x1", "transfer", "a->b", 0.001, 0.003, 0.003, 0, nbytes=8),
        Event(0, "s1p0", "compute", "b", 0.003, 0.004, 0.004, 1)), ("a->b",))
    events = trace_events([("measured", tl)])["traceEvents"]
    rows = _threads(events, 1)
    assert list(rows.values()) == ["a", "b", "a->b", "a->b #2"]
    tids = {x["name"]: x["tid"] for x in events if x["ph"] == "X"}
    assert rows[tids["x0"]] == "a->b" and rows[tids["x1"]] == "a->b #2"
    # without a Program the flows end on the destination device at the arrival
    assert [(rows[f["tid"]], f["ts"]) for f in events if f["ph"] == "f"] == [("b", 2000.0), ("b", 3000.0)]
