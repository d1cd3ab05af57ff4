"""Hogwild A3C: the workers split over OS processes that update one network in shared memory.

Mnih et al.'s A3C runs its k actor-learners as asynchronous threads; here each
of ``processes`` OS processes (spawned, one torch thread each) takes every
``processes``-th worker and runs the same rollout-and-update loop as the
one-process trainer (:func:`edgeslice.planners.learned.a3c._loop`) against a
network whose parameters, observation statistics and RMSProp state all live
in shared memory.  Updates are applied without locks (Recht et al.'s
Hogwild): a process reads parameters another one is writing, which is A3C's
staleness.  The episode count, the step count that drives the lr and ε
schedules, and the learning curve are shared too; the parent process only
collects the curve, reports progress and writes the checkpoints.

What this buys on a machine with c cores is at most min(c, processes) times
the environment steps and updates per second of one process; measured in
benchmarks/RESULTS.md.  Unlike ``processes=1`` it is **not deterministic**:
the interleaving of updates depends on the OS scheduler.
"""

from __future__ import annotations

import queue as queue_mod
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.multiprocessing as tmp

from edgeslice.errors import EdgesliceError


def shared_state(net: torch.nn.Module) -> list[dict]:
    """RMSProp's per-parameter state for ``net`` (one dict per parameter, in order), allocated in shared memory."""
    return [{"step": torch.zeros((), dtype=torch.float32).share_memory_(),
             "square_avg": torch.zeros_like(p, memory_format=torch.preserve_format).share_memory_()}
            for p in net.parameters()]


def _child(rank, opts, cfg, net, states, seeds, episodes, counter, steps, out, start):
    from edgeslice.planners.learned.a3c import _loop, _Worker, make_optimizer

    try:
        torch.set_num_threads(1)
        torch.manual_seed(opts.seed * 1000 + rank)
        gen = torch.Generator().manual_seed(opts.seed * 1000 + rank)
        rng = np.random.default_rng(opts.seed * 1000 + rank)
        optim = make_optimizer(net, opts.lr, states)
        workers = [_Worker(opts.algo, cfg, s) for s in seeds]
        start.wait(timeout=120)  # every process imported and built: start together
        _loop(opts, net, optim, workers, gen, rng, out.put, None, episodes, counter=counter, steps=steps)
        out.put(("done", rank))
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises it by name
        out.put(("error", rank, f"{type(e).__name__}: {e}"))


def train_processes(opts, cfg, net: torch.nn.Module, seeds: list[int], *, progress: Callable | None = None,
                    checkpoint: Callable | None = None) -> list[dict]:
    """Train ``net`` in place with ``opts.processes`` Hogwild processes; returns the learning curve in episode order."""
    P = min(opts.processes, len(seeds))
    net.share_memory()
    states = shared_state(net)
    ctx = tmp.get_context("spawn")
    counter, steps, out, start = ctx.Value("l", 0), ctx.Value("l", 0), ctx.Queue(), ctx.Barrier(P)
    procs = [ctx.Process(target=_child, name=f"edgeslice-a3c-{r}", daemon=True,
                         args=(r, opts, cfg, net, states, seeds[r::P], opts.episodes, counter, steps, out, start))
             for r in range(P)]
    for p in procs:
        p.start()
    curve: list[dict] = []
    every = max(opts.episodes // 10, 1)
    next_ckpt = every
    done, errors = set(), []
    try:
        while len(done) < P:
            try:
                msg = out.get(timeout=1.0)
            except queue_mod.Empty:
                dead = [p for r, p in enumerate(procs) if r not in done and not p.is_alive()]
                if dead and out.empty():
                    raise EdgesliceError(f"train: Hogwild process {dead[0].name} died (exit code "
                                         f"{dead[0].exitcode}); run with processes=1 to see the error") from None
                continue
            if isinstance(msg, tuple):
                done.add(msg[1])
                if msg[0] == "error":
                    errors.append(f"process {msg[1]}: {msg[2]}")
                continue
            curve.append(msg)
            if progress is not None and msg["episode"] <= opts.episodes:
                progress(msg)
            if checkpoint is not None and len(curve) >= next_ckpt:
                checkpoint(net, len(curve))
                next_ckpt += every
    finally:
        deadline = time.monotonic() + 30
        for p in procs:
            p.join(timeout=max(deadline - time.monotonic(), 0.1))
            if p.is_alive():
                p.kill()
                p.join()
    if errors:
        raise EdgesliceError("train: " + "; ".join(errors))
    curve.sort(key=lambda e: e["episode"])
    return curve[: opts.episodes]
