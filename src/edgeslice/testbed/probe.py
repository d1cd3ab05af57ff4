"""Link probe: what each emulated link really carries, measured with the runtime's own transport.

Run as one gloo process per device inside the testbed (``python -m
edgeslice.testbed.probe``; :func:`edgeslice.testbed.calibrate.probe_links`
starts them).  For every ordered pair a→b in turn, while the others wait at a
barrier, a sends tensors of several sizes to b and b answers with one element;
the round trip is ``c + n/rate`` (a→b) plus ``c`` (the one-element reply), so a
least-squares line through (n, rtt) gives the pair's rate and per-message
cost ``c``.  Each rank writes the pairs it sent on as JSON to ``OUT.<rank>``.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

SIZES = (4, 65_536, 524_288, 2_097_152)  # bytes


def fit(samples: list[tuple[int, float]]) -> tuple[float, float]:
    """(rate in bytes/s, per-message cost in s) of round trips ``(bytes, seconds)``: rtt = 2c + n/rate."""
    n = np.array([s[0] for s in samples], dtype=float)
    t = np.array([s[1] for s in samples], dtype=float)
    slope, icpt = np.polyfit(n, t, 1)
    return (1.0 / slope if slope > 0 else float("inf")), max(0.0, icpt / 2.0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgeslice.testbed.probe")
    ap.add_argument("--rank", type=int, required=True)
    ap.add_argument("--world", type=int, required=True)
    ap.add_argument("--master-addr", required=True)
    ap.add_argument("--master-port", type=int, required=True)
    ap.add_argument("--devices", required=True, help="comma-separated device names, by rank")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    names = a.devices.split(",")
    dist.init_process_group("gloo", init_method=f"tcp://{a.master_addr}:{a.master_port}", rank=a.rank,
                            world_size=a.world, timeout=timedelta(seconds=120))
    ack = torch.zeros(1)
    results = []
    for src in range(a.world):
        for dst in range(a.world):
            if src == dst:
                continue
            dist.barrier()
            samples = []
            for size in SIZES:
                buf = torch.zeros(max(1, size // 4))
                for rep in range(a.repeat + 1):  # the first round trip warms the connection up
                    if a.rank == src:
                        t0 = time.perf_counter()
                        dist.send(buf, dst)
                        dist.recv(ack, dst)
                        if rep:
                            samples.append((buf.numel() * 4, time.perf_counter() - t0))
                    elif a.rank == dst:
                        dist.recv(buf, src)
                        dist.send(ack, src)
            if a.rank == src:
                rate, c = fit(samples)
                results.append({"src": names[src], "dst": names[dst], "samples": samples,
                                "rate_mbps": rate * 8 / 1e6, "latency_ms": c * 1e3})
    # every namespace shares the file system: each rank writes its own pairs (no pickles on the wire)
    Path(f"{a.out}.{a.rank}").write_text(json.dumps(results, indent=1))
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
