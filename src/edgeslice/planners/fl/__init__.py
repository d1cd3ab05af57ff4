"""FL + PSOMW (Zhou et al., TPDS 2023) and its baselines: ``nfl``, ``fl-psomw``, ``fl-dpls``, ``fl-bf``, ``fl-dp``.

An IoT device (the cluster's source) runs a CNN with help from edge servers
(every other device).  Fused-layer (FL) conversion turns a run of layers into
parallel *paths* — spatial tiles traced back through the run, paying halo
recomputation — each kept on the device or offloaded, so local compute,
upload and edge compute overlap.  The space, the time model and Minimizing
Waiting are described in :mod:`edgeslice.planners.fl.space` and :mod:`edgeslice.planners.fl.flowshop` (notes
*fl-space*, *fl-time*, *mw*) and ``docs/fl-psomw.md``.

``nfl``
    the same partial offloading without FL conversion: whole units (layers
    between cut points) on the device or any edge server, optimal over that
    space by a chain DP (:meth:`FLSpace.dp` without blocks).
``fl-psomw``
    particle swarm optimisation over the FL strategy (which units are fused,
    each block's layout) and the path offloading decisions; every particle is
    repaired to a valid solution and completed by Minimizing Waiting (path
    order) and by the optimal placement of the whole units around its blocks
    (a chain DP).  The best particles, the NFL solution and the solution of a
    chain DP over every block with *count-family* offloading
    (:func:`count_seed`) are then improved by a local search; the final
    answer is the better (simulated) of that and NFL's, so it is never worse
    than ``nfl``.  Options (:class:`~edgeslice.planners.fl.swarm.FLPsomwOptions`): ``swarm``,
    ``iterations``, ``seed``, ``patience``, ``polish``, ``slots``, ``max_block``, ``layouts``.
``fl-dpls``
    the same without the swarm: :func:`count_seed`'s solution and NFL's,
    improved by the same local search.  Deterministic; on the benchmark sweep
    within 0.01% of brute force on average (2 of 140 instances missed by
    0.3% and 1.2%; ``fl-psomw`` misses none) in about 73% of its time.
``fl-bf``
    exact over the same space: a DP over fused-block boundaries whose block
    costs come from trying *every* assignment of paths to devices (``D ** P``
    per block, layout and ``(h_in, h_out)``; blocks of one layout are
    evaluated together, :func:`~edgeslice.planners.fl.flowshop.block_times_many`),
    refusing above ``limit`` assignment evaluations.
:func:`plan_fl_dp` (not registered)
    the same optimum with paths of identical costs treated as interchangeable
    (:func:`~edgeslice.planners.fl.assign.symmetry_classes`), enumerating only
    how many of each class go to each device.  Measured, it is *not* faster
    than ``fl-bf``: halos, borders and uneven strip heights leave almost every
    path with its own costs, so the classes are nearly all singletons; the
    local search of ``fl-psomw`` uses it to re-decide one block's offloading.

Modules: :mod:`.space` (the FL space, note *fl-space*), :mod:`.flowshop` (the time model and
Minimizing Waiting, notes *fl-time*, *mw*), :mod:`.assign` (path assignments), :mod:`.exact`
(``nfl``, ``fl-bf``), :mod:`.search` (the decoder, local search, count-family DP), :mod:`.swarm`
(``fl-psomw``, ``fl-dpls``).

Example::

    >>> from edgeslice.cluster.load import resolve_cluster
    >>> from edgeslice.graph import trace
    >>> from edgeslice.planners import make_plan
    >>> from edgeslice.planners._shared.common import evaluate
    >>> from edgeslice.cost import ClusterCost
    >>> g, _ = trace("alexnet", (3, 64, 64))
    >>> c = resolve_cluster("iot-edge")
    >>> k = ClusterCost(c)
    >>> fl = evaluate(make_plan("fl-psomw", g, c, k, iterations=10), g, c, k)
    >>> fl <= evaluate(make_plan("nfl", g, c, k), g, c, k) + 1e-12
    True
"""
