"""``check``: run a plan's Program in-process and the whole model on the same input, and compare.

Example::

    >>> from edgeslice.graph import trace
    >>> from edgeslice.planners import make_plan
    >>> g, gm = trace("alexnet", (3, 96, 96))
    >>> r = check_plan(make_plan("random", g, devices=2, seed=0), graph=g, gm=gm)
    >>> r["ok"]
    True
"""

from __future__ import annotations

import torch

from edgeslice.execute.inprocess import run_program
from edgeslice.execute.kernels import Kernels
from edgeslice.plan.plan import Plan
from edgeslice.plan.validate import check_model
from edgeslice.program.lower import lower

REL_TOL = 1e-5


def load_for_plan(plan: Plan, model: str | None = None, weights: str | None = None, *, meta: bool = False):
    """Trace the model a plan names (or ``model`` instead, to check it fits); return (graph, gm).

    With ``meta=True`` the GraphModule's parameters are on the meta device (no weights built or loaded).
    """
    from edgeslice.graph.trace import trace

    spec = model or plan.model.spec
    if model is None:
        from edgeslice.models import check_source

        check_source(spec, plan.model.source)  # the code a plan names is what was planned, or it is refused
    graph, gm = trace(spec, plan.model.input_shape, plan.model.batch, weights or plan.model.weights, meta=meta)
    check_model(plan, graph)
    return graph, gm


def _shape(graph) -> str:
    return "x".join(map(str, (graph.batch, *graph.input_shape)))


@torch.no_grad()
def check_plan(plan: Plan, *, graph=None, gm=None, model: str | None = None, weights: str | None = None,
               seed: int = 0, reference: torch.Tensor | None = None, x: torch.Tensor | None = None) -> dict:
    """Compare the partitioned execution with the whole model; return the figures as a dict."""
    if graph is None:
        graph, gm = load_for_plan(plan, model, weights)
    program = lower(plan, graph)
    from edgeslice.program.memory import host_bytes, require_host_memory

    require_host_memory(host_bytes(program, graph), f"checking {graph.spec} at input {_shape(graph)} in one process")
    if x is None:
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn((graph.batch, *graph.input_shape), generator=gen)
    against = "the whole model"
    if reference is not None:
        ref = reference
    elif graph.spec.lower().endswith(".onnx"):  # the ONNX file itself, run by onnxruntime
        from edgeslice.models.onnx import run_onnxruntime

        ref, against = run_onnxruntime(graph.spec, x), "onnxruntime"
    else:
        ref = gm(x)
    out = run_program(program, graph, Kernels(graph, gm), x)
    max_abs = float((out - ref).abs().max())
    scale = float(ref.abs().max())
    rel = max_abs / scale if scale > 0 else max_abs
    return {
        "model": graph.spec,
        "input": list(graph.input_shape),
        "batch": graph.batch,
        "segments": len(plan.segments),
        "parts": sum(len(s.parts) for s in plan.segments),
        "max_abs_err": max_abs,
        "rel_err": rel,
        "reference": against,
        "flops_model": graph.flops,
        "flops_program": program.flops,
        "halo_flops": program.flops - graph.flops,
        "bytes_transferred": program.bytes_transferred,
        "transfers": len(program.transfers),
        "ok": rel <= REL_TOL,
    }
