"""The simulator: exact timelines on hand-made programs, and its two paths agreeing."""

from __future__ import annotations

import random

import pytest

from edgeslice.cluster.model import Cluster, Device, Link
from edgeslice.cost.base import ClusterCost, CostModel
from edgeslice.planners import make_plan
from edgeslice.program import Program, lower
from edgeslice.sim.simulate import _simulate_des, _simulate_one, simulate


class FixedCost(CostModel):
    """Every layer takes ``per_layer`` seconds regardless of size; no task overhead."""

    task_overhead_s = 0.0

    def __init__(self, per_layer: float):
        self.per_layer = per_layer

    def layer_time(self, layer, fraction, device, batch):
        return self.per_layer

    def steps_time(self, graph, steps, device):
        return self.per_layer * len(steps)


class _Cost(ClusterCost):
    def __init__(self, cluster, model):
        self.cluster, self.analytic, self.task_overhead_s = cluster, model, 0.0
        self._by_device = {d.name: model for d in cluster.devices}


class _Graph:
    """Just enough of a LayerGraph for the cost model: layers by name, a batch, a memo."""

    batch = 1

    def __init__(self):
        self.memo = {}

    def layer(self, name):
        return name


# Two devices; a 1000-byte input split into two halves; each half computed on one
# device (1 step each); the halves gathered on a.  Bandwidth 8 kbit/s = 1000 B/s.
TEXT = """\
edgeslice-program 1 model=t fingerprint=f batch=1 itemsize=4 devices=a,b source=a sink=a
tensor input 250
tensor y 250
input in @a input[0:250]
transfer x0 a->b input[125:250] from=in bytes=500
compute s0p0 @a seg=0 part=0 flops=0
  need input[0:125] <- in[0:125]
  step y[0:125]
  out y[0:125]
compute s0p1 @b seg=0 part=1 flops=0
  need input[125:250] <- x0[125:250]
  step y[125:250]
  out y[125:250]
transfer x1 b->a y[125:250] from=s0p1 bytes=500
output out @a
  need y[0:250] <- s0p0[0:125] x1[125:250]
"""


def _cluster(**kw):
    return Cluster("two", (Device("a"), Device("b")), Link(0.008, 100.0), **kw)


def _run(text=TEXT, arrivals=(0.0,), **kw):
    cluster = _cluster(**kw)
    prog = Program.from_text(text)
    return simulate(prog, _Graph(), cluster, _Cost(cluster, FixedCost(2.0)), arrivals=arrivals)


def test_exact_timeline_one_request():
    tl = _run()
    got = [(e.task, e.resource, round(e.start, 9), round(e.busy_end, 9), round(e.end, 9)) for e in tl.events]
    # x0: 500 B at 1000 B/s = 0.5 s on the link, +0.1 s latency → arrives 0.6
    assert got == [
        ("s0p0", "a", 0.0, 2.0, 2.0),
        ("x0", "a->b", 0.0, 0.5, 0.6),
        ("s0p1", "b", 0.6, 2.6, 2.6),
        ("x1", "b->a", 2.6, 3.1, 3.2),
    ]
    assert tl.latency_s == pytest.approx(3.2)
    s = tl.summary()
    assert s["per_device"]["a"] == {"busy_s": 2.0, "idle_s": pytest.approx(1.2)}
    assert s["bytes_total"] == 1000 and s["per_link"]["a->b"]["bytes"] == 500


def test_exact_timeline_two_requests_queue_in_order():
    tl = _run(arrivals=(0.0, 1.0))
    got = [(e.request, e.task, e.resource, round(e.start, 9), round(e.end, 9)) for e in tl.events]
    assert got == [
        (0, "s0p0", "a", 0.0, 2.0),
        (0, "x0", "a->b", 0.0, 0.6),
        (0, "s0p1", "b", 0.6, 2.6),
        (1, "x0", "a->b", 1.0, 1.6),
        (1, "s0p0", "a", 2.0, 4.0),   # a is busy with request 0 until 2.0
        (1, "s0p1", "b", 2.6, 4.6),   # b waits for request 0's compute
        (0, "x1", "b->a", 2.6, 3.2),
        (1, "x1", "b->a", 4.6, 5.2),
    ]
    assert tl.finishes == (pytest.approx(3.2), pytest.approx(5.2))
    assert tl.latencies == (pytest.approx(3.2), pytest.approx(4.2))


def test_shared_medium_serialises_transfers_both_ways():
    tl = _run(arrivals=(0.0, 1.0), medium="shared")
    xs = [(e.request, e.task, round(e.start, 9), round(e.busy_end, 9)) for e in tl.events if e.kind == "transfer"]
    # on a shared channel request 0's return (x1) cannot overlap request 1's upload
    assert xs == [(0, "x0", 0.0, 0.5), (1, "x0", 1.0, 1.5), (0, "x1", 2.6, 3.1), (1, "x1", 4.6, 5.1)]
    assert {e.resource for e in tl.events if e.kind == "transfer"} == {"medium"}


def test_bandwidth_trace_slows_a_transfer_in_flight():
    # bandwidth halves at t=0.25: 250 B go at 1000 B/s, the other 250 B at 500 B/s → 0.75 s
    tl = _run(bandwidth_trace=((0.25, 0.5),))
    x0 = next(e for e in tl.events if e.task == "x0")
    assert (x0.start, x0.busy_end) == (0.0, pytest.approx(0.75))
    assert CostModel.transfer_time(1000, Link(0.008, 0.0), 0.0, ((0.5, 2.0), (1.0, 1.0))) == (pytest.approx(0.75), 0.0)


def test_program_out_of_order_is_reported():
    bad = TEXT.replace("transfer x0 a->b input[125:250] from=in bytes=500\n", "")
    bad = bad.replace("output out @a", "transfer x0 a->b input[125:250] from=in bytes=500\noutput out @a")
    with pytest.raises(Exception, match="does not come before it"):
        _run(bad)


@pytest.mark.parametrize("seed", range(12))
def test_list_scheduling_equals_event_loop_for_one_request(traced, seed):
    """The fast single-request path and the discrete-event loop give identical timelines."""
    g, _ = traced("resnet18", (3, 64, 48))
    rng = random.Random(seed)
    devs = tuple(Device(f"d{i}", gflops=rng.uniform(2, 50), cpu_load=rng.choice([0, 0.3])) for i in range(rng.randint(2, 4)))
    cluster = Cluster("r", devs, Link(rng.uniform(5, 100), rng.uniform(0, 5)), medium=rng.choice(["switched", "shared"]),
                      bandwidth_trace=((0.01, 0.5), (0.05, 2.0)) if seed % 2 else ())
    cost = ClusterCost(cluster)
    prog = lower(make_plan("random", g, cluster, cost, seed=seed), g)
    a = _simulate_one(prog, g, cluster, cost, 0.0, True)
    b = _simulate_des(prog, g, cluster, cost, (0.0,))
    assert a.finishes == pytest.approx(b.finishes, rel=1e-12)
    key = lambda e: (e.task, e.resource)  # noqa: E731
    ea, eb = sorted(a.events, key=key), sorted(b.events, key=key)
    assert [key(e) for e in ea] == [key(e) for e in eb]
    for x, y in zip(ea, eb):
        assert (x.start, x.busy_end, x.end) == pytest.approx((y.start, y.busy_end, y.end), rel=1e-12, abs=1e-15)


def test_many_requests_pipeline_and_are_deterministic(traced):
    g, _ = traced("alexnet", (3, 96, 96))
    cluster = Cluster.uniform(3, gflops=5, bandwidth_mbps=50)
    cost = ClusterCost(cluster)
    prog = lower(make_plan("random", g, cluster, cost, seed=4), g)
    one = simulate(prog, g, cluster, cost).latency_s
    tl = simulate(prog, g, cluster, cost, arrivals=tuple(0.0 for _ in range(5)))
    assert tl == simulate(prog, g, cluster, cost, arrivals=tuple(0.0 for _ in range(5)))
    assert min(tl.latencies) >= one - 1e-12
    assert tl.makespan_s < 5 * one  # requests overlap on different devices
    spaced = simulate(prog, g, cluster, cost, arrivals=(0.0, 2 * one, 4 * one))
    assert spaced.latencies == pytest.approx((one, one, one))


# a -> b -> a: request 0's last compute on a waits for b; with overlap a runs request 1's first compute meanwhile
CHAIN = """\
edgeslice-program 1 model=t fingerprint=f batch=1 itemsize=4 devices=a,b source=a sink=a
tensor input 250
tensor y 250
tensor z 250
tensor w 250
input in @a input[0:250]
compute s0p0 @a seg=0 part=0 flops=0
  need input[0:250] <- in[0:250]
  step y[0:250]
  out y[0:250]
transfer x0 a->b y[0:250] from=s0p0 bytes=500
compute s1p0 @b seg=1 part=0 flops=0
  need y[0:250] <- x0[0:250]
  step z[0:250]
  out z[0:250]
transfer x1 b->a z[0:250] from=s1p0 bytes=500
compute s2p0 @a seg=2 part=0 flops=0
  need z[0:250] <- x1[0:250]
  step w[0:250]
  out w[0:250]
output out @a
  need w[0:250] <- s2p0[0:250]
"""


@pytest.mark.parametrize("overlap", [False, True])
def test_exact_timeline_with_and_without_inter_sample_overlap(overlap):
    cluster = _cluster()
    prog = Program.from_text(CHAIN)
    tl = simulate(prog, _Graph(), cluster, _Cost(cluster, FixedCost(2.0)), arrivals=(0.0, 0.0), overlap=overlap)
    got = [(e.request, e.task, round(e.start, 9), round(e.end, 9)) for e in tl.events if e.resource == "a"]
    if not overlap:  # a waits for request 0's data from b before request 1's first compute
        assert got == [(0, "s0p0", 0.0, 2.0), (0, "s2p0", 5.2, 7.2), (1, "s0p0", 7.2, 9.2), (1, "s2p0", 12.4, 14.4)]
        assert tl.finishes == (pytest.approx(7.2), pytest.approx(14.4))
    else:  # ... or runs it while waiting: b's compute of request 0 and a's of request 1 overlap
        assert got == [(0, "s0p0", 0.0, 2.0), (1, "s0p0", 2.0, 4.0), (0, "s2p0", 5.2, 7.2), (1, "s2p0", 7.2, 9.2)]
        assert tl.finishes == (pytest.approx(7.2), pytest.approx(9.2))
    one = simulate(prog, _Graph(), cluster, _Cost(cluster, FixedCost(2.0)), arrivals=(0.0,), overlap=overlap)
    assert one.latency_s == pytest.approx(7.2)  # one request: the policy changes nothing


@pytest.mark.parametrize("overlap", [False, True])
def test_a_window_admits_a_request_when_the_one_window_back_finishes(overlap):
    cluster = _cluster()
    prog = Program.from_text(CHAIN)
    cost = _Cost(cluster, FixedCost(2.0))
    tl = simulate(prog, _Graph(), cluster, cost, arrivals=(0.0, 0.0, 0.0), overlap=overlap, window=1)
    assert tl.arrivals == (0.0, pytest.approx(7.2), pytest.approx(14.4))
    assert tl.finishes == (pytest.approx(7.2), pytest.approx(14.4), pytest.approx(21.6))
    two = simulate(prog, _Graph(), cluster, cost, arrivals=(0.0, 0.0, 0.0), overlap=True, window=2)
    assert two.arrivals == (0.0, 0.0, pytest.approx(7.2))  # request 2 enters when request 0 is out
    assert two.finishes[:2] == (pytest.approx(7.2), pytest.approx(9.2))


class LoadCost(CostModel):
    """Every step takes ``per_layer / (1 - load)``: the load the device has when the task starts decides."""

    task_overhead_s = 0.0

    def layer_time(self, layer, fraction, device, batch):
        return 2.0 / (1.0 - device.cpu_load)

    def steps_time(self, graph, steps, device):
        return sum(self.layer_time(s, 1.0, device, 1) for s in steps)


@pytest.mark.parametrize("path", ["fast", "events"])
def test_a_load_schedule_slows_the_tasks_that_start_under_it(path):
    # b is idle until t=0.5, then 50% busy with other work: s0p1 starts at 0.6, so it takes 2 / 0.5 = 4 s
    cluster = Cluster("two", (Device("a"), Device("b", load_schedule=((0.0, 0.0), (0.5, 0.5)))), Link(0.008, 100.0))
    prog = Program.from_text(TEXT)
    cost = _Cost(cluster, LoadCost())
    tl = (_simulate_one(prog, _Graph(), cluster, cost, 0.0, True) if path == "fast"
          else _simulate_des(prog, _Graph(), cluster, cost, (0.0,)))
    got = [(e.task, round(e.start, 9), round(e.end, 9)) for e in tl.events]
    assert got == [("s0p0", 0.0, 2.0), ("x0", 0.0, 0.6), ("s0p1", 0.6, 4.6), ("x1", 4.6, 5.2)]
    # the same cluster at t=0 (the load now) would have predicted 2 s for s0p1
    assert cluster.at(0.0).device("b").cpu_load == 0.0 and cluster.at(9.0).device("b").cpu_load == 0.5
