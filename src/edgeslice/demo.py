"""``make demo``: what edgeslice is for, in under two minutes.

1. trace VGG-16 and compare every planner on a built-in 4-device local cluster
   (``local4``: four 10-GFLOPS devices on a 1 Gbit/s loopback);
2. take the best plan, show where every piece runs, and draw its predicted
   timeline;
3. check it in-process against the whole model;
4. run it for real — four worker processes exchanging tensors over
   torch.distributed — verify the output, and print predicted vs measured
   latency and the speedup over one process running the whole model.

This machine has 2 cores, so four workers share them; the measured speedup is
what these cores give, and the predicted one what four real devices would.
(`edgeslice testbed` emulates real devices with per-device CPU quotas and shaped links.)
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch


def main(out_dir: str = "out/demo") -> int:
    from rich.table import Table

    from edgeslice.cli import main as cli
    from edgeslice.cli._common import _console
    from edgeslice.cluster.load import resolve_cluster
    from edgeslice.cost import ClusterCost
    from edgeslice.execute.check import check_plan
    from edgeslice.graph.trace import trace
    from edgeslice.planners.compare import best, compare
    from edgeslice.program import lower
    from edgeslice.runtime.launch import collect, launch
    from edgeslice.sim import simulate
    from edgeslice.viz.gantt import draw

    con = _console()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    con.rule("[bold]edgeslice demo: VGG-16 over four devices")
    graph, gm = trace("vgg16", (3, 224, 224))
    con.print(f"traced vgg16: {len(graph.layers)} layers, {graph.flops / 1e9:.1f} GFLOPs, "
              f"{graph.param_bytes / 1e6:.0f} MB of weights\n")

    # 1. every planner on the built-in 4-device cluster, each planned once
    cluster = resolve_cluster("local4")
    cost = ClusterCost(cluster)
    results = compare(graph, cluster, cost)
    local_t = results["local"].latency_s
    table = Table(title=f"vgg16 3x224x224 on {cluster.name} ({len(cluster.devices)} devices)")
    for col in ("planner", "predicted ms", "speedup vs local", "MB moved", "segments", "planning s"):
        table.add_column(col, justify="left" if col == "planner" else "right")
    won = best(results)
    for r in results.values():
        if r.ok:
            mark = "[bold green]" if r is won else ""
            table.add_row(r.planner, f"{mark}{r.latency_s * 1e3:.1f}", f"{local_t / r.latency_s:.2f}×",
                          f"{r.bytes_moved / 1e6:.2f}", str(len(r.plan.segments)), f"{r.planning_s:.2f}")
    con.print(table)
    for r in results.values():
        if not r.ok:
            con.print(f"  {r.planner} refused: {r.error}", highlight=False)
    best_name, best_plan, best_t = won.planner, won.plan, won.latency_s
    plan_path = out / f"vgg16-local4-{best_name}.json"
    best_plan.save(plan_path)
    con.print(f"\nbest plan: [bold]{best_name}[/], predicted {best_t * 1e3:.0f} ms "
              f"({local_t / best_t:.2f}× faster than one device) → {plan_path}\n")

    # 2. where every piece runs, and the predicted timeline
    cli(["show", str(plan_path)])
    program = lower(best_plan, graph)
    predicted = simulate(program, graph, cluster, cost)
    draw([(f"predicted: {best_name} on local4", predicted)], out / "predicted.png")

    # 3. in-process check
    res = check_plan(best_plan, graph=graph, gm=gm)
    con.print(f"\nin-process check: rel_err {res['rel_err']:.1e} ({'same output' if res['ok'] else 'MISMATCH'}); "
              f"{res['bytes_transferred'] / 1e6:.1f} MB moved; halo recomputation "
              f"{100 * res['halo_flops'] / res['flops_model']:.1f} % of the FLOPs")

    # 4. for real: four worker processes over torch.distributed (gloo)
    requests = 3
    con.print(f"\nrunning it on {len(best_plan.devices)} worker processes ({requests} requests)...")
    run_dir = launch(str(plan_path), requests=requests, timeout=120, out=str(out / "run"))
    run = collect(str(plan_path), run_dir, requests=requests)
    measured, predicted_runs = run.pop("_timelines")
    draw([("measured", measured), ("predicted", predicted_runs)], out / "measured-vs-predicted.png")
    torch.set_num_threads(1)  # one worker's share, to compare like with like
    x = torch.randn(1, 3, 224, 224)
    single = []
    with torch.no_grad():
        for _ in range(3):
            t = time.perf_counter()
            gm(x)
            single.append(time.perf_counter() - t)
    one = statistics.median(single)
    ok = run["ok"]
    con.print(f"distributed output: {'[green]same as the whole model[/]' if ok else '[red]MISMATCH[/]'} "
              f"(rel_err {run['rel_err']:.1e} over {requests} requests)")
    con.print(f"latency: predicted {run['predicted_latency_s'] * 1e3:.0f} ms, measured {run['latency_s'] * 1e3:.0f} ms (median); "
              f"one process, whole model, 1 thread: {one * 1e3:.0f} ms → measured speedup {one / run['latency_s']:.2f}× "
              f"(predicted {local_t / best_t:.2f}× on four real devices; this machine has 2 cores)")
    for d in run["devices"]:
        con.print(f"  {d}: weights {run['weights_mb'][d]:.0f} MB, sent {run['bytes_sent'][d] / 1e6:.2f} MB, "
                  f"received {run['bytes_received'][d] / 1e6:.2f} MB")
    con.print(f"timelines: {out / 'predicted.png'}, {out / 'measured-vs-predicted.png'}")
    con.print(f"\ndone in {time.perf_counter() - t0:.0f} s. Try: `.venv/bin/edgeslice compare --model resnet50 --cluster pi4x4`, "
              "`edgeslice plan ... -o p.json`, `edgeslice run p.json --gantt t.png`.")
    return 0 if (ok and res["ok"]) else 1


if __name__ == "__main__":
    sys.exit(main())
