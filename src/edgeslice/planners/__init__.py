"""Planners: functions of (graph, cluster, options) that return a Plan.

Each planner is registered by name; ``edgeslice planners`` lists them.
:func:`make_plan` is the one entry point the command line and the tests use.

Example::

    >>> from edgeslice.graph import trace
    >>> g, _ = trace("alexnet", (3, 96, 96))
    >>> make_plan("random", g, devices=4, seed=3).planner
    'random'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from edgeslice.cluster.model import Cluster
from edgeslice.errors import EdgesliceError
from edgeslice.graph.layer import LayerGraph
from edgeslice.plan.plan import Plan


@dataclass(frozen=True)
class PlannerInfo:
    name: str
    fn: Callable[..., Plan]
    summary: str


def _random(graph: LayerGraph, cluster: Cluster, *, seed: int = 0, **opts) -> Plan:
    from edgeslice.planners.random import random_plan

    return random_plan(graph, cluster.names, cluster.source, cluster.sink, seed=seed,
                       cluster_name=None if cluster.name.startswith("uniform") else cluster.name, **opts)


PLANNERS: dict[str, PlannerInfo] = {
    "random": PlannerInfo("random", _random, "random valid plan mixing spatial, channel and partial-sum cuts (a fuzzer)"),
}


def make_plan(name: str, graph: LayerGraph, cluster: Cluster | None = None, *, devices: int | None = None, **options) -> Plan:
    """Run planner ``name`` on ``graph`` for ``cluster`` (or ``devices`` identical devices)."""
    if name not in PLANNERS:
        raise EdgesliceError(f"unknown planner {name!r}; available: {', '.join(PLANNERS)}")
    if cluster is None:
        cluster = Cluster.uniform(devices or 1)
    return PLANNERS[name].fn(graph, cluster, **options)
