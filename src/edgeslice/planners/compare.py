"""Every planner on one model and cluster, each planned once: what ``compare`` and the demo show.

A planner that refuses (an :class:`~edgeslice.errors.EdgesliceError`: too
many layers for brute force, a cluster without servers, a device too small)
is kept with its one-line reason, so a table can say why it is missing.

Example::

    >>> from edgeslice.cluster import Cluster
    >>> from edgeslice.graph import trace
    >>> g, _ = trace("alexnet", (3, 64, 64))
    >>> res = compare(g, Cluster.uniform(2), names=["local", "layerwise", "fl-bf"])
    >>> [r.ok for r in res.values()]
    [True, True, True]
    >>> best(res).latency_s <= res["local"].latency_s
    True
"""

from __future__ import annotations

import time
from typing import Callable, NamedTuple

from edgeslice.cluster.model import Cluster
from edgeslice.errors import EdgesliceError
from edgeslice.graph.layer import LayerGraph
from edgeslice.plan.plan import Plan

# Left out of a default comparison: brute force is for tiny cases, random is a fuzzer.
NOT_COMPARED = ("bruteforce", "random", "mtl-a3c")  # exhaustive, a reference, needs a trained agent


class Comparison(NamedTuple):
    """One planner's result: its plan and predicted latency, or the reason it refused."""

    planner: str
    plan: Plan | None
    latency_s: float | None
    bytes_moved: int | None
    planning_s: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def default_planners() -> list[str]:
    from edgeslice.planners import planners

    return [n for n in planners() if n not in NOT_COMPARED]


def compare(graph: LayerGraph, cluster: Cluster, cost=None, names: list[str] | None = None, *,
            options: dict[str, dict] | None = None,
            progress: Callable[[Comparison], None] | None = None) -> dict[str, Comparison]:
    """Plan ``graph`` on ``cluster`` with each planner in ``names`` (default: all but brute force and random).

    ``options[name]`` are keyword options for planner ``name``.  Each plan is
    lowered and simulated once (:func:`~edgeslice.planners._shared.common.evaluate`).
    """
    from edgeslice.cost import ClusterCost
    from edgeslice.planners import make_plan
    from edgeslice.planners._shared.common import evaluate
    from edgeslice.program.lower import lower

    cost = cost if cost is not None else ClusterCost(cluster)
    out: dict[str, Comparison] = {}
    for name in names or default_planners():
        t0 = time.perf_counter()
        try:
            plan = make_plan(name, graph, cluster, cost, **(options or {}).get(name, {}))
        except EdgesliceError as exc:
            r = Comparison(name, None, None, None, time.perf_counter() - t0, str(exc))
        else:
            planning = time.perf_counter() - t0
            r = Comparison(name, plan, evaluate(plan, graph, cluster, cost), lower(plan, graph).bytes_transferred, planning)
        out[name] = r
        if progress:
            progress(r)
    return out


def best(results: dict[str, Comparison]) -> Comparison:
    """The fastest predicted result (the first listed on a tie); an EdgesliceError when every planner refused."""
    ok = [r for r in results.values() if r.ok]
    if not ok:
        raise EdgesliceError("every planner refused: " + "; ".join(f"{r.planner}: {r.error}" for r in results.values()))
    return min(ok, key=lambda r: r.latency_s)
