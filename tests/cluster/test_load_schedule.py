"""A device's background load in the cluster file: constant or steps over time, carried by a plan's cluster."""

from __future__ import annotations

import pytest

from edgeslice.cluster.load import parse_cluster
from edgeslice.cluster.model import Cluster
from edgeslice.errors import ClusterError


def _c(**dev):
    return parse_cluster({"name": "x", "devices": [{"name": "a", "gflops": 5, **dev}, {"name": "b", "gflops": 5}]},
                         "x.yaml")


def test_constant_and_stepped_loads_in_percent():
    c = _c(load=60)
    assert c.device("a").cpu_load == pytest.approx(0.6) and c.device("a").load_schedule == ((0.0, 0.6),)
    c = _c(load=[[30, 80], [0, 10]])
    a = c.device("a")
    assert a.load_schedule == ((0.0, 0.1), (30.0, 0.8)) and a.cpu_load == pytest.approx(0.1)
    assert [a.load_at(t) for t in (0.0, 29.9, 30.0, 100.0)] == [0.1, 0.1, 0.8, 0.8]
    assert c.at(31).device("a").cpu_load == 0.8 and c.at(31).device("b").cpu_load == 0.0
    # a later step only: idle before it
    assert _c(load=[[5, 50]]).device("a").cpu_load == 0.0


def test_round_trips_through_a_plans_cluster_and_measured_loads_override():
    c = _c(load=[[0, 10], [30, 80]])
    assert Cluster.from_dict(c.to_dict()) == c
    m = c.with_loads({"a": 0.45})
    assert m.device("a").cpu_load == 0.45 and m.device("a").load_schedule == c.device("a").load_schedule
    assert Cluster.from_dict(m.to_dict()) == m  # cpu_load (the load now) is kept beside the schedule
    with pytest.raises(ClusterError, match="no device 'z'"):
        c.with_loads({"z": 0.1})


@pytest.mark.parametrize("load,words", [
    (100, "devices\\[0\\].load: must be a percent in \\[0, 100\\)"),
    ([], "not an empty list"),
    ([[0, 5], [0, 6]], "two steps start at the same time"),
    ([[0]], "load\\[0\\]: must be \\[t_s, percent\\]"),
    ([[-1, 5]], "load\\[0\\]\\[0\\]"),
    ("high", "must be a percent"),
])
def test_bad_loads_are_one_line_naming_the_field(load, words):
    with pytest.raises(ClusterError, match=words):
        _c(load=load)
