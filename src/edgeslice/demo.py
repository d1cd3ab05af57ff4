"""``make demo``: plan, show and check a partitioned VGG-16 — what edgeslice is for, in under two minutes.

It traces VGG-16, cuts it over four devices the way the fused-tile methods do
(2×2 grids over fused blocks of convolutional layers, with halos; the classifier split by
channels and by input features), shows where every piece runs and what it
costs, writes the plan and its Program, and checks that the partitioned model
computes the same output as the whole one.  Until the runtime lands, the
devices are simulated in one process; the checks are real.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch


def main(out_dir: str = "out/demo") -> int:
    from edgeslice.cli import _console
    from edgeslice.cli import main as cli
    from edgeslice.execute.check import check_plan
    from edgeslice.graph.trace import trace
    from edgeslice.plan import ModelRef, Part, Plan, Segment
    from edgeslice.program import lower

    con = _console()
    torch.set_num_threads(2)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    con.rule("[bold]edgeslice demo: VGG-16 over four devices")
    graph, gm = trace("vgg16", (3, 224, 224))
    con.print(f"traced vgg16: {len(graph.layers)} layers, {graph.flops / 1e9:.1f} GFLOPs, "
              f"{graph.param_bytes / 1e6:.0f} MB of weights (fingerprint {graph.fingerprint})")
    names = [l.name for l in graph.layers]
    devs = ("d0", "d1", "d2", "d3")
    pools = [i for i, l in enumerate(graph.layers) if l.kind == "maxpool"]
    fc = [i for i, l in enumerate(graph.layers) if l.kind == "linear"]

    def grid(first: int, last: int) -> Segment:
        """A 2×2 grid over layers first..last, one tile per device."""
        _, h, w = graph.layers[last].out_shape
        tiles = tuple(Part(devs[2 * i + j], rows=r, cols=c)
                      for i, r in enumerate(((0, h // 2), (h // 2, h))) for j, c in enumerate(((0, w // 2), (w // 2, w))))
        return Segment(names[first], names[last], "spatial", tiles)

    def tail(first: int) -> list[Segment]:
        return [
            Segment(names[first], names[fc[0] - 1], "whole", (Part("d0"),)),
            Segment(names[fc[0]], names[fc[0]], "channel", tuple(Part(d, channels=(1024 * k, 1024 * (k + 1))) for k, d in enumerate(devs))),
            Segment(names[fc[0] + 1], names[fc[1] - 1], "whole", (Part("d0"),)),
            Segment(names[fc[1]], names[fc[1]], "input", tuple(Part(d, inputs=(1024 * k, 1024 * (k + 1))) for k, d in enumerate(devs))),
            Segment(names[fc[1] + 1], names[-1], "whole", (Part("d0"),)),
        ]

    ref = ModelRef("vgg16", graph.input_shape, 1, graph.fingerprint)
    # Fusing more layers into one tiled block saves exchanges but grows halos: show the trade-off.
    from rich.table import Table

    trade = Table(title="fused 2×2 tiling of VGG-16's conv layers: depth vs halo", box=None)
    for col in ("fused blocks", "halo recomputation", "bytes moved"):
        trade.add_column(col, justify="right")
    choices = {
        "1 block of 18 layers": [(0, pools[4])],
        "2 blocks (to pool2, to pool5)": [(0, pools[1]), (pools[1] + 1, pools[4])],
        "4 blocks (one per pooling stage)": [(0, pools[1]), (pools[1] + 1, pools[2]), (pools[2] + 1, pools[3]), (pools[3] + 1, pools[4])],
    }
    for label, blocks in choices.items():
        p = Plan(ref, devs, "d0", "d0", tuple([grid(a, b) for a, b in blocks] + tail(pools[4] + 1)))
        prog = lower(p, graph)
        trade.add_row(label, f"{100 * (prog.flops - graph.flops) / graph.flops:.1f} %", f"{prog.bytes_transferred / 1e6:.1f} MB")
    con.print(trade)
    segs = [grid(a, b) for a, b in choices["4 blocks (one per pooling stage)"]] + tail(pools[4] + 1)
    plan = Plan(ref, devs, "d0", "d0", tuple(segs), planner="demo")
    plan_path = out / "vgg16-4dev.json"
    plan.save(plan_path)
    (out / "vgg16-4dev.program.txt").write_text(lower(plan, graph).to_text())
    con.print(f"wrote {plan_path} and its Program ({out / 'vgg16-4dev.program.txt'})\n")
    cli(["show", str(plan_path)])
    con.print()
    res = check_plan(plan, graph=graph, gm=gm)
    verdict = "[green]same output[/]" if res["ok"] else "[red]MISMATCH[/]"
    con.print(f"check: {verdict} as the whole model — rel_err {res['rel_err']:.1e} (max abs {res['max_abs_err']:.1e}); "
              f"{res['bytes_transferred'] / 1e6:.1f} MB moved; halo recomputation "
              f"{100 * res['halo_flops'] / res['flops_model']:.2f} % of {res['flops_model'] / 1e9:.1f} GFLOPs")
    con.print("\nrandom plans mixing every kind of cut (the fuzzer the tests use):")
    from edgeslice.planners import make_plan

    for seed in range(3):
        p = make_plan("random", graph, devices=4, seed=seed)
        r = check_plan(p, graph=graph, gm=gm, seed=seed)
        cuts = ", ".join(f"{s.cut}×{len(s.parts)}" for s in p.segments)
        con.print(f"  seed {seed}: {cuts:48s} rel_err {r['rel_err']:.1e}  {'ok' if r['ok'] else 'MISMATCH'}")
    con.print("\n[bold]which plan is fastest on four Raspberry-Pi-4-class boards sharing one 50 Mbit/s Wi-Fi?[/]")
    cli(["compare", "--model", "vgg16", "--cluster", "pi4x4"])
    from edgeslice.cluster.load import resolve_cluster
    from edgeslice.cost import ClusterCost
    from edgeslice.planners import make_plan as mk
    from edgeslice.sim import simulate
    from edgeslice.viz.gantt import draw

    cluster = resolve_cluster("pi4x4")
    cost = ClusterCost(cluster)
    best = mk("aofl", graph, cluster, cost)
    best.save(out / "vgg16-pi4x4-aofl.json")
    tl = simulate(lower(best, graph), graph, cluster, cost)
    draw([("predicted: aofl on pi4x4", tl)], out / "vgg16-pi4x4-aofl.png")
    res = check_plan(best, graph=graph, gm=gm)
    con.print(f"aofl's plan: predicted {tl.latency_s * 1e3:.0f} ms, timeline in {out / 'vgg16-pi4x4-aofl.png'}; "
              f"check: rel_err {res['rel_err']:.1e} ({'ok' if res['ok'] else 'MISMATCH'})")
    con.print(f"\ndone in {time.perf_counter() - t0:.0f} s. Next: `.venv/bin/edgeslice plan --model resnet50 --devices 3 -o p.json`, "
              "then `edgeslice show p.json` and `edgeslice check p.json`.")
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
