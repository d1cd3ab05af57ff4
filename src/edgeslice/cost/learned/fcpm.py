"""FCPM: a layer's latency on a device learned from its FLOPs and the device's CPU load (OfpCNN, Yang et al. 2023).

OfpCNN's observation: a layer's time depends on its FLOPs *and* on how busy the
device already is, and not as ``FLOPs ÷ (speed × (1 − load))`` says — the other
work's share of the CPU depends on how the scheduler splits the quota between
it and us, small layers pay dispatch costs a rate does not see, and different
kinds of layer reach different fractions of the peak.  So FCPM learns the time
from measurements taken under load (a *load profile*,
:mod:`edgeslice.cost.learned.collect`).

**Features** (:func:`features`), per (layer, output fraction, load): log FLOPs,
log output and input elements, log parameter bytes, the load L and
−log(1 − L) (what an ideal fair share would give), log kernel area, log channels
in and out, log groups, and the layer's kind family (conv, depthwise, grouped,
linear, pool, batch-norm, activation, add, concat, other) one-hot.  Target: log
seconds.

**Models compared** (:data:`CANDIDATES`), chosen per device by held-out error
with whole *models* held out (leave-one-model-out over the training models,
scored as OfpCNN's accuracy ``1 − |p − m| / m`` on layers of ≥ 1 ms):
``additive`` (per kind family and load level, time = c0 + c1·FLOPs + c2·elements
out + c3·elements in + c4·parameter bytes with c ≥ 0, interpolated between load
levels in −log(1 − load)), ``loglinear`` (ridge regression of log time, one per
kind family, with load interaction terms), ``gbrt`` (scikit-learn's histogram gradient-boosted trees),
``mlp`` (a two-layer perceptron on standardised features).  The winner is refitted
on all training samples.

**Saved with the profile**: the choice (``fcpm`` in the load-profile file, written by
``edgeslice predictor fit``) travels with the samples it was fitted on, and fitting
is deterministic (fixed seeds), so a plan that carries its cluster (and the
device's load profile by content) predicts the same anywhere.  Nothing is
pickled.

A device whose cluster entry names a load profile as its ``profile`` is predicted
by :class:`FCPMCost` in every planner and in the simulator; the load is the
device's ``cpu_load`` as given at each call (see :meth:`Cluster.at` and
:meth:`Cluster.with_loads`), never frozen into the model.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from edgeslice.cost.base import CostModel

FAMILIES = ("conv", "dwconv", "gconv", "linear", "pool", "bn", "act", "binary", "cat", "other")
CANDIDATES = ("additive", "loglinear", "gbrt", "mlp")
MIN_JUDGED_S = 1e-3  # OfpCNN's accuracy is judged on layers of at least 1 ms


def family(kind: str, groups: int, cin: int) -> str:
    if kind == "conv":
        return "conv" if groups <= 1 else "dwconv" if groups == cin else "gconv"
    if kind in ("maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool"):
        return "pool"
    return {"linear": "linear", "batchnorm": "bn", "act": "act", "binary": "binary", "cat": "cat"}.get(kind, "other")


def features(static: dict, fraction: float, load_pct: float, batch: int = 1) -> list[float]:
    """One feature row (see the module docstring); ``static`` is a layer's entry in a load profile."""
    f = fraction * batch
    load = min(max(load_pct / 100.0, 0.0), 0.95)
    fam = family(static["kind"], int(static.get("groups", 1)), int(static.get("cin", 0)))
    row = [math.log1p(static["flops"] * f), math.log1p(static["out_elems"] * f), math.log1p(static["in_elems"] * f),
           math.log1p(static["param_bytes"]), load, -math.log(1.0 - load), math.log(max(1, static.get("kernel", 1))),
           math.log1p(static.get("cin", 0)), math.log1p(static.get("cout", 0)), math.log(max(1, static.get("groups", 1)))]
    return row + [1.0 if fam == x else 0.0 for x in FAMILIES]


def samples(profile: dict, models=None, loads=None, fractions=None):
    """``(X, log_t, t, meta)`` of a load profile's layer samples (restricted to ``models``, load levels, fractions).

    ``meta`` rows are ``(model, layer, fraction, load)``; loads are matched to the nearest level set.
    """
    X, t, meta = [], [], []
    levels = profile.get("loads_set") or []
    for key, m in profile["models"].items():
        if models is not None and key not in models and m["model"] not in models:
            continue
        for name, lay in m["layers"].items():
            for frac, load, secs in lay["samples"]:
                if loads is not None and _level(load, levels) not in loads:
                    continue
                if fractions is not None and frac not in fractions:
                    continue
                if secs <= 0:
                    continue
                X.append(features(lay, frac, load, m.get("batch", 1)))
                t.append(secs)
                meta.append((key, name, frac, load))
    X = np.asarray(X, dtype=float).reshape(-1, 10 + len(FAMILIES))
    t = np.asarray(t, dtype=float)
    return X, np.log(t), t, meta


def _level(load: float, levels) -> float:
    """The load level (as set) a measured load belongs to."""
    return min(levels, key=lambda v: abs(v - load)) if levels else load


class _LogLinear:
    """Ridge regression of log time per kind family (all families pooled where a family has few samples)."""

    def __init__(self, alpha: float = 1e-2):
        self.alpha = alpha

    @staticmethod
    def _design(X):
        # continuous features, their interaction with the load, and a constant
        cont = X[:, :10]
        inter = cont[:, :4] * cont[:, 5:6]
        return np.hstack([cont, inter, np.ones((len(X), 1))])

    def _solve(self, A, y):
        reg = self.alpha * np.eye(A.shape[1])
        reg[-1, -1] = 0.0
        return np.linalg.solve(A.T @ A + reg, A.T @ y)

    def fit(self, X, y):
        A = self._design(X)
        self.pooled = self._solve(A, y)
        self.per = {}
        fam = X[:, 10:].argmax(axis=1)
        for k in range(len(FAMILIES)):
            sel = fam == k
            if sel.sum() >= 3 * A.shape[1]:
                self.per[k] = self._solve(A[sel], y[sel])
        return self

    def predict(self, X):
        A = self._design(X)
        fam = X[:, 10:].argmax(axis=1)
        out = A @ self.pooled
        for k, w in self.per.items():
            sel = fam == k
            if sel.any():
                out[sel] = A[sel] @ w
        return out


class _Additive:
    """Per kind family and measured load level: ``t = c0 + c1·FLOPs + c2·out + c3·in + c4·params`` (c ≥ 0, fitted by
    non-negative least squares on *relative* error); between and beyond the levels, log t is interpolated linearly
    in −log(1 − load) (the variable in which an ideal fair share of the CPU is a straight line)."""

    MIN_SAMPLES = 12

    @staticmethod
    def _raw(X):
        return np.column_stack([np.ones(len(X)), np.expm1(X[:, 0]), np.expm1(X[:, 1]), np.expm1(X[:, 2]),
                                np.expm1(X[:, 3])])

    def _nnls(self, A, t):
        from scipy.optimize import nnls

        W = A / t[:, None]
        scale = np.maximum(W.max(axis=0), 1e-30)
        c, _ = nnls(W / scale, np.ones(len(t)))
        return c / scale

    # which terms each family may use: a convolution's time follows its FLOPs and the elements it reads and
    # writes (its weights are few beside them, and they are collinear with FLOPs within a model); a
    # fully-connected layer at batch 1 is bound by reading its weights; the rest by the elements they touch
    TERMS = {"conv": (0, 1, 2, 3), "dwconv": (0, 1, 2, 3), "gconv": (0, 1, 2, 3), "linear": (0, 1, 4)}
    OTHER_TERMS = (0, 2, 3)

    def _mask(self, f: int) -> np.ndarray:
        m = np.zeros(5, dtype=bool)
        m[list(self.TERMS.get(FAMILIES[f], self.OTHER_TERMS))] = True
        return m

    def fit(self, X, y):
        t = np.exp(y)
        u = X[:, 5]
        fam = X[:, 10:].argmax(axis=1)
        # measured loads vary a little around each level set: one level per cluster of loads 0.05 apart in u
        order = np.sort(np.unique(np.round(u, 4)))
        levels: list[list[float]] = []
        for v in order:
            if levels and v - levels[-1][-1] <= 0.05:
                levels[-1].append(v)
            else:
                levels.append([v])
        self.u = np.array([np.mean(g) for g in levels])
        which = np.array([int(np.argmin(np.abs(self.u - v))) for v in u])
        A = self._raw(X)
        self.coef = {}
        for k in range(len(self.u)):
            at = which == k
            pooled = self._nnls(A[at], t[at])
            for f in range(len(FAMILIES)):
                sel = at & (fam == f)
                if sel.sum() >= self.MIN_SAMPLES:
                    m = self._mask(f)
                    c = np.zeros(5)
                    c[m] = self._nnls(A[sel][:, m], t[sel])
                    self.coef[k, f] = c
                else:
                    self.coef[k, f] = pooled
        return self

    def predict(self, X):
        A = self._raw(X)
        fam = X[:, 10:].argmax(axis=1)
        u = X[:, 5]
        logs = np.empty((len(X), len(self.u)))
        for k in range(len(self.u)):
            C = np.array([self.coef[k, f] for f in fam])
            logs[:, k] = np.log(np.maximum((A * C).sum(axis=1), 1e-7))
        if len(self.u) == 1:
            return logs[:, 0]
        out = np.empty(len(X))
        for i in range(len(X)):
            j = int(np.clip(np.searchsorted(self.u, u[i]) - 1, 0, len(self.u) - 2))
            u0, u1 = self.u[j], self.u[j + 1]
            w = (u[i] - u0) / (u1 - u0)
            if w > 1.0:  # beyond the last level: never predict less time for more load
                w = 1.0 + max(0.0, (w - 1.0)) * float(logs[i, j + 1] >= logs[i, j])
            out[i] = logs[i, j] + w * (logs[i, j + 1] - logs[i, j])
        return out


def make(kind: str):
    """A fresh, seeded regressor of candidate ``kind`` (fit(X, log_t) / predict(X) → log_t)."""
    if kind == "additive":
        return _Additive()
    if kind == "loglinear":
        return _LogLinear()
    if kind == "gbrt":
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(max_iter=300, learning_rate=0.08, max_leaf_nodes=31, min_samples_leaf=10,
                                             random_state=0)
    if kind == "mlp":
        from sklearn.neural_network import MLPRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(64, 64), alpha=1e-3, max_iter=500,
                                                            early_stopping=True, random_state=0))
    raise ValueError(f"unknown FCPM model {kind!r}; one of {', '.join(CANDIDATES)}")


def accuracy(pred, meas) -> np.ndarray:
    """OfpCNN's accuracy per sample: 1 − |predicted − measured| / measured (1 = exact; can go below 0)."""
    pred, meas = np.asarray(pred, float), np.asarray(meas, float)
    return 1.0 - np.abs(pred - meas) / meas


def select(profile: dict, models: list[str], loads=None, candidates=CANDIDATES) -> tuple[str, dict]:
    """The candidate with the best leave-one-model-out accuracy on ``models`` (layers ≥ 1 ms); ``(name, scores)``."""
    scores = {}
    for kind in candidates:
        accs = []
        for held in models:
            rest = [m for m in models if m != held]
            if not rest:
                continue
            Xtr, ytr, _, _ = samples(profile, rest, loads)
            Xte, _, tte, _ = samples(profile, [held], loads, fractions=(1.0,))
            keep = tte >= MIN_JUDGED_S
            if not len(Xtr) or not keep.any():
                continue
            reg = make(kind).fit(Xtr, ytr)
            accs.append(accuracy(np.exp(reg.predict(Xte[keep])), tte[keep]))
        scores[kind] = float(np.mean(np.concatenate(accs))) if accs else float("-inf")
    best = max(scores, key=lambda k: scores[k])
    return best, scores


class FCPM:
    """A fitted predictor of one device: ``time(static, fraction, load_pct, batch)`` in seconds."""

    def __init__(self, profile: dict, kind: str | None = None, models=None, loads=None):
        info = profile.get("fcpm") or {}
        self.models = list(models if models is not None else info.get("train_models") or profile["models"])
        self.loads = loads if loads is not None else info.get("train_loads")
        self.kind = kind or info.get("model") or select(profile, self.models, self.loads)[0]
        self.batch = int(profile.get("batch", 1))
        X, y, _, _ = samples(profile, self.models, self.loads)
        self.reg = make(self.kind).fit(X, y)
        self._known_layers(profile)

    def predict(self, rows) -> np.ndarray:
        return np.exp(self.reg.predict(np.asarray(rows, dtype=float)))

    # ---- note *fcpm-known*: a layer the profile measured idle is priced by that measurement x the learned
    # load factor; only layers it has never seen need the regression from features.  Under a CPU quota the
    # load's effect depends on how long the layer runs (a short one often fits in an unthrottled slice), so
    # the factor is learned per load level and per bin of idle time, from the training models' own ratios
    # t(load) / t(idle), and interpolated between levels in -log(1 - load).

    BINS_S = (1e-3, 1e-2)  # idle-time bins: < 1 ms, 1-10 ms, > 10 ms

    @staticmethod
    def layer_key(static: dict) -> tuple:
        return (static["kind"], int(static["flops"]), int(static["in_elems"]), int(static["out_elems"]),
                int(static["param_bytes"]))

    def _bin(self, t0: float) -> int:
        return int(np.searchsorted(self.BINS_S, t0))

    def _known_layers(self, profile: dict) -> None:
        levels = sorted(profile.get("loads_set") or [])
        self.known: dict[tuple, tuple[float, float]] = {}
        ratios: dict[tuple[float, int], list[float]] = {}
        for key in self.models:
            m = profile["models"].get(key)
            if m is None:
                continue
            for lay in m["layers"].values():
                by_level: dict[float, dict[float, float]] = {}
                for f, load, secs in lay["samples"]:
                    by_level.setdefault(_level(load, levels), {})[f] = secs
                idle = by_level.get(levels[0] if levels else 0.0)
                if not idle:
                    continue
                fr = sorted(idle)
                if len(fr) >= 2:
                    b, a = np.polyfit(fr, [idle[f] for f in fr], 1)
                else:
                    a, b = 0.0, idle[fr[0]] / fr[0]
                self.known[self.layer_key(lay)] = (float(a), float(b))
                for lvl, at in by_level.items():
                    if self.loads is not None and lvl not in self.loads:
                        continue
                    for f, secs in at.items():
                        if f in idle and idle[f] > 0:
                            ratios.setdefault((lvl, self._bin(idle[f])), []).append(secs / idle[f])
        self.levels = [lv for lv in levels if any(k[0] == lv for k in ratios)]
        self.factor = {k: float(np.median(v)) for k, v in ratios.items()}

    def load_factor(self, t0: float, load_pct: float) -> float:
        """The learned t(load) / t(idle) for a layer of idle time ``t0`` (1 when nothing was learned)."""
        if not self.levels:
            return 1.0 / max(0.05, 1.0 - load_pct / 100.0)
        b = self._bin(t0)
        us = [-math.log(1.0 - min(lv, 95.0) / 100.0) for lv in self.levels]
        vals = [math.log(self.factor.get((lv, b), self.factor.get((lv, 1), 1.0))) for lv in self.levels]
        u = -math.log(1.0 - min(max(load_pct, 0.0), 95.0) / 100.0)
        if len(us) == 1:
            return math.exp(vals[0])
        j = min(max(int(np.searchsorted(us, u)) - 1, 0), len(us) - 2)
        w = (u - us[j]) / (us[j + 1] - us[j])
        if w > 1.0 and vals[j + 1] < vals[j]:
            w = 1.0
        return math.exp(vals[j] + w * (vals[j + 1] - vals[j]))

    def time(self, static: dict, fraction: float, load_pct: float, batch: int = 1) -> float:
        """Seconds for ``fraction`` of a layer at ``load_pct``: its idle measurement x the load factor when the
        profile knows it (at this batch), else the regression from its features."""
        fit = self.known.get(self.layer_key(static)) if batch == self.batch else None
        if fit is not None:
            t0 = max(fit[0] + fit[1] * fraction, 1e-7)
            return t0 * self.load_factor(t0, load_pct)
        return float(self.predict([features(static, fraction, load_pct, batch)])[0])


_FITTED: dict = {}  # (profile digest, kind, models, loads) -> FCPM: fitting is deterministic, so one fit per process


def fitted(profile: dict, digest: str, **kw) -> FCPM:
    key = (digest, kw.get("kind"), tuple(kw.get("models") or ()), tuple(kw.get("loads") or ()))
    if key not in _FITTED:
        if len(_FITTED) > 32:
            _FITTED.clear()
        _FITTED[key] = FCPM(profile, **kw)
    return _FITTED[key]


class FCPMCost(CostModel):
    """The cost model of a device with a load profile: FCPM's prediction at the device's current ``cpu_load``."""

    def __init__(self, profile: dict, digest: str, fallback: CostModel, where: str = "load profile"):
        from edgeslice.cost.profiled import layer_features

        self.where = where
        self.fallback = fallback
        self.task_overhead_s = fallback.task_overhead_s
        self.fcpm = fitted(profile, digest)
        self.effective_gflops = float(profile["effective_gflops"])
        self._features = layer_features
        self._memo: dict = {}

    def __hash__(self):
        return id(self)

    def layer_time(self, layer, fraction: float, device, batch: int) -> float:
        key = (layer.name, layer.kind, layer.flops, layer.out_shape, fraction, batch, device.cpu_load)
        t = self._memo.get(key)
        if t is None:
            static = {"kind": layer.kind, "flops": layer.flops, **self._features(layer)}
            t = self.fcpm.time(static, fraction, device.cpu_load * 100.0, batch)
            if len(self._memo) > 200_000:
                self._memo.clear()
            self._memo[key] = t
        return t * device.scale

    def reduce_time(self, elements: int, device) -> float:
        return self.fallback.reduce_time(elements, replace(device, gflops=self.effective_gflops))
