"""``edgeslice run``: start one worker per device on this machine, watch them, gather the results.

The launcher is a thin shell around the worker entry point (the same one
``torchrun`` starts): it picks a free port, writes the model's weights once
(``worker-weights.pt`` in the run's folder, removed at the end) for every
worker to map and read only its share of, spawns the workers, and watches
them.  If one dies, the run ends within ``--timeout`` with one message naming
the device and the task it was on, and every worker is killed — none is left
behind.  On success it reads the workers' reports and the sink's outputs,
recomputes each request's output with the whole model in this process, and
returns latency, throughput, errors, memory, bytes, and the measured timeline
next to the simulator's prediction.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from edgeslice.errors import DeviceFailed, EdgesliceError
from edgeslice.runtime import rendezvous
from edgeslice.sim.simulate import Event, Timeline


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _last_error_line(path: Path) -> str:
    try:
        lines = [l for l in path.read_text(errors="replace").splitlines() if l.strip()]
    except OSError:
        return ""
    for l in reversed(lines):
        if "edgeslice worker: error:" in l:
            return l.split("edgeslice worker: error:", 1)[1].strip()
    return lines[-1].strip() if lines else ""


def _status(out: Path, rank: int) -> str:
    try:
        return (out / f"status-{rank}").read_text().strip()
    except OSError:
        return "starting"


def _kill_all(procs) -> None:
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                p.kill()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def launch(plan_path: str, *, cluster: str | None = None, requests: int = 1, inflight: int = 1, timeout: float = 30.0,
           seed: int = 0, out: str | None = None, port: int | None = None, threads: int | None = None,
           startup_s: float = 120.0, testbed=None, overlap: bool = False) -> Path:
    """Run the workers to completion; return the output folder. Raises EdgesliceError on any failure.

    With ``testbed`` (a :class:`edgeslice.testbed.net.Testbed` that is up), each worker runs inside its
    device's network namespace and CPU cgroup and the workers talk over the shaped links.  The workers use
    the plan's own cluster, or ``cluster`` (a file or bundled name), which is checked against the plan first.
    With ``overlap`` a device runs a later request's ready tasks while the earliest waits for data
    (:mod:`edgeslice.runtime.serve`); :func:`collect` then predicts with the same policy.
    """
    from edgeslice.plan.plan import Plan
    from edgeslice.plan.validate import plan_cluster

    plan = Plan.load(plan_path)
    plan_cluster(plan, cluster)  # a device the override lacks: one clear error before any worker starts
    _require_memory(plan, plan_path)  # before any worker starts: an input too large for this machine is one line
    outdir = _run_folder(out)
    world = len(plan.devices)
    # a fresh shared token for this run's workers, in their environment (not argv: ps shows argv)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", rendezvous.TOKEN_ENV: secrets.token_hex(16)}
    if testbed is not None:
        for d in plan.devices:
            testbed.index(d)  # every device of the plan must be on the testbed
        master = testbed.address(plan.devices[0])
        port = port or 20000 + os.getpid() % 10000  # namespaces have their own ports: no clash with the host
        env.update(testbed.env())
    else:
        master = "127.0.0.1"
        port = port or free_port()
    base = [sys.executable, "-m", "edgeslice.runtime.worker", "--plan", str(Path(plan_path).resolve()), "--out", str(outdir),
            "--world", str(world), "--master-addr", master, "--master-port", str(port), "--requests", str(requests),
            "--inflight", str(inflight), "--timeout", str(timeout), "--seed", str(seed)] + (["--overlap"] if overlap else [])
    if cluster:
        base += ["--cluster", str(Path(cluster).resolve()) if Path(cluster).is_file() else cluster]
    if threads:
        base += ["--threads", str(threads)]
    weights = outdir / WEIGHTS_FILE  # the model's weights, once, for every worker to map and read its share of
    if write_weights(plan, weights):
        base += ["--weights", str(weights)]
    procs, logs = [], []
    handlers = _end_on_signals()
    try:
        for r in range(world):
            log = open(outdir / f"worker-{r}.log", "w")
            logs.append(log)
            argv, renv = base + ["--rank", str(r)], env
            if testbed is not None:  # the worker joins its device's cgroups once the model is loaded
                argv = testbed.wrap(plan.devices[r], argv, defer_cgroups=True)
                renv = {**env, **testbed.join_env(plan.devices[r])}
            procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=renv,
                                          preexec_fn=_die_with_parent))
        (outdir / "pids.json").write_text(json.dumps({plan.devices[r]: p.pid for r, p in enumerate(procs)}))
        _watch(procs, plan.devices, outdir, timeout, startup_s + timeout * (requests + 1))
    finally:
        _kill_all(procs)
        for log in logs:
            log.close()
        weights.unlink(missing_ok=True)
        for sig, h in handlers.items():
            signal.signal(sig, h)
    return outdir


def _require_memory(plan, plan_path: str) -> None:
    """Refuse a run this machine cannot hold: every worker, its share, and the launcher's reference run."""
    from edgeslice.execute.check import load_for_plan
    from edgeslice.program.lower import lower
    from edgeslice.program.memory import host_bytes, require_host_memory

    graph, _ = load_for_plan(plan, meta=True)
    need = host_bytes(lower(plan, graph), graph, processes=len(plan.devices))
    require_host_memory(need, f"running {plan_path} on {len(plan.devices)} worker processes here")


RUN_MARK = ".edgeslice-run"  # in a folder edgeslice made for runs: only then does it clear old run files there
_RUN_FILES = ("status-", "report-", "events-", "output-", "worker-", "pids.json")


def _run_folder(out: str | None) -> Path:
    """The folder for this run's logs, reports and outputs: a new temporary one, or ``out``.

    ``out`` must be new, empty, or a folder an earlier run made (it holds :data:`RUN_MARK`); then only the
    files a run writes are removed.  Any other folder is refused, so ``--out ~`` never deletes a user's files.
    """
    if out is None:
        outdir = Path(tempfile.mkdtemp(prefix="edgeslice-run-"))
    else:
        outdir = Path(out)
        if outdir.exists() and not outdir.is_dir():
            raise EdgesliceError(f"--out {out!r} is a file, not a folder; give a new or empty folder")
        if outdir.is_dir() and not (outdir / RUN_MARK).exists():
            other = next(iter(sorted(outdir.iterdir())), None)
            if other is not None:
                raise EdgesliceError(f"--out {out!r} already holds files edgeslice did not write (e.g. {other.name!r}); "
                                     f"give a new or empty folder (or one an earlier `edgeslice run --out` made)")
        outdir.mkdir(parents=True, exist_ok=True)
    (outdir / RUN_MARK).write_text("a folder of edgeslice run outputs; `edgeslice run --out` may clear its run files\n")
    for f in outdir.iterdir():
        if f.is_file() and f.name.startswith(_RUN_FILES):
            f.unlink()
    return outdir


class Terminated(SystemExit):
    """The launcher got SIGTERM or SIGHUP: its workers are ended (``finally``) and it exits 128 + the signal."""


def _raise_terminated(signum, frame):
    raise Terminated(128 + signum)


def _end_on_signals() -> dict:
    """SIGTERM and SIGHUP end the launch like Ctrl-C does: through ``finally``, so no worker is left behind.

    (Python's default for both is to die at once, skipping ``finally``.)  Only the main thread may set
    handlers; elsewhere nothing changes.  Returns the previous handlers, to restore.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.signal(s, _raise_terminated) for s in (signal.SIGTERM, signal.SIGHUP)}


def _die_with_parent() -> None:
    """In each worker before exec: the kernel sends it SIGKILL if the launcher dies (even by SIGKILL)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux/glibc: the workers' receive timeouts still end them


WEIGHTS_FILE = "worker-weights.pt"


def write_weights(plan, path: Path) -> bool:
    """Save the state dict of the plan's model (built as the launcher checks it: seeded, or the plan's weights file).

    The workers map this file (``torch.load(mmap=True, weights_only=True)``) and read only their share of it
    (:func:`edgeslice.runtime.pieces.load_share`).  Returns False, writing nothing, if the model cannot be built
    here (the workers then build it themselves and report why it failed) or the file cannot be written.
    """
    from edgeslice.models import load_model

    try:
        model = load_model(plan.model.spec, plan.model.weights)
    except EdgesliceError:
        return False
    tmp = path.with_name(path.name + ".part")
    try:
        torch.save(model.state_dict(), tmp)
        os.replace(tmp, path)
    except OSError:  # e.g. no room for it: the workers build the model whole instead
        tmp.unlink(missing_ok=True)
        return False
    return True


def _watch(procs, devices, outdir: Path, timeout: float, deadline_s: float) -> None:
    start = time.monotonic()
    progress = {}  # rank -> (status text, when it last changed)
    while True:
        codes = [p.poll() for p in procs]
        if all(c == 0 for c in codes):
            return
        failed = [r for r, c in enumerate(codes) if c not in (None, 0)]
        if failed:
            # the first to fail is the cause; give the others a moment to report their side
            first = min(failed, key=lambda r: (procs[r].returncode >= 0, r))
            code = procs[first].returncode
            what = _status(outdir, first)
            if code < 0:
                sig = signal.Signals(-code).name
                raise DeviceFailed(f"device {devices[first]!r} (rank {first}) died ({sig}) while {_describe(what)}; "
                                   "the run was stopped and every worker ended", devices[first])
            msg = _last_error_line(outdir / f"worker-{first}.log")
            culprit = _end_of_wait_chain(first, devices, outdir, procs)
            if culprit is not None and culprit != first:
                state = " (its process is stopped)" if _proc_state(procs[culprit].pid) == "T" else ""
                raise DeviceFailed(
                    f"device {devices[culprit]!r} (rank {culprit}) stopped answering{state} while "
                    f"{_describe(_status(outdir, culprit))}; {devices[first]!r} gave up waiting after {timeout:g} s "
                    f"({_describe(what)})", devices[culprit])
            raise DeviceFailed(f"device {devices[first]!r} (rank {first}) failed while {_describe(what)}: {msg}",
                               devices[first])
        now = time.monotonic()
        for r in range(len(procs)):
            s = _status(outdir, r)
            if progress.get(r, (None,))[0] != s:
                progress[r] = (s, now)
        if now - start > deadline_s:
            stale = max(range(len(procs)), key=lambda r: now - progress[r][1])
            raise EdgesliceError(f"the run did not finish in {deadline_s:.0f} s; device {devices[stale]!r} has been "
                                 f"{_describe(progress[stale][0])} for {now - progress[stale][1]:.0f} s")
        time.sleep(0.05)


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"


def _end_of_wait_chain(rank: int, devices, outdir: Path, procs) -> int | None:
    """Follow 'waits for transfer .. from DEV' statuses from ``rank`` to the device nobody waits behind."""
    index = {d: i for i, d in enumerate(devices)}
    seen = {rank}
    cur = rank
    while True:
        m = re.search(r"waits for transfer \S+ from (\S+)", _status(outdir, cur))
        if not m or m.group(1) not in index:
            break
        nxt = index[m.group(1)]
        if nxt in seen:
            break
        seen.add(nxt)
        cur = nxt
    stopped = [r for r, p in enumerate(procs) if p.poll() is None and _proc_state(p.pid) == "T"]
    if stopped and cur not in stopped:
        return stopped[0]
    return cur


def _describe(status: str) -> str:
    return {"loading": "loading the model", "connecting": "connecting to the other workers", "starting": "starting",
            "finishing": "finishing", "done": "done"}.get(status, status.replace("request", "on request", 1) if status.startswith("request") else status)


def collect(plan_path: str, outdir: Path, *, cluster: str | None = None, requests: int = 1, seed: int = 0) -> dict:
    """Read the workers' reports and outputs; compare with the whole model; build both timelines.

    The prediction uses the cluster the workers used: the plan's own, or ``cluster`` if given.
    """
    from edgeslice.cost import ClusterCost
    from edgeslice.execute.check import load_for_plan
    from edgeslice.plan.plan import Plan
    from edgeslice.plan.validate import plan_cluster
    from edgeslice.program.lower import lower
    from edgeslice.program.memory import resident
    from edgeslice.runtime.worker import read_events, request_input
    from edgeslice.sim.simulate import simulate

    plan = Plan.load(plan_path)
    graph, gm = load_for_plan(plan)
    program = lower(plan, graph)
    cl = plan_cluster(plan, cluster)
    reports = [json.loads((outdir / f"report-{r}.json").read_text()) for r in range(len(plan.devices))]
    for r in reports:
        r["events"] = read_events(outdir, r)
    max_abs, rel = 0.0, 0.0
    with torch.no_grad():
        for req in range(requests):
            x = request_input(seed, req, (graph.batch, *graph.input_shape))
            ref = gm(x)
            y = torch.from_numpy(np.load(outdir / f"output-{req}.npy", allow_pickle=False))
            err = float((y - ref).abs().max())
            max_abs = max(max_abs, err)
            rel = max(rel, err / max(float(ref.abs().max()), 1e-30))
    mem = resident(program, graph)  # predicted weights share + largest working set, next to the measured peak
    measured = measured_timeline(program, plan, reports, requests)
    arrivals = measured.arrivals
    overlap = any(r.get("overlap") for r in reports)  # the workers' policy, predicted the same way
    predicted = simulate(program, graph, cl, ClusterCost(cl), arrivals=tuple(a - arrivals[0] for a in arrivals),
                         overlap=overlap)
    predicted_one = simulate(program, graph, cl, ClusterCost(cl)).latency_s
    span = max(measured.finishes) - min(measured.arrivals)
    return {
        "model": graph.spec, "devices": list(plan.devices), "requests": requests, "overlap": overlap,
        "latency_s": statistics.median(measured.latencies), "latencies_s": list(measured.latencies),
        "predicted_latency_s": predicted_one, "predicted_latencies_s": list(predicted.latencies),
        "throughput_rps": requests / span if span > 0 else float("inf"),
        "max_abs_err": max_abs, "rel_err": rel, "ok": rel <= 1e-5,
        "peak_mem_mb": {r["device"]: r["peak_mem_mb"] for r in reports},
        "where": {r["device"]: r.get("where", {}) for r in reports},
        "resident_mem_mb": {r["device"]: r["resident_mem_mb"] for r in reports},
        "weights_mb": {r["device"]: r["weights_mb"] for r in reports},
        "weights_source": {r["device"]: r.get("weights_source", "built whole") for r in reports},
        "predicted_weights_mb": {d: m.weights / 1e6 for d, m in mem.items()},
        "predicted_resident_mb": {d: m.total / 1e6 for d, m in mem.items()},
        "bytes_sent": {r["device"]: r["bytes_sent"] for r in reports},
        "bytes_received": {r["device"]: r["bytes_received"] for r in reports},
        "_timelines": (measured, predicted),
    }


def measured_timeline(program, plan, reports, requests: int) -> Timeline:
    """Workers' events as a Timeline: computes as they ran; a transfer from its send to its receipt."""
    seg = {t.id: t.segment for t in program.computes}
    tasks = program.task_by_id
    sends, recvs, events = {}, {}, []
    arrivals, finishes = [0.0] * requests, [0.0] * requests
    for r in reports:
        for e in r["events"]:
            k = e["kind"]
            if k == "compute":
                events.append(Event(e["req"], e["task"], "compute", r["device"], e["start"], e["end"], e["end"], e["segment"], 0,
                                    tasks[e["task"]].flops))
            elif k == "send":
                sends[(e["req"], e["task"])] = e["start"]
            elif k == "recv":
                recvs[(e["req"], e["task"])] = e["end"]
            elif k == "input":
                arrivals[e["req"]] = e["start"]
            elif k == "output":
                finishes[e["req"]] = e["end"]
    for key, start in sends.items():
        t = tasks[key[1]]
        end = max(recvs.get(key, start), start)  # clocks of two processes: never a negative duration
        src = tasks[t.source]
        events.append(Event(key[0], t.id, "transfer", f"{t.src}->{t.dst}", start, end, end,
                            seg.get(src.id, -1), t.nbytes, 0))
    events.sort(key=lambda e: (e.start, e.resource, e.request, e.task))
    links = tuple(sorted({e.resource for e in events if e.kind == "transfer"}))
    return Timeline(tuple(plan.devices), tuple(arrivals), tuple(finishes), tuple(events), links)


def run_plan(plan_path: str, **kw) -> dict:
    """launch + collect (see both)."""
    outdir = launch(plan_path, **kw)
    return collect(plan_path, outdir, cluster=kw.get("cluster"), requests=kw.get("requests", 1), seed=kw.get("seed", 0))
