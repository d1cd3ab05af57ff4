"""Planners over whole segments (no spatial or channel cuts): Neurosurgeon, a layer-wise DP, DADS min-cut, brute force.

Each planner places *whole* layers on devices (no spatial or channel cuts) and
is optimal over its own space for its own objective:

``neurosurgeon`` (Kang et al., ASPLOS 2017)
    the best single split point: layers ``[0, k)`` on the source, ``[k, L)`` on
    one server, every ``k`` and every server tried and scored with
    :func:`~edgeslice.planners.common.evaluate` (lower + simulate), so it is
    exact over its space for any model, DAGs included.  Ties: smaller ``k``,
    then the server listed first.
``layerwise``
    an optimal chain partition by dynamic programming (:func:`chain_dp`) over
    "which device runs layer ``i``", devices reusable, consecutive layers on one
    device forming one segment (one task overhead).  The latency objective is
    exactly what the simulator predicts for a *chain* model (every layer reads
    only the previous one) without a bandwidth trace (note *chain-latency*
    below); on a DAG it charges all the bytes crossing a boundary as one
    transfer at that boundary, an approximation (a skip tensor really travels
    once, straight to its reader).  ``objective="throughput"`` minimises the
    bottleneck of a pipeline instead: the slowest stage (on distinct devices)
    or link serialisation; at most ``max_devices`` = 6 devices are considered,
    the fastest, always including the source.  On a ``shared`` medium the transfers of
    different stages would add up; the DP still takes their maximum.
``dads`` (Hu et al., INFOCOM 2019)
    a minimum s-t cut (:func:`dads_cut`) between the source (local) and the
    fastest other device (edge): each layer local or edge, minimising the *sum*
    of compute and upload times (DADS's light-load model, not the simulated
    makespan).  Data may only flow local → edge, so the plan is valid even
    when local and edge runs alternate in topological order.
``bruteforce``
    every assignment of layers to devices, each scored with ``evaluate``;
    refuses with an :class:`~edgeslice.errors.EdgesliceError` when
    ``devices ** layers`` exceeds ``limit`` (default 200 000).  For tests and
    tiny cases.

The numeric cores (:func:`chain_dp`, :func:`dads_cut`) are pure functions of
arrays, tested against brute force on random tables (DESIGN.md style rule 2);
the planner functions only adapt the graph, cluster and cost model to arrays
(:func:`chain_arrays`) and build the Plan.

One module per planner: :mod:`.basic` (``local``, ``edge``), :mod:`.neurosurgeon`,
:mod:`.layerwise`, :mod:`.dads`, :mod:`.bruteforce`.

Example::

    >>> from edgeslice.cluster.load import resolve_cluster
    >>> from edgeslice.cost import ClusterCost
    >>> from edgeslice.graph import trace
    >>> from edgeslice.planners import make_plan
    >>> from edgeslice.planners._shared.common import evaluate
    >>> g, _ = trace("alexnet", (3, 64, 64))
    >>> c = resolve_cluster("iot-edge")
    >>> best = evaluate(make_plan("layerwise", g, c), g, c, ClusterCost(c))
    >>> best <= evaluate(make_plan("neurosurgeon", g, c), g, c, ClusterCost(c)) + 1e-12
    True
"""
