"""Learning curves and sweep charts of the MEC agents (matplotlib PNGs).

``learning_curves({name: curve}, path)`` draws mean task reward against
episode for each agent (raw as a faint line, a trailing mean over a tenth of
the episodes on top), with a dashed line per reference (e.g. the exact
optimum's reward); ``sweep_chart`` draws one panel per swept parameter, a line
per method.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

_PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def smooth(values, window: int | None = None) -> np.ndarray:
    """Trailing mean over ``window`` points (default a tenth of them); the first points average what there is."""
    v = np.asarray(values, float)
    w = window or max(len(v) // 10, 1)
    c = np.cumsum(np.insert(v, 0, 0.0))
    idx = np.arange(1, len(v) + 1)
    lo = np.maximum(idx - w, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def learning_curves(curves: dict[str, list[dict]], path: str | Path, *, references: dict[str, float] | None = None,
                    title: str = "MEC agents: mean task reward per episode") -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 4.8))
    for i, (name, curve) in enumerate(curves.items()):
        if not curve:
            continue
        ep = [c["episode"] for c in curve]
        r = [c["reward"] for c in curve]
        col = _PALETTE[i % len(_PALETTE)]
        ax.plot(ep, r, color=col, alpha=0.25, lw=0.8)
        ax.plot(ep, smooth(r), color=col, lw=2, label=name)
    for j, (name, v) in enumerate((references or {}).items()):
        ax.axhline(v, color="k", ls="--" if j == 0 else ":", lw=1, label=name)
    ax.set_xlabel("episode")
    ax.set_ylabel("mean task reward (−s)")
    ax.set_title(title)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sweep_chart(sweeps: dict[str, dict], path: str | Path, *, field: str = "total_delay_s",
                title: str = "MEC: mean total delay per task") -> Path:
    """``sweeps[param] = {"values": [...], "methods": {name: [figures per value]}}``: one panel per param."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(sweeps), figsize=(4.6 * len(sweeps), 4.2), squeeze=False)
    names = sorted({m for s in sweeps.values() for m in s["methods"]})
    for ax, (param, s) in zip(axes[0], sweeps.items()):
        for i, name in enumerate(names):
            rows = s["methods"].get(name)
            if rows is None:
                continue
            ax.plot(s["values"], [r[field] for r in rows], marker="o", color=_PALETTE[i % len(_PALETTE)],
                    label=name, ls="--" if name == "optimum" else "-")
        ax.set_xlabel(param)
        ax.set_ylabel(field)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
