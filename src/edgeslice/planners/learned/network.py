"""The MEC network's numbers for one episode, and the cost of placing one block: shared by the
environment, the exact optimum and every baseline, so they all price a placement the same way.

Li et al.'s model (``paper`` mode): block m of a task costs ``L_m = x + c_m / f`` where ``f`` is
``f_l`` on the device (place 0) or ``F_n`` on ES n (place n), and ``x`` moves its input ``I_m``
from the previous block's place: ``I_m / R_n`` between the device and ES n, ``I_m / R_max``
between two ESs, 0 on one place.  The device pays ``kappa f_l^2 c_m`` for a local block and
``p x`` for what it sends.  No queueing: tasks do not meet.

``contention`` mode adds what the paper leaves out: each ES computes one block at a time, each
ES's wireless channel carries one transfer at a time (shared by all devices, both directions),
each device's CPU is one FIFO; a block waits for its resource, and ``L_m`` (its finish minus the
previous block's finish) includes the wait.

>>> from edgeslice.planners.learned.config import load_config
>>> net = Network(load_config("paper", tasks=3), seed=0)
>>> net.R.shape, bool(((net.R >= 0.8e6) & (net.R <= 2.0e6)).all())
((3, 4), True)
>>> t = net.task(0)
>>> d, e = t.place(0, 1), t.energy
>>> float(round(d - net.inb[0] / net.R[0, 0] - net.cyc[0] / net.F[1], 12)), bool(e > 0)
(0.0, True)
"""

from __future__ import annotations

import numpy as np

from edgeslice.errors import OptionError
from edgeslice.planners.learned.blocks import model_blocks
from edgeslice.planners.learned.config import MECConfig


class Network:
    """One episode's instance: per task its arrival, device, channel rates and block deadlines.

    Everything random is drawn at construction from ``seed``, so the same seed
    gives the same episode to every policy and to the optimum.  ``F[p]`` is the
    compute rate (cycles/s) of place ``p`` (``F[0] = f_l``); ``R[t, n]`` the
    device↔ES-n rate for task ``t``; ``tau[t, m]`` block deadlines.
    """

    def __init__(self, cfg: MECConfig, seed: int | None = None):
        self.cfg = cfg
        b = model_blocks(cfg.model, cfg.blocks, cfg.input)
        self.blocks = b
        self.M, self.N, self.T = b.m, cfg.edge_servers, cfg.tasks
        self.cyc = [f / cfg.flops_per_cycle for f in b.flops]
        self.inb = list(b.in_bytes)
        self.F = [cfg.local_hz, *cfg.es_hz]
        rng = np.random.default_rng(seed)
        T, N = self.T, self.N
        if cfg.mode == "paper":
            self.arrival = np.arange(T) / cfg.rate
        else:
            self.arrival = np.cumsum(rng.exponential(1.0 / cfg.rate, T))
        self.device = rng.integers(0, cfg.iot_devices, T)
        gain = 10.0 ** (np.asarray(cfg.es_gain_db) / 10.0)
        h2 = gain[None, :] * rng.exponential(1.0, (T, N))  # Rayleigh fading: |h|^2 ~ Exp(mean gain)
        snr = cfg.tx_power_w * h2 / (cfg.noise_w_per_hz * cfg.bandwidth_hz)
        R = cfg.bandwidth_hz * np.log2(1.0 + snr) / 8.0  # bytes/s
        lo, hi = cfg.rate_range_Bps
        self.R = np.clip(R, lo, hi)
        if cfg.link_Bps is not None:  # measured links: each task's rates are its device's
            self.R = np.asarray(cfg.link_Bps, float)[self.device]
        if cfg.block_s is not None:
            if any(len(r) != self.M for r in cfg.block_s):
                raise OptionError(f"mec config: block_s: needs {self.M} seconds per place (the model's blocks), "
                                  f"got rows of {sorted({len(r) for r in cfg.block_s})}")
            self.comp = [list(map(float, r)) for r in cfg.block_s]
        else:
            self.comp = [[c / f for c in self.cyc] for f in self.F]
        dlo, dhi = cfg.deadline_s
        self.tau = rng.uniform(dlo, dhi, (T, self.M))
        self.reset_state()

    def reset_state(self) -> None:
        """Empty queues and full energy budgets (the start of the episode)."""
        self.energy_left = [self.cfg.energy_budget_j] * self.cfg.iot_devices
        self.es_free = [0.0] * self.N
        # "es": one channel per ES; "link": one per (device, ES, direction), index (dev * N + n) * 2 + (to the ES)
        self.chan_free = [0.0] * (self.N if self.cfg.channels == "es" else 2 * self.N * self.cfg.iot_devices)
        self.local_free = [0.0] * self.cfg.iot_devices
        self.es_cycles = [0.0] * self.N  # cycles placed on each ES so far (Greedy's load in paper mode)

    def task(self, t: int) -> TaskRun:
        return TaskRun(self, t)

    def channel(self, dev: int, n: int, up: bool) -> int:
        """The index in ``chan_free`` of the channel a transfer between device ``dev`` and ES ``n`` (0-based)
        queues behind: ES n's one radio channel (``channels: es``), or that pair's link in that direction."""
        return n if self.cfg.channels == "es" else (dev * self.N + n) * 2 + up

    def state(self) -> tuple:
        """A copy of everything placing a task changes (queues, budgets), for :meth:`restore`."""
        return (list(self.energy_left), list(self.es_free), list(self.chan_free), list(self.local_free),
                list(self.es_cycles))

    def restore(self, state: tuple) -> None:
        """Put back a :meth:`state` (a what-if placement undone)."""
        self.energy_left, self.es_free, self.chan_free, self.local_free, self.es_cycles = (list(x) for x in state)

    # -- the paper mode's per-task tables (the DP's edge costs) ----------------------------------

    def tables(self, t: int):
        """``(D, E)``: ``D[m, q, p]`` seconds and ``E[m, q, p]`` joules of block m on p after block m-1 on q
        (``q = 0`` for m = 0: the image is on the device); paper mode only (no queues)."""
        M, P = self.M, self.N + 1
        cfg = self.cfg
        rate = np.full((P, P), cfg.backhaul_Bps)
        rate[0, 1:] = rate[1:, 0] = self.R[t]
        x = np.asarray(self.inb)[:, None, None] / rate[None]
        x[:, np.arange(P), np.arange(P)] = 0.0
        comp = np.asarray(self.comp).T  # (M, P)
        D = x + comp[:, None, :]
        E = np.zeros((M, P, P))
        E[:, 0, 1:] = cfg.tx_power_w * x[:, 0, 1:]
        E[:, :, 0] += cfg.kappa * cfg.local_hz ** 2 * np.asarray(self.cyc)[:, None]
        return D, E


class TaskRun:
    """One task being placed block by block: :meth:`place` commits block m to place p and returns ``L_m``."""

    __slots__ = ("delays", "dev", "edge", "energy", "local", "m", "net", "prev", "ready", "t")

    def __init__(self, net: Network, t: int):
        self.net, self.t = net, t
        self.dev = int(net.device[t])
        self.m, self.prev = 0, 0
        self.ready = float(net.arrival[t])
        self.energy = self.edge = self.local = 0.0
        self.delays: list[float] = []

    def place(self, m: int, p: int) -> float:
        """Commit block ``m`` (the next one) to place ``p``; returns its delay ``L_m`` (waits included)."""
        net, cfg = self.net, self.net.cfg
        assert m == self.m, "blocks are placed in order"
        q, nbytes, cyc = self.prev, net.inb[m], net.cyc[m]
        contention = cfg.mode == "contention"
        start = self.ready
        t = start
        if p != q:
            if q == 0 or p == 0:
                n = (p or q) - 1
                dur = nbytes / net.R[self.t, n]
                if contention:
                    c = net.channel(self.dev, n, q == 0)
                    t = max(t, net.chan_free[c])
                    net.chan_free[c] = t + dur
                if q == 0:
                    self.energy += cfg.tx_power_w * dur
            else:
                dur = nbytes / cfg.backhaul_Bps
            t += dur
        tx_end = t
        dur = net.comp[p][m]
        if contention:
            if p == 0:
                t = max(t, net.local_free[self.dev])
                net.local_free[self.dev] = t + dur
            else:
                t = max(t, net.es_free[p - 1])
                net.es_free[p - 1] = t + dur
        t += dur
        if p == 0:
            self.energy += cfg.kappa * cfg.local_hz ** 2 * cyc
            self.edge += tx_end - start
            self.local += t - tx_end
        else:
            net.es_cycles[p - 1] += cyc
            self.edge += t - start
        L = t - start
        self.ready, self.prev, self.m = t, p, m + 1
        self.delays.append(L)
        return L

    def finish(self) -> float:
        """Charge the task's energy to its device; returns the joules drawn beyond the budget."""
        net = self.net
        left = net.energy_left[self.dev]
        over = self.energy - max(left, 0.0)
        net.energy_left[self.dev] = left - self.energy
        return max(over, 0.0)


def advance(net: Network, t: int, m: int, q: int, p: int, ready: float, chan: tuple, es: tuple,
            loc: float) -> tuple[float, tuple, tuple, float, float]:
    """:meth:`TaskRun.place` as a pure function of a queue state, for searches that try many placements.

    Block ``m`` of task ``t`` goes to place ``p`` after block ``m - 1`` on ``q``
    finished at ``ready``; ``chan`` and ``es`` are the channels' and the ESs'
    free times, ``loc`` the task's device's CPU free time.  Returns ``(finish,
    chan, es, loc, joules)`` — the same numbers :meth:`TaskRun.place` commits
    (``tests/planners/learned/test_reference.py`` checks the two agree).
    """
    cfg = net.cfg
    contention = cfg.mode == "contention"
    tt, joules = ready, 0.0
    if p != q:
        if q == 0 or p == 0:
            n = (p or q) - 1
            dur = net.inb[m] / net.R[t, n]
            if contention:
                c = net.channel(int(net.device[t]), n, q == 0)
                if chan[c] > tt:
                    tt = chan[c]
                chan = chan[:c] + (tt + dur,) + chan[c + 1:]
            if q == 0:
                joules += cfg.tx_power_w * dur
        else:
            dur = net.inb[m] / cfg.backhaul_Bps
        tt += dur
    dur = net.comp[p][m]
    if p == 0:
        if contention and loc > tt:
            tt = loc
        tt += dur
        loc = tt
        joules += cfg.kappa * cfg.local_hz ** 2 * net.cyc[m]
    else:
        if contention and es[p - 1] > tt:
            tt = es[p - 1]
        tt += dur
        if contention:
            es = es[:p - 1] + (tt,) + es[p:]
    return tt, chan, es, loc, joules


def penalty(L: float, tau: float) -> float:
    """The deadline term of the reward: seconds past the block's deadline."""
    return L - tau if L > tau else 0.0

