"""Planners: functions of (graph, cluster, cost, options) that return a Plan.

Each planner is registered by name with its typed options (a frozen dataclass,
:mod:`edgeslice.planners.options`); ``edgeslice planners`` lists them.
:func:`make_plan` is the one entry point the command line and the tests use:
it validates the options (an unknown, ill-typed or out-of-range one is a
one-line :class:`~edgeslice.errors.OptionError`), calls the planner with them,
and records them, defaults included, in the plan.

Example::

    >>> from edgeslice.graph import trace
    >>> g, _ = trace("alexnet", (3, 96, 96))
    >>> make_plan("random", g, devices=4, seed=3).planner
    'random'
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from edgeslice.cluster.model import Cluster
from edgeslice.errors import EdgesliceError
from edgeslice.graph.layer import LayerGraph
from edgeslice.plan.plan import Plan
from edgeslice.planners import options as _options
from edgeslice.planners.options import NoOptions, PlannerOptions


@dataclass(frozen=True)
class PlannerInfo:
    name: str
    fn: Callable[..., Plan]
    summary: str
    exact: bool = False
    options: type = NoOptions


PLANNERS: dict[str, PlannerInfo] = {}


def register(name: str, summary: str, exact: bool = False, options: type = NoOptions):
    """Decorator: register ``fn(graph, cluster, cost, opts) -> Plan`` under ``name``, ``opts`` an ``options`` instance.

    ``options`` is a frozen dataclass deriving from
    :class:`~edgeslice.planners.options.PlannerOptions` (checked here: a bad
    declaration is a TypeError at import).
    """
    _options.specs(options)

    def deco(fn):
        PLANNERS[name] = PlannerInfo(name, fn, summary, exact, options)
        return fn

    return deco


def planner_info(name: str) -> PlannerInfo:
    """The registered planner ``name`` (an :class:`EdgesliceError` naming the available ones when there is none)."""
    _load_all()
    if name not in PLANNERS:
        import difflib

        near = difflib.get_close_matches(name, PLANNERS, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise EdgesliceError(f"unknown planner {name!r}; {hint}available: {', '.join(PLANNERS)}")
    return PLANNERS[name]


def planner_options(name: str, *, cli: bool = False, **options) -> PlannerOptions:
    """The validated options of planner ``name`` (unknown, ill-typed or out-of-range: a one-line OptionError).

    ``cli`` names options by their flags (``--max-block``) in the messages.
    """
    info = planner_info(name)

    def takers(key):
        return [n for n, i in PLANNERS.items() if key in {s.name for s in _options.specs(i.options)}]

    return _options.build(name, info.options, options, cli=cli, takers=takers)


def make_plan(name: str, graph: LayerGraph, cluster: Cluster | None = None, cost=None, *, devices: int | None = None,
              **options) -> Plan:
    """Run planner ``name`` on ``graph`` for ``cluster`` (or ``devices`` identical devices).

    ``cost`` defaults to the cluster's cost model (:class:`edgeslice.cost.ClusterCost`).
    ``options`` are the planner's options by name (see ``edgeslice planners``),
    validated before it runs; the plan records all of them, defaults included
    (:func:`edgeslice.planners.options.record`).
    """
    info = planner_info(name)
    opts = planner_options(name, **options)
    if cluster is None:
        cluster = Cluster.uniform(devices or 1)
    if cost is None:
        from edgeslice.cost import ClusterCost

        cost = ClusterCost(cluster)
    plan = info.fn(graph, cluster, cost, opts)
    _require_fit(plan, graph, cluster)
    return replace(plan, options=_options.record(opts, plan.options))


def _require_fit(plan: Plan, graph: LayerGraph, cluster: Cluster) -> None:
    """Every planner's plan fits every device's ``memory_mb``, or it is refused in one line naming the device."""
    from edgeslice.program.lower import lower
    from edgeslice.program.memory import require_fit

    require_fit(lower(plan, graph), graph, cluster, plan.planner)


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
            "spatial.ftp", "spatial.modnn", "spatial.aofl", "channel.decnn", "fl.exact", "fl.swarm",
            "hybrid.hvpm", "learned.planner")
