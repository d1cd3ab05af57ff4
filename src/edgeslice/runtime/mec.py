"""The MEC scenario run for real: IoT devices stream tasks, an agent places each task's blocks, every task runs.

:func:`real_run` (``edgeslice bench mec-testbed``):

1. brings up the testbed for a MEC cluster (IoT devices are those named ``iot*``,
   the others are edge servers; bundled: ``mec-testbed``) and calibrates it
   (:mod:`edgeslice.testbed.calibrate`: every layer timed inside every device,
   every link probed);
   then (on the testbed) runs one *calibration episode* (its own seed, blocks placed at random so every
   block runs on every place) and takes each block's median compute time on each place:
   profiles taken with every device busy at once were 10-15% slow for a stream where
   devices are often idle, profiles taken one device at a time as much too fast, and
   the blocks' times in the run itself are what the simulator needs;
2. writes what it measured into a ``contention``-mode MEC config — each block's
   seconds on the IoT device and on each ES (``block_s``), each IoT device's rate
   to each ES (``link_Bps``), the ES-ES rate (``backhaul_Bps``), per-link channels
   (``channels: link``: the testbed's links are per pair and direction);
3. takes an agent (``--agent``, or trains MTL-A3C on that config for
   ``train_episodes``), draws one episode (Poisson releases, each task from a random
   IoT device) and lets the agent place every task in the simulator: that gives the
   placements and the **predicted** per-task delays;
4. turns each task into a Plan (its blocks as whole segments on the chosen devices,
   source its IoT device, sink its last block's device) and runs them all at once,
   one worker per device (:mod:`edgeslice.runtime.mecworker`), each task released at
   its time; the **measured** delay of a task is its last block's finish minus its
   release;
5. checks every task's output against the whole model and compares per task.

Without ``testbed`` the same workers run as local processes over loopback (no
shaping, no quotas): the outputs are checked; the delays mean little.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from edgeslice.errors import EdgesliceError


def roles(cluster) -> tuple[list[str], list[str]]:
    """``(IoT devices, edge servers)``: devices named ``iot*`` are IoT devices, the rest edge servers."""
    iot = [n for n in cluster.names if n.startswith("iot")]
    es = [n for n in cluster.names if not n.startswith("iot")]
    if not iot or not es:
        raise EdgesliceError(f"cluster {cluster.name!r}: a MEC run needs devices named iot* (the IoT devices) and "
                             f"others (the edge servers); it has {', '.join(cluster.names)}")
    return iot, es


def measured_config(cluster, graph, blocks: int, *, tasks: int, rate: float, **extra):
    """The ``contention`` MEC config of ``cluster`` (calibrated) for ``graph`` in ``blocks`` blocks."""
    from edgeslice.cost import ClusterCost
    from edgeslice.planners._shared.common import layer_times
    from edgeslice.planners.learned.blocks import model_blocks
    from edgeslice.planners.learned.config import load_config

    iot, es = roles(cluster)
    b = model_blocks(graph.spec, blocks, tuple(graph.input_shape))
    T = layer_times(graph, cluster, ClusterCost(cluster))
    col = {n: j for j, n in enumerate(cluster.names)}
    ends = [*b.starts[1:], len(graph.layers)]

    def per_block(dev):
        return [float(T[a:z, col[dev]].sum()) for a, z in zip(b.starts, ends)]

    local = np.mean([per_block(d) for d in iot], axis=0).tolist()  # the IoT devices are one kind of place
    def bps(a, c):
        return cluster.link(a, c).bandwidth_mbps * 1e6 / 8

    backhaul = bps(es[0], es[1]) if len(es) > 1 else 1e9
    return load_config("contention", model=graph.spec, input=tuple(graph.input_shape), blocks=blocks,
                       edge_servers=len(es), iot_devices=len(iot), tasks=tasks, rate=rate,
                       block_s=[local, *[per_block(e) for e in es]], link_Bps=[[bps(d, e) for e in es] for d in iot],
                       backhaul_Bps=backhaul, channels="link", **extra)


def place_episode(cfg, policy, seed: int) -> list[dict]:
    """The episode of ``seed`` placed by ``policy`` in the simulator: per task its device, release, places,
    predicted delay."""
    from edgeslice.planners.learned.env import MECEnv

    env = MECEnv(cfg)
    env.reset(seed=seed)
    rows = []
    for t in range(env.net.T):
        places = np.asarray(policy(env)).astype(int)
        dev, release = int(env.net.device[t]), float(env.net.arrival[t])
        info = env.run_task(places)
        rows.append({"task": t, "iot": dev, "release_s": release, "places": places.tolist(),
                     "predicted_s": float(info["delay_s"])})
    return rows


def task_plans(rows, graph, cluster, blocks: int, outdir: Path) -> list[str]:
    """One Plan file per task: each block a whole segment where the agent put it (one segment per block, so
    the workers time every block)."""
    from edgeslice.plan.plan import Part, Segment
    from edgeslice.planners._shared.common import make
    from edgeslice.planners.learned.blocks import model_blocks

    iot, es = roles(cluster)
    b = model_blocks(graph.spec, blocks, tuple(graph.input_shape))
    ends = [*b.starts[1:], len(graph.layers)]
    names = [l.name for l in graph.layers]
    (outdir / "plans").mkdir(parents=True, exist_ok=True)
    paths = []
    for r in rows:
        where = [iot[r["iot"]] if p == 0 else es[p - 1] for p in r["places"]]
        segs = [Segment(names[a], names[z - 1], "whole", (Part(w),)) for a, z, w in zip(b.starts, ends, where)]
        plan = make(graph, replace(cluster, source=iot[r["iot"]], sink=where[-1]), segs, "mec-task")
        path = outdir / "plans" / f"task-{r['task']:03d}.json"
        path.write_text(plan.to_json())
        paths.append(str(path.relative_to(outdir)))
    return paths


def block_times(rows, outdir: Path, devices) -> dict[tuple[int, int], float]:
    """Median measured seconds of block m on place p (0: any IoT device) over a run's compute events."""
    place_of = {}
    for r in rows:
        for m, p in enumerate(r["places"]):
            place_of[(r["task"], m)] = p
    seen: dict[tuple[int, int], list] = {}
    for d in range(len(devices)):
        for e in json.loads((outdir / f"events-{d}.json").read_text())["events"]:
            if e["kind"] == "compute":
                key = (place_of[(e["task"], e["segment"])], e["segment"])
                seen.setdefault(key, []).append(e["end"] - e["start"])
    return {k: float(np.median(v)) for k, v in seen.items()}


def execute(rows, plan_paths, devices, outdir: Path, *, seed: int, testbed=None, timeout: float = 120.0) -> None:
    """Run every task at once, one worker per device (inside the testbed when given); raise on any failure."""
    from edgeslice.runtime import rendezvous
    from edgeslice.runtime.launch import _die_with_parent, _kill_all, free_port

    scen = {"devices": list(devices), "seed": seed,
            "tasks": [{"plan": p, "release_s": r["release_s"]} for r, p in zip(rows, plan_paths)]}
    (outdir / "scenario.json").write_text(json.dumps(scen, indent=1))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", rendezvous.TOKEN_ENV: secrets.token_hex(16)}
    if testbed is not None:
        master, port = testbed.address(devices[0]), 20000 + os.getpid() % 10000
        env.update(testbed.env())
    else:
        master, port = "127.0.0.1", free_port()
    procs, logs = [], []
    deadline = time.time() + 120.0 + timeout + max(r["release_s"] for r in rows)
    try:
        for rank, dev in enumerate(devices):
            argv = [sys.executable, "-m", "edgeslice.runtime.mecworker", "--scenario", str(outdir / "scenario.json"),
                    "--rank", str(rank), "--out", str(outdir), "--master-addr", master, "--master-port", str(port),
                    "--timeout", str(timeout)]
            renv = env
            if testbed is not None:
                argv = testbed.wrap(dev, argv, defer_cgroups=True)
                renv = {**env, **testbed.join_env(dev)}
            log = open(outdir / f"worker-{dev}.log", "w")
            logs.append(log)
            procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                          env=renv, preexec_fn=_die_with_parent))
        while any(p.poll() is None for p in procs):
            bad = [(d, p.returncode) for d, p in zip(devices, procs) if p.poll() not in (None, 0)]
            if bad or time.time() > deadline:
                d = bad[0][0] if bad else "?"
                tail = (outdir / f"worker-{d}.log").read_text(errors="replace").strip().splitlines()[-1:] if bad else []
                raise EdgesliceError(f"mec run: worker on {d!r} " + (f"failed: {tail[0] if tail else '?'}" if bad
                                     else "did not finish in time") + f" (logs in {outdir})")
            time.sleep(0.1)
        bad = [d for d, p in zip(devices, procs) if p.returncode != 0]
        if bad:
            raise EdgesliceError(f"mec run: worker on {bad[0]!r} failed (log {outdir / f'worker-{bad[0]}.log'})")
    finally:
        _kill_all(procs)
        for log in logs:
            log.close()


def measure(rows, graph, gm, outdir: Path, devices, seed: int) -> list[dict]:
    """Add each task's measured delay and output check to ``rows`` (from the workers' events and outputs)."""
    import torch

    from edgeslice.runtime.worker import request_input

    release, finish = {}, {}
    for d in range(len(devices)):
        for e in json.loads((outdir / f"events-{d}.json").read_text())["events"]:
            if e["kind"] == "release":
                release[e["task"]] = e["t"]
            elif e["kind"] == "finish":
                finish[e["task"]] = e["t"]
    for r in rows:
        t = r["task"]
        with torch.no_grad():
            ref = gm(request_input(seed, t, (1, *graph.input_shape)))
        y = torch.from_numpy(np.load(outdir / f"output-{t}.npy"))
        err = float((y - ref).abs().max() / ref.abs().max().clamp_min(1e-12))
        r["measured_s"] = finish[t] - release[t]
        r["release_late_s"] = release[t] - r["release_s"]
        r["error_pct"] = 100.0 * (r["measured_s"] - r["predicted_s"]) / r["predicted_s"]
        r["rel_err"], r["output_ok"] = err, err <= 1e-4
    return rows


def summary(rows) -> dict:
    pred = np.array([r["predicted_s"] for r in rows])
    meas = np.array([r["measured_s"] for r in rows])
    err = np.abs(meas - pred) / pred * 100.0
    return {"tasks": len(rows), "all_outputs_ok": all(r["output_ok"] for r in rows),
            "mean_predicted_s": float(pred.mean()), "mean_measured_s": float(meas.mean()),
            "mean_error_pct": float(100.0 * (meas.mean() - pred.mean()) / pred.mean()),
            "mean_abs_task_error_pct": float(err.mean()), "median_abs_task_error_pct": float(np.median(err)),
            "max_abs_task_error_pct": float(err.max()),
            "tasks_within_15pct": int((err <= 15.0).sum())}


def real_run(cluster_ref: str = "mec-testbed", *, model: str = "vgg16", input_shape=(3, 64, 64), blocks: int = 4,
             tasks: int = 24, rate: float = 2.0, seed: int = 0, agent: str | None = None, train_episodes: int = 300,
             policies: tuple[str, ...] = ("mtl-a3c", "queue-dp"), use_testbed: bool = True, tag: str = "0",
             out: str | None = None, timeout: float = 120.0, force: bool = False, progress=None) -> dict:
    """The whole run (see the module docstring); returns ``{"config", "policies": {name: {"summary", "tasks"}}}``."""
    from edgeslice.cluster.load import load_cluster, resolve_cluster
    from edgeslice.graph.trace import trace
    from edgeslice.planners.learned.agents import agent_policy, train_agent
    from edgeslice.planners.learned.config import load_config
    from edgeslice.planners.learned.heuristics import POLICIES
    from edgeslice.planners.learned.nets import load_agent, save_agent

    say = progress or (lambda _m: None)
    cluster = resolve_cluster(cluster_ref)
    roles(cluster)
    outdir = Path(out or f"runs/mec-{cluster.name}")
    outdir.mkdir(parents=True, exist_ok=True)
    graph, gm = trace(model, input_shape)
    tb = None
    if use_testbed:
        from edgeslice.testbed.calibrate import calibrate
        from edgeslice.testbed.net import up

        tb, made = up(cluster, tag=tag, source_file=str(cluster_ref), progress=lambda m: say("  " + m))
        if made:
            say(f"brought up the testbed for {cluster.name} (`edgeslice testbed down` removes it)")
        cluster = load_cluster(calibrate(tb, cluster, model, input_shape, 1, outdir=outdir / "calibration",
                                         force=force, progress=say))
    cfg = measured_config(cluster, graph, blocks, tasks=tasks, rate=rate)
    if tb is not None:  # over loopback the blocks' times mean nothing: keep the profiles'
        cal = place_episode(cfg, POLICIES["rpdi"], seed + 20_000)
        cal_dir = outdir / "calibration-episode"
        cal_dir.mkdir(exist_ok=True)
        say(f"calibration episode: {len(cal)} tasks placed at random, run to time every block on every place")
        execute(cal, task_plans(cal, graph, cluster, blocks, cal_dir), cluster.names, cal_dir, seed=seed, testbed=tb,
                timeout=timeout)
        seen = block_times(cal, cal_dir, cluster.names)
        table = [[seen.get((p, m), cfg.block_s[p][m]) for m in range(blocks)] for p in range(cfg.places)]
        cfg = load_config(cfg, block_s=table)
    (outdir / "config.json").write_text(cfg.model_dump_json(indent=1))
    chosen = {}
    for name in policies:
        if name in POLICIES:
            chosen[name] = POLICIES[name]
            continue
        if agent:
            net, _ = load_agent(agent)
        else:
            say(f"training {name} on the measured config ({train_episodes} episodes)")
            net, _, _ = train_agent(name, cfg, {"episodes": train_episodes, "seed": seed})
            save_agent(net, outdir / f"{name}.pt", algo=name, config=cfg.model_dump())
        chosen[name] = agent_policy(net)
    result = {"config": cfg.model_dump(), "cluster": cluster.name, "testbed": use_testbed, "policies": {},
              "date": time.strftime("%Y-%m-%d %H:%M")}
    for name, policy in chosen.items():
        rows = place_episode(cfg, policy, seed + 10_000)
        run_dir = outdir / name
        run_dir.mkdir(exist_ok=True)
        paths = task_plans(rows, graph, cluster, blocks, run_dir)
        say(f"{name}: {len(rows)} tasks placed; predicted {np.mean([r['predicted_s'] for r in rows]):.3f} s/task; "
            f"running them all on {'the testbed' if tb else 'local processes'}")
        execute(rows, paths, cluster.names, run_dir, seed=seed, testbed=tb, timeout=timeout)
        measure(rows, graph, gm, run_dir, cluster.names, seed)
        s = summary(rows)
        result["policies"][name] = {"summary": s, "tasks": rows}
        say(f"{name}: measured {s['mean_measured_s']:.3f} s/task ({s['mean_error_pct']:+.1f}% vs predicted; per task "
            f"|error| mean {s['mean_abs_task_error_pct']:.1f}%, max {s['max_abs_task_error_pct']:.1f}%), outputs "
            f"{'all verified' if s['all_outputs_ok'] else 'MISMATCH'}")
    (outdir / "result.json").write_text(json.dumps(result, indent=1))
    return result


def chart(result: dict, path: str) -> None:
    """Per task, predicted against measured delay, one panel per placing policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pols = result["policies"]
    fig, axes = plt.subplots(1, len(pols), figsize=(5.5 * len(pols), 4), squeeze=False)
    for ax, (name, p) in zip(axes[0], pols.items()):
        rows = p["tasks"]
        x = np.arange(len(rows))
        ax.bar(x - 0.2, [r["predicted_s"] for r in rows], 0.4, label="predicted (contention simulator)", color="#9ecae1")
        ax.bar(x + 0.2, [r["measured_s"] for r in rows], 0.4, label="measured (testbed)", color="#3182bd")
        s = p["summary"]
        ax.set_title(f"{name}: mean {s['mean_predicted_s']:.2f} s predicted, {s['mean_measured_s']:.2f} s measured",
                     fontsize=9)
        ax.set_xlabel("task (release order)")
        ax.set_ylabel("delay (s)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
