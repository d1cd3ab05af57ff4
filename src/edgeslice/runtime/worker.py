"""The worker: one process per device, running its part of a Program over torch.distributed.

Started by ``edgeslice run`` (which spawns one per device on this machine) or
directly under ``torchrun``, on one machine or several::

    torchrun --nproc-per-node 4 -m edgeslice.runtime.worker --plan plan.json --cluster local4 --out run/
    EDGESLICE_TOKEN=<secret> torchrun --nnodes 2 --node-rank R --nproc-per-node 2 --rdzv-endpoint HOST:PORT \\
             -m edgeslice.runtime.worker --plan plan.json --out run/

Rank ``i`` is the plan's ``devices[i]``.  Rank, world size and the rendezvous
address come from the command line or torchrun's environment — never from
code.  Transport: point-to-point ``isend``/``irecv`` with the gloo backend.
The device's description (its ``cpus``, which set the torch threads) comes
from the cluster the plan carries; ``--cluster`` overrides it and is checked
against the plan first.

Loading: given ``--weights`` (a state-dict file; ``edgeslice run`` writes the
model's once per run), the worker builds the model on the ``meta`` device,
traces it, and reads only its share of the mapped file (see
:func:`edgeslice.runtime.pieces.load_share`), so its memory is its share;
without one it builds the whole model and prunes it.  Its report says which
(``weights_source``: ``"mmap"`` or ``"built whole"``).

What a worker does, for each request in turn:

1. post a receive for every region it will be sent (buffers shaped from the
   Program: tensors travel as bare tensors, nothing is unpickled);
2. on the source device, draw the request's input (seeded, so the launcher can
   recompute it) and send the regions others need;
3. run its compute tasks in Program order — assemble each task's inputs from
   local pieces and arrived regions, compute, and send each region as soon as
   it exists;
4. on the sink, assemble the output and save it (``.npy``).

Receives wait at most ``--timeout`` seconds; a worker that cannot get its data
names the transfer, the device it waited for and the task it was on, and
exits non-zero.  Each worker writes the task it is on to ``status-<rank>``
(so the launcher can say what a dead worker was doing), each request's
per-task start/end times on a clock shared by all ranks to ``events-<rank>.jsonl``
as the request finishes, and, at the end, a JSON report: bytes sent and
received, and memory.  The request loop itself is :mod:`edgeslice.runtime.serve`
(in order, or with ``--overlap`` DeCNN's inter-sample overlap).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sys
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from edgeslice.errors import ClusterError, EdgesliceError, PlanMismatchError
from edgeslice.runtime import rendezvous
from edgeslice.runtime.serve import DONE_TAG, Loop  # noqa: F401 - DONE_TAG is part of the worker's protocol
from edgeslice.testbed.procs import join_deferred_cgroups

EXIT_REFUSED = 3
EXIT_FAILED = 4


def request_input(seed: int, req: int, shape: tuple[int, ...]) -> torch.Tensor:
    """The input of request ``req``: the launcher draws the same to compute the reference."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed * 1_000_003 + req))


def _rss_mb(field: str = "VmRSS") -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _peak_mb() -> float:
    """This process's peak resident size (MiB): ``VmHWM``, the high-water mark of its own address space.

    Not ``ru_maxrss``: Linux carries that across ``fork`` + ``exec``, so a worker spawned by a launcher that
    holds the whole model would report the launcher's size.  ``ru_maxrss`` only where /proc is missing.
    """
    hwm = _rss_mb("VmHWM")
    return hwm if hwm == hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Status:
    """The task this worker is on, in a small file the launcher reads if the worker dies."""

    def __init__(self, path: Path | None):
        self.path = path
        self.tmp = None if path is None else path.with_name(path.name + ".tmp")

    def set(self, text: str) -> None:
        # written aside, then renamed: a reader (or a SIGKILL mid-write) never leaves an empty status
        if self.path is not None:
            self.tmp.write_text(text)
            os.replace(self.tmp, self.path)


def _where() -> dict:
    """Which network namespace and CPU cgroup this worker ran in (how a testbed run shows it was placed)."""
    out = {}
    try:
        out["netns"] = os.readlink("/proc/self/ns/net")
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, ctrls, path = line.split(":", 2)
            if "cpu" in ctrls.split(","):
                out["cpu_cgroup"] = path
            elif ctrls == "":
                out.setdefault("cpu_cgroup", path)  # cgroup v2: the unified hierarchy
    except OSError:
        pass
    return out


def _env_int(name: str, given):
    if given is not None:
        return given
    v = os.environ.get(name)
    if v is None:
        raise EdgesliceError(f"--{name.lower().replace('_', '-')} is not given and ${name} is not set (run under torchrun or edgeslice run)")
    return int(v)


def run_worker(args) -> dict:
    from edgeslice.plan.plan import Plan
    from edgeslice.plan.validate import plan_cluster
    from edgeslice.runtime.pieces import load_share, param_bytes

    rank = _env_int("RANK", args.rank)
    world = _env_int("WORLD_SIZE", args.world)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    status = _Status(out / f"status-{rank}")
    status.set("loading")
    plan = Plan.load(args.plan)
    if not 0 <= rank < world:
        raise EdgesliceError(f"--rank {rank} must be between 0 and --world - 1 = {world - 1} (rank i runs the plan's devices[i])")
    if world != len(plan.devices):
        raise EdgesliceError(f"the plan has {len(plan.devices)} devices ({', '.join(plan.devices)}) but {world} workers were started; "
                             f"start one per device")
    device = plan.devices[rank]
    dev = plan_cluster(plan, args.cluster).device(device)  # the plan's own cluster, or --cluster checked against it
    threads = args.threads or (max(1, round(dev.cpus)) if dev.cpus else 1)
    torch.set_num_threads(threads)
    # only this device's share of the weights: read from the mapped --weights file (the model is built on the
    # meta device), else the whole model is built and pruned; refuses a plan made for another model
    graph, program, kernels, weights_source, weights_note = load_share(plan, device, args.model, args.weights)
    weights_mb = param_bytes(kernels.gm) / 1e6
    loaded_peak_mb = _peak_mb()  # the peak once loaded: imports, trace and weights, before any request

    # on the emulated testbed: loading ran at full speed; the inference runs under the device's CPU quota
    join_deferred_cgroups(f"device {device!r}")
    addr = args.master_addr or os.environ.get("MASTER_ADDR", "127.0.0.1")
    port = args.master_port or int(os.environ.get("MASTER_PORT", "29500"))
    status.set("connecting")
    meeting = rendezvous.connect(addr, port, rank, world, args.timeout, args.token)  # bound to addr; token checked
    dist.init_process_group("gloo", store=meeting, rank=rank, world_size=world, timeout=timedelta(seconds=args.timeout))
    # every worker must run the same plan: compare a digest of it across ranks
    text_hash = int(hashlib.sha256(program.to_text().encode()).hexdigest()[:15], 16)
    digest = torch.tensor([int(program.fingerprint, 16) & ((1 << 62) - 1), text_hash], dtype=torch.int64)
    everyone = [torch.zeros(2, dtype=torch.int64) for _ in range(world)]
    dist.all_gather(everyone, digest)
    for r, d in enumerate(everyone):
        if not torch.equal(d, digest):
            raise PlanMismatchError(f"device {plan.devices[r]!r} (rank {r}) runs a different plan or model than {device!r}; "
                                 "give every worker the same plan file")
    epoch = torch.tensor([time.time()], dtype=torch.float64)
    dist.broadcast(epoch, 0)  # one clock for every rank's timestamps
    t0 = float(epoch[0])

    # each request's events go to events-<rank>.jsonl as soon as it finishes, so a long run's
    # memory does not grow with the number of requests (collect() reads the file back)
    event_log = open(out / f"events-{rank}.jsonl", "w", encoding="utf-8")
    loop = Loop(args=args, plan=plan, program=program, graph=graph, kernels=kernels, device=device, status=status,
                event_log=event_log, t0=t0)
    loop.run(out)
    status.set("finishing")
    dist.barrier()
    dist.destroy_process_group()
    event_log.close()
    report = {
        "device": device, "rank": rank, "threads": threads, "events_file": event_log.name.rsplit("/", 1)[-1],
        "bytes_sent": loop.bytes_sent, "bytes_received": loop.bytes_recv, "overlap": bool(args.overlap),
        "peak_mem_mb": _peak_mb(), "resident_mem_mb": _rss_mb(), "weights_mb": weights_mb,
        "loaded_peak_mem_mb": loaded_peak_mb,
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # includes the launcher's, see _peak_mb
        "weights_source": weights_source, "weights_note": weights_note,
        "where": _where(),
    }
    (out / f"report-{rank}.json").write_text(json.dumps(report))
    status.set("done")
    return report


def read_events(outdir: Path, report: dict) -> list[dict]:
    """A worker's events: from its event log (``events-<rank>.jsonl``), or inline in an older report."""
    if "events" in report:
        return report["events"]
    with open(Path(outdir) / report["events_file"], encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edgeslice-worker", description="Run one device's part of a plan (see module docstring).")
    ap.add_argument("--plan", required=True)
    ap.add_argument("--cluster", default=None, help="default: the cluster the plan carries")
    ap.add_argument("--model", default=None, help="must match the plan's model (checked)")
    ap.add_argument("--weights", default=None,
                    help="state-dict file of the plan's model (torch.save; `edgeslice run` writes one): the worker "
                         "maps it and reads only its share; without it the whole model is built, then pruned")
    ap.add_argument("--rank", type=int, default=None, help="default: $RANK (torchrun)")
    ap.add_argument("--world", type=int, default=None, help="default: $WORLD_SIZE (torchrun)")
    ap.add_argument("--master-addr", default=None, help="default: $MASTER_ADDR or 127.0.0.1")
    ap.add_argument("--master-port", type=int, default=None, help="default: $MASTER_PORT or 29500")
    ap.add_argument("--token", default=None,
                    help=f"the run's shared secret (default: ${rendezvous.TOKEN_ENV}); required when --master-addr is "
                         "not a loopback address; prefer the environment variable (argv is visible in ps)")
    ap.add_argument("--requests", type=int, default=1)
    ap.add_argument("--inflight", type=int, default=1)
    ap.add_argument("--overlap", action="store_true",
                    help="run a later request's ready tasks while the earliest waits for data (see runtime.serve)")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default="edgeslice-run")
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run_worker(args)
    except EdgesliceError as exc:
        print(f"edgeslice worker: error: {exc}", file=sys.stderr, flush=True)
        code = EXIT_REFUSED if isinstance(exc, (PlanMismatchError, ClusterError, rendezvous.TokenError)) else EXIT_FAILED
        os._exit(code)  # do not wait in torch.distributed's teardown for peers that are gone
    except RuntimeError as exc:  # gloo: a peer closed its connection
        print(f"edgeslice worker: error: {str(exc).splitlines()[0][:300]}", file=sys.stderr, flush=True)
        os._exit(EXIT_FAILED)
    return 0


if __name__ == "__main__":
    sys.exit(main())
