"""``edgeslice models``: the model zoo."""

from __future__ import annotations

import json

from edgeslice.cli._common import (
    _console,
)


def add(sub) -> None:
    p = sub.add_parser("models", help="list the model zoo")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=run)


def run(args) -> int:
    from rich.table import Table

    from edgeslice.graph.trace import trace
    from edgeslice.models import zoo_names
    from edgeslice.models.zoo import ZOO

    table = Table(title="edgeslice model zoo (batch 1)")
    for col in ("model", "input", "GFLOPs", "params (M)", "layers", "description"):
        table.add_column(col, justify="right" if col in ("GFLOPs", "params (M)", "layers") else "left")
    rows = []
    for name in zoo_names():
        e = ZOO[name]
        g, gm = trace(name, e.input_shape)
        params = sum(p.numel() for p in gm.parameters())
        rows.append({"model": name, "input": list(e.input_shape), "flops": g.flops, "params": params,
                     "layers": len(g.layers), "description": e.description})
        table.add_row(name, "x".join(map(str, e.input_shape)), f"{g.flops / 1e9:.2f}", f"{params / 1e6:.2f}",
                      str(len(g.layers)), e.description)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _console().print(table)
    return 0
