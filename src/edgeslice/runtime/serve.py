"""A worker's request loop: its Program tasks for a stream of requests, in the simulator's order.

A device keeps a *window* of up to ``inflight`` requests whose receives are posted (gloo moves their
data in the background while it computes).  At the source a request enters the window only when the
sink has reported request ``r - inflight`` finished, so at most ``inflight`` are in the system.
Within a request a device runs its compute tasks in Program order (then, at the sink, the output).
Across requests there are two policies, the same two the simulator has
(:func:`edgeslice.sim.simulate.simulate`'s ``overlap``):

- **in order** (default): all of request r's tasks before any of r+1's; a task waits for its data;
- **overlap** (DeCNN's inter-sample overlap, note *overlap*): a device whose earliest request waits
  for data runs the next task of the earliest request whose data is all here.  gloo's
  ``is_completed()`` stays False until ``wait()`` is called (torch 2.13, for receives as for
  sends), so each request in the window has a thread that waits for its receives in the order its
  tasks need them and wakes the loop after each; the loop itself never blocks on one request while
  another could run.

Each finished request's events go to the worker's event log at once (nothing grows with the number
of requests); sends of requests ``inflight`` or more behind are waited for and dropped.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import torch
import torch.distributed as dist

from edgeslice.errors import EdgesliceError
from edgeslice.program.program import ComputeTask, InputTask, OutputTask
from edgeslice.program.regions import slices

DONE_TAG = 1 << 30  # tags at and above this carry "request finished" tokens (sink → source)


def _why(exc: RuntimeError) -> str:
    return "timed out" if "Timed out" in str(exc) else str(exc).splitlines()[0].split("] ")[-1][:120]


class _Request:
    """One request in a device's window: its tensors, posted receives and progress."""

    def __init__(self, req: int):
        self.req = req
        self.store: dict[str, dict] = {}
        self.recvs: dict[str, tuple] = {}  # transfer id -> (work, buffer, transfer)
        self.arrived: set[str] = set()  # receives whose wait() returned (overlap: set by the waiter thread)
        self.cursor = 0  # next of the device's compute tasks
        self.output_done = False
        self.started = None


class Loop:
    """Serve ``requests`` requests of ``program`` on ``device`` (see module docstring)."""

    def __init__(self, *, args, plan, program, graph, kernels, device: str, status, event_log, t0: float):
        self.args, self.plan, self.program, self.graph, self.kernels = args, plan, program, graph, kernels
        self.device, self.status, self.log, self.t0 = device, status, event_log, t0
        self.rank_of = {d: i for i, d in enumerate(plan.devices)}
        transfers = program.transfers
        self.tag_of = {t.id: j for j, t in enumerate(transfers)}
        self.ntr = max(1, len(transfers))
        self.incoming = [t for t in transfers if t.dst == device]
        self.sends_after: dict[str, list] = {}
        for t in transfers:
            if t.src == device:
                self.sends_after.setdefault(t.source, []).append(t)
        self.mine = [t for t in program.tasks if isinstance(t, ComputeTask) and t.device == device]
        self.inp = next(t for t in program.tasks if isinstance(t, InputTask))
        self.outp = next(t for t in program.tasks if isinstance(t, OutputTask))
        # the order this device's tasks read their receives in (the waiter threads wait in this order)
        order = []
        for t in self.mine + ([self.outp] if device == plan.sink else []):
            for need in (t.needs if isinstance(t, ComputeTask) else (t.need,)):
                order += [p.task for p in need.pieces if p.task in self.tag_of and p.task not in order]
        self.order = [x for x in order if any(i.id == x for i in self.incoming)]
        self.events: list[dict] = []
        self.pending_sends: list = []
        self.bytes_sent = self.bytes_recv = 0
        self.token_works: dict[int, tuple] = {}  # at the source: request -> posted irecv of the sink's "finished" token
        self.tokens: set[int] = set()  # overlap: requests whose token has come
        self.cond = threading.Condition()
        self.error: EdgesliceError | None = None

    def now(self) -> float:
        return time.time() - self.t0

    # ---- data ---------------------------------------------------------------------------
    def _post(self, r: _Request) -> None:
        for x in self.incoming:
            buf = torch.empty((self.program.batch, *[hi - lo for lo, hi in x.region]))
            r.recvs[x.id] = (dist.irecv(buf, self.rank_of[x.src], tag=r.req * self.ntr + self.tag_of[x.id]), buf, x)
        if self.args.overlap and r.recvs:
            threading.Thread(target=self._waiter, args=(r,), daemon=True, name=f"recv-{r.req}").start()

    def _waiter(self, r: _Request) -> None:
        for xid in self.order:
            work, _, x = r.recvs[xid]
            try:
                work.wait()
            except RuntimeError as exc:
                with self.cond:
                    self.error = self._no_data(r.req, x, "", exc)
                    self.cond.notify_all()
                return
            with self.cond:
                r.arrived.add(xid)
                self.cond.notify_all()

    def _no_data(self, req: int, x, who: str, exc: RuntimeError) -> EdgesliceError:
        task = f" task {who} of" if who else ""
        return EdgesliceError(f"device {self.device!r}:{task} request {req} got no data from {x.src!r} (transfer {x.id}) "
                              f"within {self.args.timeout:g} s: {_why(exc)}")

    def _arrive(self, r: _Request, xid: str, who: str) -> None:
        if xid in r.store:
            return
        work, buf, x = r.recvs[xid]
        if not self.args.overlap:
            self.status.set(f"request {r.req}: task {who} waits for transfer {x.id} from {x.src}")
            try:
                work.wait()
            except RuntimeError as exc:
                raise self._no_data(r.req, x, who, exc) from None
        r.store[xid] = {x.tensor: (buf, x.region)}
        self.bytes_recv += x.nbytes
        self.events.append({"req": r.req, "task": x.id, "kind": "recv", "end": self.now(), "nbytes": x.nbytes, "src": x.src})

    def _gather(self, r: _Request, need, who: str):
        from edgeslice.execute.inprocess import assemble

        for p in need.pieces:
            if p.task in r.recvs:
                self._arrive(r, p.task, who)
        return assemble(need, {self.device: r.store}, self.device, self.program.batch, who)

    def _send_from(self, r: _Request, task_id: str) -> None:
        for x in self.sends_after.get(task_id, ()):
            tile, reg = r.store[task_id][x.tensor]
            buf = tile[slices(reg, x.region)].contiguous()
            start = self.now()  # before isend: the receiver may be done before isend returns
            tag = r.req * self.ntr + self.tag_of[x.id]
            self.pending_sends.append((dist.isend(buf, self.rank_of[x.dst], tag=tag), buf, r.req))
            self.events.append({"req": r.req, "task": x.id, "kind": "send", "start": start, "nbytes": x.nbytes})
            self.bytes_sent += x.nbytes

    # ---- one step -----------------------------------------------------------------------
    def _next_needs(self, r: _Request):
        if r.cursor < len(self.mine):
            return self.mine[r.cursor].needs
        if self.device == self.plan.sink and not r.output_done:
            return (self.outp.need,)
        return ()

    def _ready(self, r: _Request) -> bool:
        return all(p.task in r.arrived for need in self._next_needs(r) for p in need.pieces if p.task in r.recvs)

    def _finished(self, r: _Request) -> bool:
        return r.cursor >= len(self.mine) and (self.device != self.plan.sink or r.output_done)

    def _step(self, r: _Request, out) -> None:
        """Run ``r``'s next task: a compute (and its sends) or, at the sink, the output."""
        from edgeslice.execute.inprocess import run_compute

        if r.cursor < len(self.mine):
            t = self.mine[r.cursor]
            inputs = {n.tensor: (self._gather(r, n, t.id), n.region) for n in t.needs}
            self.status.set(f"request {r.req}: computing task {t.id}")
            s = self.now()
            with torch.no_grad():
                r.store[t.id] = run_compute(t, self.graph, self.kernels, inputs)
            self.events.append({"req": r.req, "task": t.id, "kind": "compute", "start": s, "end": self.now(), "segment": t.segment})
            r.cursor += 1
            self._send_from(r, t.id)
            return
        y = self._gather(r, self.outp.need, "output")
        self.events.append({"req": r.req, "task": self.outp.id, "kind": "output", "start": self.now(), "end": self.now()})
        np.save(out / f"output-{r.req}.npy", y.numpy(), allow_pickle=False)
        r.output_done = True
        plan = self.plan
        if plan.sink != plan.source and r.req + self.args.inflight < self.args.requests:
            self.pending_sends.append((dist.isend(torch.tensor([r.req], dtype=torch.int64), self.rank_of[plan.source],
                                                  tag=DONE_TAG + r.req), None, r.req))

    def _open(self, req: int) -> _Request:
        """Enter ``req`` into the window: post its receives (a device other than the source has then started it)."""
        r = _Request(req)
        self._post(r)
        if self.device != self.plan.source:
            r.started = self.now()
        return r

    def _may_start(self, r: _Request) -> bool:
        """At the source: whether the sink has reported request ``r - inflight`` finished (overlap: without waiting)."""
        q = r.req - self.args.inflight
        if self.plan.sink == self.plan.source or q < 0:
            return True
        return q in self.tokens

    def _start(self, r: _Request) -> None:
        """At the source: the request's input, sent where the Program says; first, in order, wait for the sink's
        token of request ``r - inflight`` (with overlap the loop has seen it come)."""
        plan, args = self.plan, self.args
        q = r.req - args.inflight
        if plan.sink != plan.source and q >= 0 and args.overlap:
            self.token_works.pop(q, None)  # its waiter thread saw it come
        elif plan.sink != plan.source and q >= 0:
            self.status.set(f"waiting for the sink to finish request {q}")
            work, _ = self.token_works.pop(q)
            try:
                work.wait()
            except RuntimeError as exc:
                raise EdgesliceError(f"device {self.device!r}: the sink {plan.sink!r} did not report request {q} "
                                     f"finished within {args.timeout:g} s: {_why(exc)}") from None
        r.started = self.now()
        x_in = self._input(r.req)
        r.store[self.inp.id] = {self.inp.tensor: (x_in, self.inp.region)}
        self.events.append({"req": r.req, "task": self.inp.id, "kind": "input", "start": r.started, "end": self.now()})
        self._send_from(r, self.inp.id)
        if plan.sink != plan.source and r.req + args.inflight < args.requests:
            tok = torch.zeros(1, dtype=torch.int64)
            work = dist.irecv(tok, self.rank_of[plan.sink], tag=DONE_TAG + r.req)
            self.token_works[r.req] = (work, tok)
            if args.overlap:
                threading.Thread(target=self._token_waiter, args=(r.req, work), daemon=True, name=f"token-{r.req}").start()

    def _token_waiter(self, req: int, work) -> None:
        try:
            work.wait()
        except RuntimeError as exc:
            with self.cond:
                self.error = EdgesliceError(f"device {self.device!r}: the sink {self.plan.sink!r} did not report request "
                                            f"{req} finished within {self.args.timeout:g} s: {_why(exc)}")
                self.cond.notify_all()
            return
        with self.cond:
            self.tokens.add(req)
            self.cond.notify_all()

    def _input(self, req: int) -> torch.Tensor:
        from edgeslice.runtime.worker import request_input

        return request_input(self.args.seed, req, (self.program.batch, *self.graph.input_shape))

    def _retire(self, r: _Request, oldest: int) -> None:
        # a gloo send's is_completed() stays False until wait() is called, so wait for the sends of requests
        # `inflight` or more behind the oldest one still open here (their receivers have posted the receives,
        # a device waits only on one behind it: no new deadlock) and keep the rest; else every sent buffer
        # is held to the end of the run
        keep = min(r.req, oldest) - max(1, self.args.inflight)
        for w, _, _ in [p for p in self.pending_sends if p[2] <= keep]:
            w.wait()
        self.pending_sends = [p for p in self.pending_sends if p[2] > keep]
        if self.events:
            self.log.write("".join(_json(e) + "\n" for e in self.events))
            self.log.flush()
            self.events.clear()

    # ---- the loop -----------------------------------------------------------------------
    def run(self, out) -> None:
        args = self.args
        window = max(1, args.inflight)
        active: list[_Request] = []
        nxt = 0
        while nxt < args.requests or active:
            while nxt < args.requests and len(active) < window:  # receives posted `inflight` requests ahead
                active.append(self._open(nxt))
                nxt += 1
            r = self._pick(active) if args.overlap else active[0]
            if r.started is None:
                self._start(r)
            elif not self._finished(r):
                self._step(r, out)
            if r.started is not None and self._finished(r):
                active.remove(r)
                self._retire(r, active[0].req if active else nxt)
        for w, _, _ in self.pending_sends:
            w.wait()
        self.pending_sends.clear()
        if self.events:
            self.log.write("".join(_json(e) + "\n" for e in self.events))
            self.events.clear()

    def _pick(self, active: list[_Request]) -> _Request:
        """Overlap: the earliest request that can go on — its start (at the source, once the sink's token has
        come), or its next task with all its data here — waiting for an arrival when none can."""
        with self.cond:
            while True:
                if self.error is not None:
                    raise self.error
                for r in active:
                    if r.started is None:
                        if self._may_start(r):
                            return r
                        break  # requests start in order
                    if self._finished(r) or self._ready(r):
                        return r
                w = active[0]
                x = next((p.task for need in self._next_needs(w) for p in need.pieces
                          if p.task in w.recvs and p.task not in w.arrived), None)
                what = f"transfer {x}" if x else f"the sink to finish request {w.req - self.args.inflight}"
                self.status.set(f"request {w.req}: waits for {what} (overlap: and for every later request's data)")
                self.cond.wait()


def _json(e: dict) -> str:
    import json

    return json.dumps(e)
