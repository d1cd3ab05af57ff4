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
    exact: bool = False


PLANNERS: dict[str, PlannerInfo] = {}


def register(name: str, summary: str, exact: bool = False):
    """Decorator: register ``fn(graph, cluster, cost, **options) -> Plan`` under ``name``."""

    def deco(fn):
        PLANNERS[name] = PlannerInfo(name, fn, summary, exact)
        return fn

    return deco


def make_plan(name: str, graph: LayerGraph, cluster: Cluster | None = None, cost=None, *, devices: int | None = None,
              **options) -> Plan:
    """Run planner ``name`` on ``graph`` for ``cluster`` (or ``devices`` identical devices).

    ``cost`` defaults to the cluster's cost model (:class:`edgeslice.cost.ClusterCost`).
    """
    _load_all()
    if name not in PLANNERS:
        raise EdgesliceError(f"unknown planner {name!r}; available: {', '.join(PLANNERS)}")
    if cluster is None:
        cluster = Cluster.uniform(devices or 1)
    if cost is None:
        from edgeslice.cost import ClusterCost

        cost = ClusterCost(cluster)
    return PLANNERS[name].fn(graph, cluster, cost, **options)


def planners() -> dict[str, PlannerInfo]:
    """Every registered planner, by name."""
    _load_all()
    return dict(PLANNERS)


def _load_all() -> None:
    import importlib

    for mod in _MODULES:
        importlib.import_module(f"edgeslice.planners.{mod}")


# Modules that register planners when imported.
_MODULES = ("random", "whole.basic", "whole.neurosurgeon", "whole.layerwise", "whole.dads", "whole.bruteforce",
            "spatial.ftp", "spatial.modnn", "spatial.aofl", "fl.exact", "fl.swarm")
