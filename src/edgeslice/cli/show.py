"""``edgeslice show``: describe a plan."""

from __future__ import annotations

import json
import sys

from edgeslice.cli._common import (
    _cluster_for_plan,
    _console,
    _warn_misfits,
)


def add(sub) -> None:
    p = sub.add_parser("show", help="describe a plan: layers, regions, devices, FLOPs and bytes per part")
    p.add_argument("plan")
    p.add_argument("--model", default=None, help="use this model instead of the plan's (it must match)")
    p.add_argument("--program", action="store_true", help="print the lowered Program in its text form")
    p.add_argument("--cluster", default=None, help="show it on this cluster (checked against the plan); default: the plan's own")
    p.add_argument("--json", action="store_true", help="the same description as one JSON object")
    p.set_defaults(fn=run)


def describe(plan, graph, program) -> dict:
    """What ``show`` prints, as a JSON-ready dict: the plan's segments, each part's regions, FLOPs and bytes in.

    Regions are in the Program's text form (``[lo:hi,...]`` per dimension, channels first).
    """
    from edgeslice.program.memory import resident
    from edgeslice.program.regions import fmt

    mem = resident(program, graph)
    by_id = {t.id: t for t in program.transfers}
    segments = []
    for si, seg in enumerate(plan.segments):
        a, b = graph.index(seg.first), graph.index(seg.last)
        parts = []
        for t in (t for t in program.computes if t.segment == si):
            parts.append({
                "part": t.part, "task": t.id, "device": t.device,
                "outs": [{"tensor": o.tensor, "region": fmt(o.region), "partial": o.partial} for o in t.outs],
                "reads": [{"tensor": n.tensor, "region": fmt(n.region)} for n in t.needs],
                "flops": t.flops,
                "bytes_in": sum(by_id[p.task].nbytes for n in t.needs for p in n.pieces if p.task in by_id),
            })
        segments.append({"first": seg.first, "last": seg.last, "layers": b - a + 1, "cut": seg.cut, "parts": parts})
    return {
        "model": plan.model.spec, "input": list(plan.model.input_shape), "batch": plan.model.batch,
        "planner": plan.planner, "devices": list(plan.devices), "source": plan.source, "sink": plan.sink,
        "segments": segments, "flops_program": program.flops, "flops_model": graph.flops,
        "transfers": len(program.transfers), "bytes_moved": program.bytes_transferred,
        "resident_mb": {d: m.total / 1e6 for d, m in mem.items()},
        "resident": {d: {"weights_mb": m.weights / 1e6, "activations_mb": m.activations / 1e6} for d, m in mem.items()},
    }


def run(args) -> int:
    from rich.table import Table

    from edgeslice.execute.check import load_for_plan
    from edgeslice.plan.plan import Plan
    from edgeslice.program.lower import lower

    plan = Plan.load(args.plan)
    cluster = _cluster_for_plan(plan, args.cluster)
    graph, _ = load_for_plan(plan, args.model)
    program = lower(plan, graph)
    _warn_misfits(program, graph, cluster)
    if args.program:
        sys.stdout.write(program.to_text())
        return 0
    d = describe(plan, graph, program)
    d["cluster"] = cluster.name
    if args.json:
        print(json.dumps(d))
        return 0
    con = _console()
    con.print(f"[bold]{d['model']}[/] input {'x'.join(map(str, d['input']))} batch {d['batch']} · "
              f"planner {d['planner']} · devices {', '.join(d['devices'])} (source {d['source']}, sink {d['sink']})")
    con.print(_cluster_line(cluster, plan, bool(args.cluster)), highlight=False)
    for si, seg in enumerate(d["segments"]):
        n = len(seg["parts"])
        con.print(f"\n[bold]segment {si}[/] · {seg['first']}..{seg['last']} ({seg['layers']} layers) · "
                  f"[cyan]{seg['cut']}[/] · {n} part{'s' if n > 1 else ''}")
        table = Table(box=None, padding=(0, 1), show_edge=False)
        for col in ("part", "device", "computes", "reads", "MFLOPs", "KB in"):
            table.add_column(col, justify="right" if col in ("part", "MFLOPs", "KB in") else "left", overflow="fold")
        for part in seg["parts"]:
            outs = " ".join(f"{o['tensor']}{o['region']}" + ("(partial)" if o["partial"] else "") for o in part["outs"])
            reads = " ".join(f"{r['tensor']}{r['region']}" for r in part["reads"])
            table.add_row(str(part["part"]), part["device"], outs, reads, f"{part['flops'] / 1e6:.1f}",
                          f"{part['bytes_in'] / 1024:.1f}")
        con.print(table)
    extra = d["flops_program"] - d["flops_model"]
    con.print(f"FLOPs: program {d['flops_program'] / 1e9:.3f} G vs model {d['flops_model'] / 1e9:.3f} G "
              f"(+{extra / 1e6:.1f} M halo/group recomputation, {100 * extra / max(d['flops_model'], 1):.2f}%) · "
              f"{d['transfers']} transfers, {d['bytes_moved'] / 1e6:.3f} MB moved")
    con.print("resident (predicted: weights share + largest working set): " + ", ".join(
        f"{name} {mb:.1f} MB of {cluster.device(name).memory_mb:g}" for name, mb in d["resident_mb"].items()), highlight=False)
    return 0


def _cluster_line(cluster, plan, overridden: bool) -> str:
    """One line: the cluster's name, where it came from, each device's speed, the links."""
    if overridden:
        origin = "from --cluster"
    elif plan.cluster is not None:
        origin = "the plan's own"
    else:
        origin = "identical devices: the plan carries no cluster"
    devs = []
    for name in plan.devices:
        dv = cluster.device(name)
        bits = [f"{dv.gflops:g} GFLOP/s"]
        if dv.cpus:
            bits.append(f"{dv.cpus:g} CPU")
        if dv.cpu_load:
            bits.append(f"load {dv.cpu_load:g}")
        if dv.profile_data is not None or dv.profile:
            bits.append("profiled")
        devs.append(f"{name} {' '.join(bits)}")
    link = cluster.default_link
    extra = f" (+{len(cluster.overrides)} override{'s' if len(cluster.overrides) > 1 else ''})" if cluster.overrides else ""
    return (f"cluster {cluster.name} ({origin}): {', '.join(devs)} · links {link.bandwidth_mbps:g} Mbit/s, "
            f"{link.latency_ms:g} ms{extra}" + (" over one shared medium" if cluster.medium == "shared" else "")
            + (" · bandwidth trace" if cluster.bandwidth_trace else ""))
