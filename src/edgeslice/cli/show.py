"""``edgeslice show``: describe a plan."""

from __future__ import annotations

import sys

from edgeslice.cli._common import (
    _console,
)


def add(sub) -> None:
    p = sub.add_parser("show", help="describe a plan: layers, regions, devices, FLOPs and bytes per part")
    p.add_argument("plan")
    p.add_argument("--model", default=None, help="use this model instead of the plan's (it must match)")
    p.add_argument("--program", action="store_true", help="print the lowered Program in its text form")
    p.set_defaults(fn=run)


def run(args) -> int:
    from rich.table import Table

    from edgeslice.execute.check import load_for_plan
    from edgeslice.plan.plan import Plan
    from edgeslice.program.lower import lower
    from edgeslice.program.regions import fmt

    plan = Plan.load(args.plan)
    graph, _ = load_for_plan(plan, args.model)
    program = lower(plan, graph)
    if args.program:
        sys.stdout.write(program.to_text())
        return 0
    con = _console()
    con.print(f"[bold]{plan.model.spec}[/] input {'x'.join(map(str, plan.model.input_shape))} batch {plan.model.batch} · "
              f"planner {plan.planner} · devices {', '.join(plan.devices)} (source {plan.source}, sink {plan.sink})")
    by_id = {t.id: t for t in program.transfers}
    for si, seg in enumerate(plan.segments):
        a, b = graph.index(seg.first), graph.index(seg.last)
        tasks = [t for t in program.computes if t.segment == si]
        con.print(f"\n[bold]segment {si}[/] · {seg.first}..{seg.last} ({b - a + 1} layers) · "
                  f"[cyan]{seg.cut}[/] · {len(seg.parts)} part{'s' if len(seg.parts) > 1 else ''}")
        table = Table(box=None, padding=(0, 1), show_edge=False)
        for col in ("part", "device", "computes", "reads", "MFLOPs", "KB in"):
            table.add_column(col, justify="right" if col in ("part", "MFLOPs", "KB in") else "left", overflow="fold")
        for t in tasks:
            kb = sum(by_id[p.task].nbytes for n in t.needs for p in n.pieces if p.task in by_id) / 1024
            outs = " ".join(f"{o.tensor}{fmt(o.region)}" + ("(partial)" if o.partial else "") for o in t.outs)
            reads = " ".join(f"{n.tensor}{fmt(n.region)}" for n in t.needs)
            table.add_row(str(t.part), t.device, outs, reads, f"{t.flops / 1e6:.1f}", f"{kb:.1f}")
        con.print(table)
    extra = program.flops - graph.flops
    con.print(f"FLOPs: program {program.flops / 1e9:.3f} G vs model {graph.flops / 1e9:.3f} G "
              f"(+{extra / 1e6:.1f} M halo/group recomputation, {100 * extra / max(graph.flops, 1):.2f}%) · "
              f"{len(program.transfers)} transfers, {program.bytes_transferred / 1e6:.3f} MB moved")
    return 0
