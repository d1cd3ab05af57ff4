"""Load and soak: thousands of requests through real worker processes; no loss, no leak, clean failure.

A runtime right for one request can still lose requests under load, grow without bound, leak descriptors
or sockets, or hang when a device dies.  This streams requests through ``edgeslice run``'s launcher
(:func:`edgeslice.runtime.launch.launch`: 4 worker processes, gloo over loopback) and checks:

1. streams: 2,000 requests of a small model (AlexNet 3x64x64, ``aofl`` on ``local4``, whose plan cuts
   work across all four devices), 8 in flight; then 200 of VGG-16 (``--vgg-input``, default 3x224x224);
2. no request lost or duplicated: every ``output-<req>.npy`` present (no other), and every worker's
   report holds each of its Program tasks (computes, sends, receives, input, output) once per request;
3. outputs verified: :func:`edgeslice.runtime.launch.collect` recomputes every request with the whole
   model; the largest relative error is printed;
4. memory flat: a thread samples each worker's ``VmRSS``; skipping samples before its first request and
   the first 20 % of the rest, the ``numpy.polyfit`` slope in MB per 1,000 requests and MB/min.  Judged
   raw (a worker streams its events to ``events-<rank>.jsonl`` and holds none in memory),
   one-sided (RSS going down is no leak), on streams of >= ``--judge-min-requests`` (1,000) only: over a
   few hundred VGG-16 requests the allocator keeps RSS rising for ~100, then in a band of +-10-20 MB,
   so a short stream's slope is noise (printed, not judged);
5. no fd or port leak: open fds and TCP sockets (socket inodes of the worker found in /proc/net/tcp{,6})
   per worker, first sample after warm-up vs last;
6. a killed device is reported: ``--kills`` times (seeded) one worker (each in turn, in a random order)
   gets SIGKILL at a random moment; the launcher must raise an EdgesliceError naming it within the run's
   ``--timeout``, and afterwards no worker pid lives and no process has the run's folder in its argv.

Prints a table per stream, the kill trials, one PASS/FAIL line per property; exits 1 if any fails.
Everything lives in a ``tempfile.mkdtemp`` folder, removed at the end.

    .venv/bin/python benchmarks/bench_soak.py [--requests 2000 --vgg-requests 200 --inflight 8 --kills 5
                                               --vgg-input 3x224x224 --seed 0 --timeout 30 --json F]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgeslice.errors import EdgesliceError
from edgeslice.runtime.launch import collect, launch
from edgeslice.runtime.worker import read_events

con = Console(stderr=True, width=150)  # progress on stderr; the summary on stdout
out = Console(width=150)
WARMUP = 0.20  # fraction of a worker's streaming samples skipped before slopes and first-vs-last


def make_plan(model: str, shape: tuple[int, ...], cluster: str, planner: str, folder: Path) -> Path:
    import edgeslice

    path = folder / f"{model}-{'x'.join(map(str, shape))}-{planner}.json"
    p = edgeslice.plan(model, cluster, planner=planner, input_shape=shape)
    p.save(path)
    used = {part.device for s in p.segments for part in s.parts}
    con.print(f"plan {path.name}: {len(p.segments)} segments, devices used {sorted(used)}")
    return path


# ------------------------------------------------------------------ /proc probes


def _probe(pid: int) -> tuple[float, int, set[str]] | None:
    """(VmRSS in MiB, number of open fds, inodes of the sockets among them), or None once the process is gone."""
    try:
        rss = next(int(l.split()[1]) / 1024 for l in Path(f"/proc/{pid}/status").read_text().splitlines()
                   if l.startswith("VmRSS:"))
        names = os.listdir(f"/proc/{pid}/fd")
    except (OSError, StopIteration):
        return None
    inodes = set()
    for n in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{n}")
        except OSError:
            continue  # closed between listdir and readlink
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return rss, len(names), inodes


def _tcp_inodes(pid: int) -> set[str]:
    """Inodes of every TCP socket in the pid's network namespace (field 10 of /proc/net/tcp and tcp6)."""
    found = set()
    for f in ("tcp", "tcp6"):
        try:
            for line in Path(f"/proc/{pid}/net/{f}").read_text().splitlines()[1:]:
                cols = line.split()
                if len(cols) > 9 and cols[9] != "0":
                    found.add(cols[9])
        except OSError:
            pass
    return found


def _progress(outdir: Path, rank: int, last: int) -> tuple[int, bool]:
    """The request a worker is on (from its status file), and whether it is streaming (not loading, connecting,
    or finishing: at the end the worker closes its process group, and its fds and sockets with it)."""
    try:
        s = (outdir / f"status-{rank}").read_text()
    except OSError:
        return last, False
    m = re.search(r"request (\d+)", s)
    return (int(m.group(1)), True) if m else (last, False)


class Sampler(threading.Thread):
    """Samples every worker of a run (pids from ``pids.json``) every ``interval`` s until stopped."""

    def __init__(self, outdir: Path, label: str, requests: int, interval: float):
        super().__init__(daemon=True)
        self.outdir, self.label, self.requests, self.interval = outdir, label, requests, interval
        self.stop = threading.Event()
        self.pids: dict[str, int] = {}
        self.samples: dict[str, list[tuple]] = {}  # device -> [(t, request, streaming, rss MB, fds, tcp)]
        self.t0 = time.monotonic()

    def run(self) -> None:
        last_print = 0.0
        while not self.stop.is_set():
            if not self.pids:
                try:
                    self.pids = json.loads((self.outdir / "pids.json").read_text())
                    self.samples = {d: [] for d in self.pids}
                except (OSError, ValueError):
                    self.stop.wait(0.05)
                    continue
            t = time.monotonic() - self.t0
            tcp = _tcp_inodes(next(iter(self.pids.values())))
            for rank, (d, pid) in enumerate(self.pids.items()):
                got = _probe(pid)
                if got is None:
                    continue  # gone (finished or killed)
                req, streaming = _progress(self.outdir, rank, self.samples[d][-1][1] if self.samples[d] else 0)
                self.samples[d].append((t, req, streaming, got[0], got[1], len(got[2] & tcp)))
            if t - last_print >= 10:
                last_print = t
                now = {d: s[-1] for d, s in self.samples.items() if s}
                con.print(f"  ({self.label}) {t:5.0f} s: request " + ", ".join(
                    f"{d} {s[1]}/{self.requests} {s[3]:.0f} MB {s[4]} fds {s[5]} tcp" for d, s in now.items()))
            self.stop.wait(self.interval)


def trend(samples: list[tuple]) -> dict:
    """Slopes and first-after-warm-up vs last of one worker's samples."""
    live = [s for s in samples if s[2]]
    if len(live) < 5:
        return {"samples": len(samples), "streaming": len(live)}
    kept = live[int(len(live) * WARMUP):]
    t, req, rss = (np.array([s[i] for s in kept], dtype=float) for i in (0, 1, 3))
    per_min = float(np.polyfit(t / 60, rss, 1)[0]) if np.ptp(t) > 0 else 0.0
    per_1k = float(np.polyfit(req / 1000, rss, 1)[0]) if np.ptp(req) > 0 else 0.0
    first, last = kept[0], kept[-1]
    return {"samples": len(samples), "streaming": len(live), "kept": len(kept), "mb_per_1k_req": per_1k,
            "mb_per_min": per_min, "rss_first": first[3], "rss_last": last[3], "rss_max": float(rss.max()),
            "fds_first": first[4], "fds_last": last[4], "fds_max": max(s[4] for s in kept),
            "tcp_first": first[5], "tcp_last": last[5], "tcp_max": max(s[5] for s in kept)}


# ------------------------------------------------------------------ one stream


def exactly_once(plan_path: Path, outdir: Path, requests: int) -> list[str]:
    """Problems with the outputs and the workers' events: each expected (request, task) exactly once."""
    from edgeslice.execute.check import load_for_plan
    from edgeslice.plan.plan import Plan
    from edgeslice.program.lower import lower
    from edgeslice.program.program import (
        ComputeTask,
        InputTask,
        OutputTask,
        TransferTask,
    )

    problems = []
    got = sorted(int(m.group(1)) for f in os.listdir(outdir) if (m := re.fullmatch(r"output-(\d+)\.npy", f)))
    if got != list(range(requests)):
        missing = sorted(set(range(requests)) - set(got))
        extra = sorted(set(got) - set(range(requests)))
        problems.append(f"outputs: {len(got)} files; missing {missing[:10]}, unexpected {extra[:10]}")
    plan = Plan.load(plan_path)
    graph, _ = load_for_plan(plan, meta=True)
    program = lower(plan, graph)
    for rank, d in enumerate(plan.devices):
        want = set()
        for t in program.tasks:
            want |= {("compute", t.id)} if isinstance(t, ComputeTask) and t.device == d else set()
            want |= {("send", t.id)} if isinstance(t, TransferTask) and t.src == d else set()
            want |= {("recv", t.id)} if isinstance(t, TransferTask) and t.dst == d else set()
            want |= {("input", t.id)} if isinstance(t, InputTask) and d == plan.source else set()
            want |= {("output", t.id)} if isinstance(t, OutputTask) and d == plan.sink else set()
        events = read_events(outdir, json.loads((outdir / f"report-{rank}.json").read_text()))
        seen = Counter((e["req"], e["kind"], e["task"]) for e in events)
        expected = Counter((r, k, t) for r in range(requests) for k, t in want)
        if seen != expected:
            lost, dup = expected - seen, seen - expected
            problems.append(f"{d}: {sum(lost.values())} expected events missing (e.g. {list(lost)[:3]}), "
                            f"{sum(dup.values())} extra or duplicated (e.g. {list(dup)[:3]})")
    return problems


def stream(label: str, plan_path: Path, requests: int, inflight: int, timeout: float, root: Path, interval: float) -> dict:
    outdir = root / label
    sampler = Sampler(outdir, label, requests, interval)
    con.print(f"[bold]{label}[/]: {requests} requests, {inflight} in flight, 4 workers ...")
    t0 = time.monotonic()
    sampler.start()
    try:
        launch(str(plan_path), requests=requests, inflight=inflight, timeout=timeout, out=str(outdir))
    finally:
        sampler.stop.set()
        sampler.join()
    run_s = time.monotonic() - t0
    con.print(f"  ({label}) run finished in {run_s:.0f} s; checking every output against the whole model ...")
    t1 = time.monotonic()
    res = collect(str(plan_path), outdir, requests=requests)
    check_s = time.monotonic() - t1
    problems = exactly_once(plan_path, outdir, requests)
    shutil.rmtree(outdir)
    workers = {d: trend(s) for d, s in sampler.samples.items()}
    return {"label": label, "requests": requests, "inflight": inflight, "run_s": run_s, "check_s": check_s,
            "throughput_rps": res["throughput_rps"], "latency_ms": res["latency_s"] * 1e3,
            "rel_err": res["rel_err"], "max_abs_err": res["max_abs_err"], "verified": res["ok"], "problems": problems,
            "workers": workers, "samples": sampler.samples}


# ------------------------------------------------------------------ kill trials


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _holding(folder: Path) -> list[int]:
    """Pids (not this one) whose command line names ``folder``."""
    me, found = os.getpid(), []
    for p in os.listdir("/proc"):
        if p.isdigit() and int(p) != me:
            try:
                if str(folder) in Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(p))
            except OSError:
                pass
    return found


def kill_trial(i: int, rank: int, rng: random.Random, plan_path: Path, requests: int, inflight: int, timeout: float,
               max_delay: float, root: Path) -> dict:
    outdir = root / f"kill-{i}"
    delay = rng.uniform(0.0, max_delay)
    info: dict = {"trial": i, "delay_s": delay}
    ended = threading.Event()

    def killer():
        while not (outdir / "pids.json").exists():
            if ended.wait(0.01):
                return
        pids = json.loads((outdir / "pids.json").read_text())
        info["pids"] = pids
        info["device"] = device = list(pids)[rank]
        if ended.wait(delay):
            return  # the run ended first (it failed on its own): kill nothing, the pid may be reused
        try:
            info["status"] = (outdir / f"status-{rank}").read_text().strip() or "(status being written)"
        except OSError:
            info["status"] = "starting"
        os.kill(pids[device], signal.SIGKILL)
        info["killed_at"] = time.monotonic()

    th = threading.Thread(target=killer, daemon=True)
    th.start()
    try:
        launch(str(plan_path), requests=requests, inflight=inflight, timeout=timeout, out=str(outdir))
        info["error"] = None
    except EdgesliceError as exc:
        info["error"] = str(exc)
    info["ended_at"] = time.monotonic()
    ended.set()
    th.join(timeout=5)
    left = [p for p in info.get("pids", {}).values() if _alive(p)] + _holding(outdir)
    info["left"] = sorted(set(left))
    info["to_error_s"] = info["ended_at"] - info["killed_at"] if "killed_at" in info else None
    dev = info.get("device")
    info["ok"] = (info["error"] is not None and dev is not None and f"{dev!r}" in info["error"]
                  and info["to_error_s"] is not None and 0 <= info["to_error_s"] <= timeout and not info["left"])
    for p in info["left"]:  # clean what we find, then report it
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    con.print(escape(f"  kill {i}: {dev} after {delay:.1f} s (it was: {info.get('status', '?')[:60]!r}); error after "
                     f"{info['to_error_s'] or float('nan'):.2f} s: {(info['error'] or 'NONE')[:110]}; left: {info['left']}"))
    shutil.rmtree(outdir, ignore_errors=True)
    return info


# ------------------------------------------------------------------ report


def show_stream(r: dict, max_slope: float, judge_min: int) -> None:
    judged = r["requests"] >= judge_min
    t = Table(title=f"{r['label']}: {r['requests']} requests, {r['inflight']} in flight — run {r['run_s']:.0f} s, "
                    f"{r['throughput_rps']:.2f} req/s, median latency {r['latency_ms']:.0f} ms, max rel err {r['rel_err']:.1e}"
                    + ("" if judged else f" (slope not judged: under {judge_min} requests)"))
    for c in ("device", "samples (kept)", "RSS first → last MB", "max MB", "MB / 1k req", "MB / min",
              "fds first → last (max)", "TCP first → last (max)"):
        t.add_column(c, justify="left" if c == "device" else "right")
    for d, w in r["workers"].items():
        if "kept" not in w:
            t.add_row(d, f"{w['samples']} (too few streaming)", *[""] * 6)
            continue
        slope = f"{w['mb_per_1k_req']:+.2f}"
        t.add_row(d, f"{w['samples']} ({w['kept']})", f"{w['rss_first']:.1f} → {w['rss_last']:.1f}", f"{w['rss_max']:.1f}",
                  f"[red]{slope}[/]" if judged and w["mb_per_1k_req"] > max_slope else slope, f"{w['mb_per_min']:+.2f}",
                  f"{w['fds_first']} → {w['fds_last']} ({w['fds_max']})", f"{w['tcp_first']} → {w['tcp_last']} ({w['tcp_max']})")
    out.print(t)
    for p in r["problems"]:
        out.print(f"[red]  {escape(p)}[/]")


def verdicts(streams: list[dict], kills: list[dict], max_slope: float, judge_min: int, fd_slack: int,
             own_fds: tuple[int, int]) -> dict:
    ws = [w for r in streams for w in r["workers"].values()]
    measured = all("kept" in w for w in ws)
    long = [w for r in streams if r["requests"] >= judge_min for w in r["workers"].values()]
    return {
        "no request lost or duplicated": all(not r["problems"] for r in streams),
        "every output verified (rel err <= 1e-5)": all(r["verified"] for r in streams),
        f"memory flat (slope <= {max_slope:g} MB / 1k requests, streams of >= {judge_min})": measured
        and bool(long) and all(w["mb_per_1k_req"] <= max_slope for w in long),
        f"no fd leak (last <= first + {fd_slack}; launcher too)": measured and all(w["fds_last"] <= w["fds_first"] + fd_slack for w in ws)
        and own_fds[1] <= own_fds[0] + fd_slack,
        "no TCP socket leak (last <= first)": measured and all(w["tcp_last"] <= w["tcp_first"] for w in ws),
        "kill reported by name within --timeout, nothing left": bool(kills) and all(k["ok"] for k in kills),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="alexnet")
    ap.add_argument("--input", default="3x64x64")
    ap.add_argument("--planner", default="aofl")
    ap.add_argument("--cluster", default="local4")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--inflight", type=int, default=8)
    ap.add_argument("--vgg-requests", type=int, default=200, help="0: skip the VGG-16 stream")
    ap.add_argument("--vgg-input", default="3x224x224")
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--kill-max-delay", type=float, default=40.0, help="kill within this many s of the workers' start")
    ap.add_argument("--kill-requests", type=int, default=2000, help="requests of a kill run (more than it can finish)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the kill trials' RNG")
    ap.add_argument("--timeout", type=float, default=30.0, help="the runs' --timeout (s)")
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between samples")
    ap.add_argument("--max-slope", type=float, default=2.0, help="MB per 1,000 requests counted as flat")
    ap.add_argument("--judge-min-requests", type=int, default=1000, help="shortest stream whose slope is judged")
    ap.add_argument("--fd-slack", type=int, default=2)
    ap.add_argument("--json", default=None, help="also write every figure to this file")
    args = ap.parse_args(argv)
    shape = lambda s: tuple(int(v) for v in s.split("x"))  # noqa: E731
    # the reference check (collect) runs in this process: with 2 threads on 2 busy cores torch's threads spin
    # against the other jobs (AlexNet 64x64: 159 ms a forward; 21 ms with one thread); the workers set their own
    torch.set_num_threads(1)
    start = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="edgeslice-soak-"))
    own_before = len(os.listdir("/proc/self/fd"))
    try:
        small = make_plan(args.model, shape(args.input), args.cluster, args.planner, root)
        streams = [stream(f"{args.model} {args.input}", small, args.requests, args.inflight, args.timeout, root, args.interval)]
        if args.vgg_requests:
            vgg = make_plan("vgg16", shape(args.vgg_input), args.cluster, args.planner, root)
            streams.append(stream(f"vgg16 {args.vgg_input}", vgg, args.vgg_requests, args.inflight, args.timeout, root,
                                  args.interval))
        rng = random.Random(args.seed)
        con.print(f"[bold]kills[/]: {args.kills} trials of {args.model}, SIGKILL to a random worker within "
                  f"{args.kill_max_delay:g} s, --timeout {args.timeout:g}")
        order = rng.sample(range(4), 4)  # random, but every device is killed once in 4 trials
        kills = [kill_trial(i, order[i % 4], rng, small, args.kill_requests, args.inflight, args.timeout, args.kill_max_delay, root)
                 for i in range(args.kills)]
        own_after = len(os.listdir("/proc/self/fd"))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for r in streams:
        show_stream(r, args.max_slope, args.judge_min_requests)
    t = Table(title=f"SIGKILL of one worker ({args.kills} trials, seed {args.seed}, --timeout {args.timeout:g} s)")
    for c in ("trial", "device", "after (s)", "it was", "kill → error (s)", "error names it", "left behind"):
        t.add_column(c, justify="left" if c == "it was" else "right")
    for k in kills:
        named = k["error"] is not None and f"{k.get('device')!r}" in k["error"]
        t.add_row(str(k["trial"]), str(k.get("device")), f"{k['delay_s']:.1f}", escape(k.get("status", "?")[:60]),
                  "—" if k["to_error_s"] is None else f"{k['to_error_s']:.2f}", "yes" if named else "[red]no[/]",
                  str(len(k["left"])))
    out.print(t)
    out.print(f"launcher process: {own_before} fds before, {own_after} after")
    v = verdicts(streams, kills, args.max_slope, args.judge_min_requests, args.fd_slack, (own_before, own_after))
    for name, ok in v.items():
        out.print(f"{'[green]PASS[/]' if ok else '[red]FAIL[/]'}  {name}")
    total = time.monotonic() - start
    out.print(f"overall: {'[green]PASS[/]' if all(v.values()) else '[red]FAIL[/]'} in {total:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"streams": streams, "kills": [{k: x for k, x in i.items()} for i in kills],
                                               "verdicts": v, "launcher_fds": [own_before, own_after], "total_s": total},
                                              default=str, indent=1))
    return 0 if all(v.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
