"""One device's worker in a multi-source run: many Programs at once, from several sources, on shared devices.

The MEC real run (:mod:`edgeslice.runtime.mec`) gives every task its own Plan —
its blocks placed by the agent, its input on its own IoT device — and starts
one worker per testbed device; every worker reads the same scenario file (the
tasks in release order, each with its plan and release time) and takes part in
every task:

- all receives of all tasks are posted at the start (tag ``task · 64 + transfer``),
  so a transfer moves as soon as its sender has the data, whatever the receiver
  is doing — the link, not the receiver, paces it;
- a **releaser thread** on each source device wakes at each of its tasks' release
  times, draws the task's input and sends it where the plan says: a device busy
  computing another task does not hold back a new task's upload;
- the main thread runs this device's compute tasks of every task in task order
  (each device is one FIFO, as the ``contention`` simulator's devices and ESs
  are), waiting for each one's data, and sends what each produces;
- the device of a task's last block saves the output and the finish time.

Before it joins its device's CPU quota a worker runs the whole model twice
(weights paged in, allocator warm), as a deployed server would have.

Events (release, compute start/end, finish) are written with one shared clock
(rank 0's, broadcast) to ``events-<rank>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from edgeslice.errors import EdgesliceError
from edgeslice.program.program import ComputeTask, InputTask, OutputTask
from edgeslice.program.regions import slices

TAGS_PER_TASK = 64


class _Task:
    def __init__(self, i: int, spec: dict, plan, program):
        self.i, self.release, self.plan, self.program = i, float(spec["release_s"]), plan, program
        self.store: dict[str, dict] = {}
        self.recvs: dict[str, tuple] = {}
        self.released = threading.Event()
        if len(program.transfers) > TAGS_PER_TASK:
            raise EdgesliceError(f"task {i}: {len(program.transfers)} transfers, at most {TAGS_PER_TASK}")
        self.tag = {x.id: i * TAGS_PER_TASK + j for j, x in enumerate(program.transfers)}


def run(args) -> None:
    from edgeslice.execute.check import load_for_plan
    from edgeslice.execute.inprocess import assemble, run_compute
    from edgeslice.execute.kernels import Kernels
    from edgeslice.plan.plan import Plan
    from edgeslice.program.lower import lower
    from edgeslice.runtime import rendezvous
    from edgeslice.runtime.worker import request_input
    from edgeslice.testbed.procs import join_deferred_cgroups

    scen = json.loads(Path(args.scenario).read_text())
    base = Path(args.scenario).parent
    devices = scen["devices"]
    me = devices[args.rank]
    rank_of = {d: i for i, d in enumerate(devices)}
    torch.set_num_threads(1)
    plans = [Plan.load(base / t["plan"]) for t in scen["tasks"]]
    graph, gm = load_for_plan(plans[0])
    kernels = Kernels(graph, gm)
    tasks = [_Task(i, t, p, lower(p, graph)) for i, (t, p) in enumerate(zip(scen["tasks"], plans))]
    with torch.no_grad():  # warm up at full speed, before the quota: weights paged in, allocator primed
        for _ in range(2):
            gm(torch.zeros(1, *graph.input_shape))
    join_deferred_cgroups(f"device {me!r}")
    meeting = rendezvous.connect(args.master_addr, args.master_port, args.rank, len(devices), args.timeout,
                                 os.environ.get(rendezvous.TOKEN_ENV))
    dist.init_process_group("gloo", store=meeting, rank=args.rank, world_size=len(devices),
                            timeout=timedelta(seconds=args.timeout))
    for k in tasks:  # every receive of every task, posted now: a sender never waits for this device
        for x in k.program.transfers:
            if x.dst == me:
                buf = torch.empty((k.program.batch, *[hi - lo for lo, hi in x.region]))
                k.recvs[x.id] = (dist.irecv(buf, rank_of[x.src], tag=k.tag[x.id]), buf, x)
    epoch = torch.tensor([time.time() + 1.0], dtype=torch.float64)  # start one second from now, together
    dist.broadcast(epoch, 0)
    t0 = float(epoch[0])
    events: list[dict] = []
    sends: list = []
    lock = threading.Lock()

    def send_after(k: _Task, task_id: str) -> None:
        for x in k.program.transfers:
            if x.src == me and x.source == task_id:
                tile, reg = k.store[task_id][x.tensor]
                buf = tile[slices(reg, x.region)].contiguous()
                with lock:
                    sends.append((dist.isend(buf, rank_of[x.dst], tag=k.tag[x.id]), buf))

    def releaser() -> None:
        for k in tasks:
            if k.plan.source != me:
                continue
            wait = t0 + k.release - time.time()
            if wait > 0:
                time.sleep(wait)
            inp = next(t for t in k.program.tasks if isinstance(t, InputTask))
            x = request_input(scen["seed"], k.i, (k.program.batch, *graph.input_shape))
            k.store[inp.id] = {inp.tensor: (x, inp.region)}
            with lock:
                events.append({"task": k.i, "kind": "release", "t": time.time() - t0})
            send_after(k, inp.id)
            k.released.set()

    rel = threading.Thread(target=releaser, daemon=True, name="releaser")
    rel.start()
    out = Path(args.out)
    for k in tasks:
        mine = [t for t in k.program.tasks if isinstance(t, ComputeTask) and t.device == me]
        if not mine and k.plan.sink != me:
            continue
        if k.plan.source == me:
            k.released.wait()

        def gather(need, who, k=k):
            for p in need.pieces:
                if p.task in k.recvs and p.task not in k.store:
                    work, buf, x = k.recvs[p.task]
                    try:
                        work.wait()
                    except RuntimeError as exc:
                        raise EdgesliceError(f"device {me!r}: task {k.i} got no data from {x.src!r} "
                                             f"(transfer {x.id}) within {args.timeout:g} s") from exc
                    k.store[p.task] = {x.tensor: (buf, x.region)}
            return assemble(need, {me: k.store}, me, k.program.batch, who)

        for t in mine:
            inputs = {n.tensor: (gather(n, t.id), n.region) for n in t.needs}
            s = time.time() - t0
            with torch.no_grad():
                k.store[t.id] = run_compute(t, graph, kernels, inputs)
            with lock:
                events.append({"task": k.i, "kind": "compute", "start": s, "end": time.time() - t0, "id": t.id,
                               "segment": t.segment})
            send_after(k, t.id)
        if k.plan.sink == me:
            outp = next(t for t in k.program.tasks if isinstance(t, OutputTask))
            y = gather(outp.need, "output")
            with lock:
                events.append({"task": k.i, "kind": "finish", "t": time.time() - t0})
            np.save(out / f"output-{k.i}.npy", y.numpy(), allow_pickle=False)
    rel.join()
    for w, _ in sends:
        w.wait()
    dist.barrier()
    dist.destroy_process_group()
    (out / f"events-{args.rank}.json").write_text(json.dumps({"device": me, "events": events}))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m edgeslice.runtime.mecworker")
    p.add_argument("--scenario", required=True)
    p.add_argument("--rank", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--master-addr", default="127.0.0.1")
    p.add_argument("--master-port", type=int, required=True)
    p.add_argument("--timeout", type=float, default=120.0)
    args = p.parse_args(argv)
    try:
        run(args)
    except EdgesliceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
