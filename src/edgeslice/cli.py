"""The ``edgeslice`` command line.

Every command that takes a plan file needs nothing else: the plan names its
model, input and batch.  User errors (an :class:`~edgeslice.errors.EdgesliceError`)
print one line on stderr and exit with status 2; ``check`` exits 1 when the
partitioned output differs from the model's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from edgeslice.errors import EdgesliceError


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"input shape {text!r} must look like 3x224x224") from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"input shape {text!r} must have positive sizes, like 3x224x224")
    return dims


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return v


def _console():
    from rich.console import Console

    con = Console()
    if not con.is_terminal:  # piped or captured: do not squeeze tables into 80 columns
        con = Console(width=160)
    return con


# ---- commands ------------------------------------------------------------

def cmd_models(args) -> int:
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


def cmd_planners(args) -> int:
    from edgeslice.planners import PLANNERS

    for p in PLANNERS.values():
        print(f"{p.name:14s} {p.summary}")
    return 0


def cmd_plan(args) -> int:
    from edgeslice.graph.trace import trace
    from edgeslice.planners import make_plan

    t0 = time.perf_counter()
    graph, _ = trace(args.model, args.input, args.batch, args.weights)
    opts = {"seed": args.seed} if args.planner == "random" else {}
    plan = make_plan(args.planner, graph, devices=args.devices, **opts)
    if args.weights:
        from dataclasses import replace

        plan = replace(plan, model=replace(plan.model, weights=args.weights))
    planning = time.perf_counter() - t0
    plan.save(args.output)
    if args.json:
        print(json.dumps({"planner": args.planner, "plan": args.output, "segments": len(plan.segments),
                          "planning_time_s": planning}))
    else:
        cuts = ", ".join(f"{s.cut}×{len(s.parts)}" for s in plan.segments)
        print(f"wrote {args.output}: {graph.spec} {'x'.join(map(str, graph.input_shape))} batch {graph.batch}, "
              f"{len(plan.segments)} segments ({cuts}) over {len(plan.devices)} devices")
    return 0


def cmd_show(args) -> int:
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


def cmd_check(args) -> int:
    from edgeslice.execute.check import check_plan
    from edgeslice.plan.plan import Plan

    plan = Plan.load(args.plan)
    res = check_plan(plan, model=args.model, weights=args.weights, seed=args.seed)
    if args.json:
        print(json.dumps(res))
    else:
        verdict = "OK" if res["ok"] else "MISMATCH"
        print(f"{verdict}: rel_err {res['rel_err']:.2e} (max abs {res['max_abs_err']:.2e}); FLOPs program "
              f"{res['flops_program']:,} vs model {res['flops_model']:,}; {res['bytes_transferred']:,} bytes transferred")
    return 0 if res["ok"] else 1


# ---- parser --------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edgeslice", description="Partition CNN inference over heterogeneous edge devices.")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list the model zoo")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_models)

    p = sub.add_parser("planners", help="list the planners")
    p.set_defaults(fn=cmd_planners)

    p = sub.add_parser("plan", help="make a plan and write it to a JSON file")
    p.add_argument("--model", required=True, help="zoo name, path/to/file.py:factory or package.module:factory")
    p.add_argument("--input", type=_shape, default=None, help="input shape CxHxW (default: the model's)")
    p.add_argument("--batch", type=_positive, default=1)
    p.add_argument("--weights", default=None, help="state_dict file to load (default: random weights)")
    p.add_argument("--planner", default="random")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--devices", type=_positive, default=4, help="N identical devices d0..dN-1")
    p.add_argument("-o", "--output", default="plan.json")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_plan)

    p = sub.add_parser("show", help="describe a plan: layers, regions, devices, FLOPs and bytes per part")
    p.add_argument("plan")
    p.add_argument("--model", default=None, help="use this model instead of the plan's (it must match)")
    p.add_argument("--program", action="store_true", help="print the lowered Program in its text form")
    p.set_defaults(fn=cmd_show)

    p = sub.add_parser("check", help="run the plan in-process and compare with the whole model")
    p.add_argument("plan")
    p.add_argument("--model", default=None, help="use this model instead of the plan's (it must match)")
    p.add_argument("--weights", default=None)
    p.add_argument("--seed", type=int, default=0, help="seed of the random input")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_check)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "input", None) is None and hasattr(args, "input") and getattr(args, "model", None):
        from edgeslice.models import model_info

        try:
            args.input = model_info(args.model).default_input
        except EdgesliceError as exc:
            print(f"edgeslice: error: {exc}", file=sys.stderr)
            return 2
    try:
        return args.fn(args)
    except EdgesliceError as exc:
        print(f"edgeslice: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgeslice: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
