"""The runtime's own cost per transfer: a tiny tensor between two processes on loopback.

Two processes ping-pong a one-element float32 tensor with the same calls the
worker uses (gloo ``isend`` + ``irecv().wait()``); one transfer costs half a
round trip.  Target (issue "Run any plan for real"): under 1 ms.

    .venv/bin/python benchmarks/bench_transfer.py [--rounds 2000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _peer(rank: int, port: int, rounds: int, q) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2, timeout=timedelta(seconds=60))
    buf = torch.zeros(1)
    other = 1 - rank
    times = []
    for i in range(rounds + 100):
        t = time.perf_counter()
        if rank == 0:
            dist.isend(buf, other, tag=i).wait()
            dist.irecv(buf, other, tag=i).wait()
        else:
            dist.irecv(buf, other, tag=i).wait()
            dist.isend(buf, other, tag=i).wait()
        if i >= 100:  # warm-up excluded
            times.append(time.perf_counter() - t)
    dist.barrier()
    dist.destroy_process_group()
    if rank == 0:
        q.put(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2000)
    args = ap.parse_args()
    from edgeslice.runtime.launch import free_port

    port = free_port()
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_peer, args=(r, port, args.rounds, q)) for r in range(2)]
    for p in procs:
        p.start()
    rtts = q.get(timeout=300)
    for p in procs:
        p.join(60)
    one_way = [t / 2 for t in rtts]
    res = {"transfer_median_ms": 1e3 * statistics.median(one_way), "transfer_p90_ms": 1e3 * sorted(one_way)[int(0.9 * len(one_way))],
           "rounds": len(rtts), "target_ms": 1.0}
    print(f"tiny tensor between two processes on loopback (gloo isend/irecv): median {res['transfer_median_ms']:.3f} ms, "
          f"p90 {res['transfer_p90_ms']:.3f} ms per transfer over {len(rtts)} round trips (target < 1 ms)")
    print(json.dumps(res))


if __name__ == "__main__":
    sys.exit(main())
