"""``edgeslice bench fl``: FL + PSOMW against its baselines over models, bandwidths, speed ratios and edge servers.

Each instance is one model on one IoT cluster: the device ``iot``
(``device_gflops``) and one or two edge servers (``edge0`` at ``ratio ×`` the
device's speed, ``edge1`` at half of that), each server reached over its own
link at the instance's bandwidth with 2 ms latency, the servers wired to each
other at 1 Gbit/s (0.5 ms), the image appearing on and the answer wanted at
the device.  Every method's plan is scored the same way — lower + simulate
(:func:`~edgeslice.planners._shared.common.evaluate`) — so the numbers are comparable;
planning time is wall-clock time of the planner call on a graph whose region
analysis is memoised across the instances of one model (the first instance
of each model pays for it; ``resnet50_cold_planning_s`` is measured on a fresh
trace).

``fl-bf`` runs where its exhaustive enumeration stays under ``bf_limit``
assignment evaluations; ``fl-dp`` (the same optimum by symmetry classes) runs
where ``exact=True`` and gives the exact reference on the other instances.
"""

from __future__ import annotations

import statistics
import time

MODELS = {"vgg16": (3, 224, 224), "resnet50": (3, 224, 224), "yolov2": (3, 416, 416), "alexnet": (3, 224, 224),
          "mobilenet_v2": (3, 224, 224)}
BANDWIDTHS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
RATIOS = (20.0, 100.0)
SERVERS = (1, 2)
BASELINES = ("local", "edge", "neurosurgeon", "nfl")
QUICK = dict(models={"alexnet": (3, 224, 224), "vgg16": (3, 224, 224)}, bandwidths=(1.0, 10.0, 100.0), ratios=(50.0,),
             servers=(1, 2))


def iot_cluster(bandwidth_mbps: float, ratio: float, servers: int, device_gflops: float = 3.0):
    """The instance's cluster: ``iot`` plus ``servers`` edge servers (see the module docstring)."""
    from edgeslice.cluster.model import Cluster, Device, Link

    devs = (Device("iot", device_gflops),) + tuple(Device(f"edge{e}", device_gflops * ratio / (1 + e)) for e in range(servers))
    name = f"fl-bw{bandwidth_mbps:g}-r{ratio:g}-e{servers}"
    backhaul = tuple((frozenset((f"edge{a}", f"edge{b}")), Link(1000.0, 0.5))
                     for a in range(servers) for b in range(a + 1, servers))
    return Cluster(name, devs, Link(bandwidth_mbps, 2.0), overrides=backhaul, source="iot", sink="iot")


def _bf_work(space) -> float:
    D, U = space.D, space.U
    work = 0.0
    for i, j in space.blocks():
        for lay in space.layouts:
            if space.fits(j, lay):
                work += D ** (lay[0] * lay[1]) * (D if j < U else 1)
    return work


def run_instance(graph, cluster, *, bf_limit: float, exact: bool, swarm: int, iterations: int, seed: int) -> dict:
    from edgeslice.cost import ClusterCost
    from edgeslice.planners import make_plan
    from edgeslice.planners._shared.common import evaluate
    from edgeslice.planners.fl.exact import _space, exact_solve
    from edgeslice.planners.fl.swarm import dpls_solve, psomw_solve

    cost = ClusterCost(cluster)
    row: dict = {"model": graph.spec, "input": list(graph.input_shape), "bandwidth_mbps": cluster.default_link.bandwidth_mbps,
                 "ratio": cluster.devices[1].gflops / cluster.devices[0].gflops, "servers": len(cluster.devices) - 1,
                 "latency_s": {}, "planning_s": {}}
    for name in BASELINES:
        t0 = time.perf_counter()
        plan = make_plan(name, graph, cluster, cost)
        row["planning_s"][name] = time.perf_counter() - t0
        row["latency_s"][name] = evaluate(plan, graph, cluster, cost)
    t0 = time.perf_counter()
    res = psomw_solve(_space(graph, cluster, cost), swarm=swarm, iterations=iterations, seed=seed)
    row["planning_s"]["fl-psomw"] = time.perf_counter() - t0
    row["latency_s"]["fl-psomw"] = evaluate(res.plan, graph, cluster, cost)
    row["psomw_fast_model_s"] = res.fast_time_s
    row["psomw_curve_s"] = res.curve
    row["psomw_evaluations"] = res.evaluations
    row["psomw_blocks"] = [[s.first, s.last, len(s.parts), sorted({p.device for p in s.parts})]
                           for s in res.plan.segments if s.cut == "spatial"]
    t0 = time.perf_counter()
    res = dpls_solve(_space(graph, cluster, cost))
    row["planning_s"]["fl-dpls"] = time.perf_counter() - t0
    row["latency_s"]["fl-dpls"] = evaluate(res.plan, graph, cluster, cost)
    space = _space(graph, cluster, cost)
    work = _bf_work(space)
    row["bf_work"] = work
    if work <= bf_limit:
        t0 = time.perf_counter()
        bf = exact_solve(space, exhaustive=True, planner="fl-bf")
        row["planning_s"]["fl-bf"] = time.perf_counter() - t0
        row["latency_s"]["fl-bf"] = evaluate(bf.plan, graph, cluster, cost)
    if exact:
        t0 = time.perf_counter()
        dp = exact_solve(_space(graph, cluster, cost), exhaustive=False, planner="fl-dp")
        row["planning_s"]["fl-dp"] = time.perf_counter() - t0
        row["latency_s"]["fl-dp"] = evaluate(dp.plan, graph, cluster, cost)
    return row


def summarise(rows: list[dict]) -> dict:
    lat = [r["latency_s"] for r in rows]
    bf = [(l["fl-psomw"], l["fl-bf"]) for l in lat if "fl-bf" in l]
    ex = [(l["fl-psomw"], l["fl-dp"]) for l in lat if "fl-dp" in l]
    gaps_bf = [(p / b - 1) * 100 for p, b in bf]
    gaps_ex = [(p / b - 1) * 100 for p, b in ex]
    out = {
        "instances": len(rows),
        "mean_speedup_vs_nfl": statistics.fmean(l["nfl"] / l["fl-psomw"] for l in lat),
        "max_speedup_vs_nfl": max(l["nfl"] / l["fl-psomw"] for l in lat),
        "mean_speedup_vs_local": statistics.fmean(l["local"] / l["fl-psomw"] for l in lat),
        "mean_speedup_vs_edge": statistics.fmean(l["edge"] / l["fl-psomw"] for l in lat),
        "mean_speedup_vs_neurosurgeon": statistics.fmean(l["neurosurgeon"] / l["fl-psomw"] for l in lat),
        "worst_ratio_vs_nfl": max(l["fl-psomw"] / l["nfl"] for l in lat),
        "instances_fl_beats_nfl": sum(l["fl-psomw"] < l["nfl"] * (1 - 1e-9) for l in lat),
        "bf_instances": len(bf),
        "mean_gap_to_bf_pct": statistics.fmean(gaps_bf) if gaps_bf else None,
        "max_gap_to_bf_pct": max(gaps_bf) if gaps_bf else None,
        "exact_instances": len(ex),
        "mean_gap_to_exact_pct": statistics.fmean(gaps_ex) if gaps_ex else None,
        "max_gap_to_exact_pct": max(gaps_ex) if gaps_ex else None,
        "psomw_planning_time_s": statistics.median(r["planning_s"]["fl-psomw"] for r in rows),
        "psomw_planning_time_max_s": max(r["planning_s"]["fl-psomw"] for r in rows),
    }
    # fl-dpls: the same space without the swarm (count-family structure DP + the local search)
    ds = [(l["fl-dpls"], l["fl-bf"]) for l in lat if "fl-bf" in l]
    out["dpls_mean_gap_to_bf_pct"] = statistics.fmean((p / b - 1) * 100 for p, b in ds) if ds else None
    out["dpls_max_gap_to_bf_pct"] = max((p / b - 1) * 100 for p, b in ds) if ds else None
    out["dpls_mean_speedup_vs_nfl"] = statistics.fmean(l["nfl"] / l["fl-dpls"] for l in lat)
    out["dpls_worst_ratio_vs_nfl"] = max(l["fl-dpls"] / l["nfl"] for l in lat)
    out["dpls_vs_psomw_mean_ratio"] = statistics.fmean(l["fl-dpls"] / l["fl-psomw"] for l in lat)
    for m in ("fl-bf", "fl-dp", "fl-dpls", "nfl", "neurosurgeon"):
        ts = [r["planning_s"][m] for r in rows if m in r["planning_s"]]
        if ts:
            out[f"{m}_planning_time_s"] = statistics.median(ts)
    out["mean_ratio_fast_model_vs_simulator"] = statistics.fmean(r["psomw_fast_model_s"] / r["latency_s"]["fl-psomw"] for r in rows)
    return out


def cold_planning(spec: str = "resnet50", shape=(3, 224, 224), *, swarm: int, iterations: int, seed: int) -> float:
    """Planning time of fl-psomw on a freshly traced model (no memoised region analysis), 10 Mbit/s, ratio 50, one server."""
    from edgeslice.cost import ClusterCost
    from edgeslice.graph import trace
    from edgeslice.planners import make_plan

    g, _ = trace(spec, shape)
    c = iot_cluster(10.0, 50.0, 1)
    t0 = time.perf_counter()
    make_plan("fl-psomw", g, c, ClusterCost(c), swarm=swarm, iterations=iterations, seed=seed)
    return time.perf_counter() - t0


def bench_fl(*, quick: bool = False, models=None, bandwidths=None, ratios=None, servers=None, bf_limit: float = 4e6,
             exact: bool = False, swarm: int = 24, iterations: int = 40, seed: int = 0, chart: str | None = None,
             progress=None) -> dict:
    """Run the sweep; returns ``{"summary": ..., "instances": [...], "config": ...}`` (and draws ``chart``)."""
    from edgeslice.graph import trace

    cfg = dict(QUICK) if quick else dict(models=MODELS, bandwidths=BANDWIDTHS, ratios=RATIOS, servers=SERVERS)
    if models:
        cfg["models"] = {m: MODELS.get(m, (3, 224, 224)) for m in models}
    if bandwidths:
        cfg["bandwidths"] = tuple(bandwidths)
    if ratios:
        cfg["ratios"] = tuple(ratios)
    if servers:
        cfg["servers"] = tuple(servers)
    t_start = time.perf_counter()
    rows = []
    for spec, shape in cfg["models"].items():
        g, _ = trace(spec, shape)
        for e in cfg["servers"]:
            for r in cfg["ratios"]:
                for bw in cfg["bandwidths"]:
                    row = run_instance(g, iot_cluster(bw, r, e), bf_limit=bf_limit, exact=exact, swarm=swarm,
                                       iterations=iterations, seed=seed)
                    rows.append(row)
                    if progress:
                        progress(row)
    summary = summarise(rows)
    summary["resnet50_cold_planning_s"] = cold_planning(swarm=swarm, iterations=iterations, seed=seed)
    summary["wall_s"] = time.perf_counter() - t_start
    config = {"models": {k: list(v) for k, v in cfg["models"].items()}, "bandwidths_mbps": list(cfg["bandwidths"]),
              "ratios": list(cfg["ratios"]), "servers": list(cfg["servers"]), "device_gflops": 3.0, "latency_ms": 2.0,
              "bf_limit": bf_limit, "swarm": swarm, "iterations": iterations, "seed": seed, "quick": quick}
    out = {"summary": summary, "config": config, "instances": rows}
    if chart:
        draw_chart(rows, chart)
        out["chart"] = chart
    return out


def draw_chart(rows: list[dict], path: str) -> None:
    """Predicted inference time against uplink bandwidth: one panel per model (columns) and server count (rows),
    one line per method, at the sweep's middle speed ratio."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    servers = sorted({r["servers"] for r in rows})
    ratio = sorted({r["ratio"] for r in rows})[len({r["ratio"] for r in rows}) // 2]
    methods = ("local", "edge", "neurosurgeon", "nfl", "fl-dpls", "fl-psomw", "fl-bf")
    fig, axes = plt.subplots(len(servers), len(models), figsize=(4.2 * len(models), 3.4 * len(servers)), squeeze=False)
    for row_axes, e in zip(axes, servers):
        for ax, m in zip(row_axes, models):
            sel = sorted((r for r in rows if r["model"] == m and r["servers"] == e and r["ratio"] == ratio),
                         key=lambda r: r["bandwidth_mbps"])
            for meth in methods:
                pts = [(r["bandwidth_mbps"], r["latency_s"][meth] * 1e3) for r in sel if meth in r["latency_s"]]
                if pts:
                    ax.plot(*zip(*pts), marker="o", ms=3, label=meth, lw=2.2 if meth == "fl-psomw" else 1.2,
                            ls="--" if meth == "fl-bf" else ":" if meth == "fl-dpls" else "-")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{m}, {e} server{'s' if e > 1 else ''}, edge {ratio:g}x device")
            ax.set_xlabel("uplink bandwidth (Mbit/s)")
            ax.grid(True, which="both", alpha=0.3)
        row_axes[0].set_ylabel("predicted inference time (ms)")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
