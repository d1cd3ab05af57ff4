"""``edgeslice layers``: a model's layers (the names plans refer to)."""

from __future__ import annotations

import json

from edgeslice.cli._common import (
    _console,
    model_args,
)


def add(sub) -> None:
    p = sub.add_parser("layers", help="list a model's layers (the names plans refer to)")
    model_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=run)


def run(args) -> int:
    from rich.table import Table

    from edgeslice.graph.trace import trace

    graph, _ = trace(args.model, args.input, args.batch, args.weights)
    if args.json:
        print(json.dumps([{"name": l.name, "kind": l.kind, "target": l.target, "inputs": list(l.inputs),
                           "out_shape": list(l.out_shape), "flops": l.flops, "param_bytes": l.param_bytes} for l in graph.layers]))
        return 0
    table = Table(title=f"{graph.spec} {'x'.join(map(str, graph.input_shape))} batch {graph.batch}: {len(graph.layers)} layers",
                  box=None)
    for col in ("#", "layer", "kind", "module/function", "output", "MFLOPs", "reads"):
        table.add_column(col, justify="right" if col in ("#", "MFLOPs") else "left")
    for i, l in enumerate(graph.layers):
        table.add_row(str(i), l.name, l.kind, l.target, "x".join(map(str, l.out_shape)), f"{l.flops / 1e6:.1f}", ", ".join(l.inputs))
    _console().print(table)
    return 0
