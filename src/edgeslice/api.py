"""edgeslice from Python: trace, plan, simulate, check and run without the command line.

Each function does what the command of the same name does and returns what
its ``--json`` prints (a dict), so a script and a shell pipeline see the same
numbers.  Models are given as an ``nn.Module`` (with its input shape or an
example input), a zoo name (``"alexnet"``) or a ``"file.py:factory"`` /
``"package.module:factory"`` spec; clusters as a bundled name (``"local4"``),
a YAML path or a :class:`~edgeslice.cluster.model.Cluster`; plans as a
:class:`~edgeslice.plan.plan.Plan` or the path of a plan file.  Every user
error is an :class:`~edgeslice.errors.EdgesliceError` with a one-line message.

A plan made from an ``nn.Module`` records the spec ``<module ClassName>``,
which names no file to rebuild the model from: :func:`simulate` and
:func:`check` then need the module again (``model=net``), and :func:`run`
(whose workers rebuild the model in other processes) refuses it — put the
module in a ``file.py`` with a factory and plan ``"file.py:factory"``.

Example::

    >>> import edgeslice
    >>> p = edgeslice.plan("alexnet", "local4", planner="aofl", input_shape=(3, 96, 96))
    >>> edgeslice.check(p)["ok"]
    True
    >>> sim = edgeslice.simulate(p)
    >>> sim["latency_s"] > 0 and len(sim.timeline.events) > 0
    True
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeslice.errors import EdgesliceError

if TYPE_CHECKING:  # only for annotations: importing edgeslice stays free of torch
    from torch import Tensor, nn

    from edgeslice.cluster.model import Cluster
    from edgeslice.graph.layer import LayerGraph
    from edgeslice.plan.plan import Plan

__all__ = ["Result", "check", "load_cluster", "plan", "run", "simulate", "trace"]


class Result(dict):
    """A command's ``--json`` object as a dict, with the objects behind it as attributes.

    The attributes (timelines, the Program, the run's folder) are not keys, so
    ``json.dumps(result)`` gives exactly what the command prints.

    >>> r = Result({"latency_s": 0.5}, timeline=None)
    >>> r["latency_s"], r.timeline
    (0.5, None)
    """

    def __init__(self, data: dict, **attrs: Any) -> None:
        super().__init__(data)
        self.__dict__.update(attrs)


# ------------------------------------------------------------------ helpers


def _shape_of(input_shape, batch: int, example_input) -> tuple[tuple[int, ...] | None, int]:
    """``(input_shape, batch)`` from either an explicit shape or an example tensor ``(N, C, H, W)``."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise EdgesliceError(f"batch must be a positive integer, not {batch!r}")
    if example_input is not None:
        shape = getattr(example_input, "shape", None)
        if shape is None or len(shape) < 2:
            raise EdgesliceError("example_input must be a tensor shaped (batch, C, H, W), e.g. torch.randn(1, 3, 224, 224)")
        ex_shape, ex_batch = tuple(int(v) for v in shape[1:]), int(shape[0])
        if input_shape is not None and tuple(input_shape) != ex_shape:
            raise EdgesliceError(f"input_shape {tuple(input_shape)} disagrees with example_input's {ex_shape}; give one of them")
        return ex_shape, ex_batch
    if input_shape is None:
        return None, batch
    try:
        dims = tuple(int(v) for v in input_shape)
    except (TypeError, ValueError):
        raise EdgesliceError(f"input_shape must be a tuple of sizes like (3, 224, 224), not {input_shape!r}") from None
    if not dims or any(d < 1 for d in dims):
        raise EdgesliceError(f"input_shape {input_shape!r} must have positive sizes, like (3, 224, 224)")
    return dims, batch


def _is_module(model) -> bool:
    from torch import nn

    return isinstance(model, nn.Module)


def _check_model_arg(model) -> None:
    if isinstance(model, str) or _is_module(model):
        return
    raise EdgesliceError(f"model must be an nn.Module, a zoo name like 'alexnet' or 'path/to/file.py:factory', "
                         f"not {type(model).__name__}")


def _plan_of(plan) -> "Plan":
    from edgeslice.plan.plan import Plan

    if isinstance(plan, Plan):
        return plan
    if isinstance(plan, (str, os.PathLike)):
        return Plan.load(plan)
    raise EdgesliceError(f"plan must be a Plan or the path of a plan file, not {type(plan).__name__}")


def _from_module(plan: "Plan") -> bool:
    return plan.model.spec.startswith("<module ")


def _graph_for(plan: "Plan", model=None, weights: str | None = None):
    """``(graph, gm)`` for ``plan``: its own model, or ``model`` (a spec or an ``nn.Module``) checked to fit."""
    from edgeslice.execute.check import load_for_plan
    from edgeslice.graph.trace import trace as _trace
    from edgeslice.plan.validate import check_model

    if model is None:
        if _from_module(plan):
            raise EdgesliceError(f"the plan was made from an in-memory {plan.model.spec}, which cannot be rebuilt "
                                 "from the plan: pass the module again with model=")
        return load_for_plan(plan, None, weights)
    _check_model_arg(model)
    if _is_module(model):
        graph, gm = _trace(model, plan.model.input_shape, plan.model.batch, weights)
        check_model(plan, graph)
        return graph, gm
    return load_for_plan(plan, model, weights)


def _cluster_for(plan: "Plan", cluster) -> "Cluster":
    """The cluster to simulate ``plan`` on: ``cluster`` (name, path or Cluster, checked against the plan), else the plan's."""
    from edgeslice.cli._common import _cluster_for_plan
    from edgeslice.cluster.model import Cluster

    if cluster is None or isinstance(cluster, Cluster):
        return _cluster_for_plan(plan, cluster)
    if not isinstance(cluster, (str, os.PathLike)):
        raise EdgesliceError(f"cluster must be a bundled name, a YAML path or a Cluster, not {type(cluster).__name__}")
    return _cluster_for_plan(plan, str(cluster))


def _positive(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise EdgesliceError(f"{name} must be a positive integer, not {v!r}")
    return v


# ------------------------------------------------------------------ the API


def trace(model: "str | nn.Module", input_shape: tuple[int, ...] | None = None, batch: int = 1,
          weights: str | None = None, *, example_input: "Tensor | None" = None) -> tuple["LayerGraph", Any]:
    """Trace ``model`` into a LayerGraph; return ``(graph, graph_module)`` (the GraphModule holds the weights).

    ``model`` is a zoo name, a ``file.py:factory`` spec or an ``nn.Module``
    (switched to eval mode; give ``input_shape`` ``(C, H, W)`` or an
    ``example_input`` tensor ``(N, C, H, W)``, which sets the batch too).
    Without ``input_shape`` a spec is traced at its default input.
    ``weights`` is a state-dict file for a spec.

    >>> import edgeslice
    >>> g, gm = edgeslice.trace("alexnet", (3, 96, 96))
    >>> g.layers[0].kind, g.layers[0].out_shape
    ('conv', (64, 23, 23))
    """
    from edgeslice.graph.trace import trace as _trace

    _check_model_arg(model)
    input_shape, batch = _shape_of(input_shape, batch, example_input)
    if input_shape is None and _is_module(model):
        raise EdgesliceError(f"model is an nn.Module ({type(model).__name__}): give input_shape=(C, H, W) "
                             "or example_input=torch.randn(1, C, H, W)")
    return _trace(model, input_shape, batch, weights)


def load_cluster(spec: "str | os.PathLike | Cluster") -> "Cluster":
    """The cluster named by ``spec``: a bundled name (``local4``, ``pi4x4``, ...), a YAML file, or a Cluster (as is).

    >>> import edgeslice
    >>> c = edgeslice.load_cluster("local4")
    >>> c.name, len(c.devices)
    ('local4', 4)
    """
    from edgeslice.cluster.load import resolve_cluster
    from edgeslice.cluster.model import Cluster

    if isinstance(spec, Cluster):
        return spec
    if not isinstance(spec, (str, os.PathLike)):
        raise EdgesliceError(f"cluster must be a bundled name, a YAML path or a Cluster, not {type(spec).__name__}")
    return resolve_cluster(spec)


def plan(model: "str | nn.Module", cluster: "str | os.PathLike | Cluster | None" = None, planner: str = "random", *,
         input_shape: tuple[int, ...] | None = None, batch: int = 1, devices: int | None = None,
         weights: str | None = None, example_input: "Tensor | None" = None, **options: Any) -> "Plan":
    """Make a Plan for ``model`` on ``cluster`` with ``planner`` (like ``edgeslice plan``).

    ``model`` as in :func:`trace`; ``cluster`` a bundled name, YAML path or
    Cluster, or None for ``devices`` identical devices (default 4, like the
    command).  ``options`` go to the planner as they are (``seed=3``,
    ``n=2, m=2``, ...; see ``edgeslice planners``).  Save the result with
    ``plan.save("p.json")`` to use it from the command line.

    >>> import edgeslice
    >>> p = edgeslice.plan("alexnet", planner="random", input_shape=(3, 96, 96), devices=2, seed=0)
    >>> p.planner, p.devices, p.model.spec
    ('random', ('d0', 'd1'), 'alexnet')
    """
    from dataclasses import replace

    from edgeslice.planners import make_plan

    if not isinstance(planner, str):
        raise EdgesliceError(f"planner must be a planner name like 'aofl' (see `edgeslice planners`), not {type(planner).__name__}")
    if devices is not None:
        _positive("devices", devices)
    graph, _ = trace(model, input_shape, batch, weights, example_input=example_input)
    cl = None if cluster is None else load_cluster(cluster)
    if cl is None:
        devices = devices or 4
    elif devices is not None and devices != len(cl.devices):
        raise EdgesliceError(f"devices={devices} disagrees with cluster {cl.name!r}, which has {len(cl.devices)}; give one of them")
    result = make_plan(planner, graph, cl, devices=devices, **options)
    if weights:
        result = replace(result, model=replace(result.model, weights=str(weights)))
    return result


def simulate(plan: "Plan | str | os.PathLike", cluster: "str | os.PathLike | Cluster | None" = None, *,
             requests: int = 1, interval: float = 0.0, model: "str | nn.Module | None" = None) -> Result:
    """Predict ``plan``'s timeline (like ``edgeslice simulate --json``).

    ``cluster`` defaults to the plan's, else identical devices; ``requests``
    arrive ``interval`` seconds apart.  Returns a :class:`Result`: the
    dict ``simulate --json`` prints (``predicted_latency_s``, ``cluster``
    (its name), ``latency_s``, ``latencies_s``, ``makespan_s``,
    ``throughput_rps``, ``per_device``, ``per_link``, ``bytes_total``,
    ``resident_mb``) with
    attributes ``timeline`` (the :class:`~edgeslice.sim.simulate.Timeline`),
    ``program`` and ``cluster``.  ``model``: the module of a plan made from
    one, or a spec to use instead of the plan's (it must match).

    >>> import edgeslice
    >>> p = edgeslice.plan("alexnet", planner="random", input_shape=(3, 96, 96), devices=2, seed=0)
    >>> r = edgeslice.simulate(p, requests=3, interval=0.01)
    >>> len(r["latencies_s"]), len(r.timeline.arrivals)
    (3, 3)
    """
    from edgeslice.cost import ClusterCost
    from edgeslice.program.lower import lower
    from edgeslice.program.memory import resident_mb
    from edgeslice.sim import simulate as _simulate

    p = _plan_of(plan)
    _positive("requests", requests)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not math.isfinite(interval) or interval < 0:
        raise EdgesliceError(f"interval must be a finite number of seconds at least 0, not {interval!r}")
    graph, _ = _graph_for(p, model)
    cl = _cluster_for(p, cluster)
    program = lower(p, graph)
    tl = _simulate(program, graph, cl, ClusterCost(cl), arrivals=tuple(i * float(interval) for i in range(requests)))
    summary = tl.summary()
    summary["resident_mb"] = resident_mb(program, graph)
    return Result({"predicted_latency_s": summary["latency_s"], "cluster": cl.name, **summary},
                  timeline=tl, program=program, cluster=cl)


def check(plan: "Plan | str | os.PathLike", *, model: "str | nn.Module | None" = None, weights: str | None = None,
          seed: int = 0) -> dict:
    """Run ``plan`` in-process and the whole model on one random input; compare (``edgeslice check --json``).

    Returns ``ok`` (``rel_err`` ≤ 1e-5), ``max_abs_err``, ``rel_err``,
    ``flops_model``, ``flops_program``, ``halo_flops``, ``bytes_transferred``,
    ``transfers``, ``segments``, ``parts``, ``model``, ``input``, ``batch``.

    >>> import edgeslice
    >>> p = edgeslice.plan("alexnet", planner="random", input_shape=(3, 96, 96), devices=2, seed=0)
    >>> r = edgeslice.check(p)
    >>> r["ok"], r["flops_program"] >= r["flops_model"]
    (True, True)
    """
    from edgeslice.execute.check import check_plan

    p = _plan_of(plan)
    graph, gm = _graph_for(p, model, weights)
    return check_plan(p, graph=graph, gm=gm, seed=seed)


def run(plan: "Plan | str | os.PathLike", *, cluster: "str | os.PathLike | None" = None, requests: int = 1,
        inflight: int = 1, timeout: float = 30.0, seed: int = 0, threads: int | None = None,
        out: "str | os.PathLike | None" = None, port: int | None = None, overlap: bool = False) -> Result:
    """Run ``plan`` for real on one local worker process per device (``edgeslice run --json``).

    The workers exchange tensors over torch.distributed (gloo) on loopback;
    ``inflight`` requests are pipelined (with ``overlap``, a device waiting
    for one request's data runs a later one's ready tasks), a worker waits at most ``timeout``
    seconds for data.  ``cluster`` (a bundled name or YAML path, which the
    workers load) defaults to the plan's.  A Plan object is written to a
    temporary file for the workers.  Returns a :class:`Result`: ``ok``,
    ``rel_err``, ``latency_s`` (measured), ``predicted_latency_s``,
    ``throughput_rps``, bytes and memory per device, ...; attributes
    ``measured`` and ``predicted`` (Timelines) and ``outdir`` (worker logs,
    reports, outputs; a temporary folder unless ``out`` is given).

    >>> import edgeslice
    >>> p = edgeslice.plan("alexnet", planner="random", input_shape=(3, 64, 64), devices=2, seed=0)
    >>> import shutil
    >>> r = edgeslice.run(p, timeout=60)
    >>> r["ok"], r["devices"]
    (True, ['d0', 'd1'])
    >>> shutil.rmtree(r.outdir)  # the run's temporary folder is the caller's to keep or remove
    """
    from edgeslice.cluster.model import Cluster
    from edgeslice.plan.plan import Plan
    from edgeslice.runtime.launch import collect, launch

    if isinstance(cluster, Cluster):
        raise EdgesliceError("run needs the cluster as a bundled name or a YAML path (the workers load it), not a Cluster object")
    if cluster is not None and not isinstance(cluster, (str, os.PathLike)):
        raise EdgesliceError(f"cluster must be a bundled name or a YAML path, not {type(cluster).__name__}")
    _positive("requests", requests)
    _positive("inflight", inflight)
    if threads is not None:
        _positive("threads", threads)
    p = _plan_of(plan)
    if _from_module(p):
        raise EdgesliceError(f"the plan was made from an in-memory {p.model.spec}, which the worker processes cannot "
                             "rebuild: put it in a file.py with a factory and plan model='file.py:factory'")
    cl = None if cluster is None else str(cluster)
    with tempfile.TemporaryDirectory(prefix="edgeslice-plan-") as tmp:
        if isinstance(plan, Plan):
            path = str(Path(tmp) / "plan.json")
            p.save(path)
        else:
            path = str(plan)
        outdir = launch(path, cluster=cl, requests=requests, inflight=inflight, timeout=timeout, seed=seed,
                        out=None if out is None else str(out), port=port, threads=threads, overlap=overlap)
        res = collect(path, outdir, cluster=cl, requests=requests, seed=seed)
    measured, predicted = res.pop("_timelines")
    return Result(res, measured=measured, predicted=predicted, outdir=Path(outdir))
