"""Which source rows (or columns) each output row of an up-sampling layer reads: exact, from torch itself.

Nearest and bilinear interpolation are separable, so one axis at a time: for
an axis of ``n_in`` source rows and ``n_out`` output rows, :func:`reads`
returns arrays ``lo, hi`` with output row ``o`` reading source rows
``[lo[o], hi[o])``.  They are measured, not re-derived: torch's own kernel
interpolates one-hot probes (source row ``i`` is channel ``i``), and the rows
with a non-zero weight are the rows read.  So ``align_corners`` either way,
a given ``scale_factor`` (torch then uses ``1 / scale`` rather than
``n_in / n_out``) and float rounding at the edges come out as torch computes
them.  A source row whose bilinear weight is exactly zero is not read.

Axes too long to probe (``n_in · n_out`` over :data:`PROBE_LIMIT`) use the
closed form widened by one row each side: a superset, so still correct.

Example::

    >>> lo, hi = reads("nearest", False, 3, 6, 2.0)
    >>> lo.tolist(), hi.tolist()
    ([0, 0, 1, 1, 2, 2], [1, 1, 2, 2, 3, 3])
    >>> lo, hi = reads("bilinear", False, 3, 6, 2.0)
    >>> lo.tolist(), hi.tolist()
    ([0, 0, 0, 1, 1, 2], [1, 2, 2, 3, 3, 3])
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

PROBE_LIMIT = 1 << 24  # one-hot probe elements (64 MB of float32)


@functools.lru_cache(maxsize=512)
def reads(mode: str, align: bool, n_in: int, n_out: int, scale: float | None) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)``: source rows ``[lo[o], hi[o])`` read by output row ``o`` (arrays of length ``n_out``)."""
    if n_in * n_out > PROBE_LIMIT:
        return _closed_form(mode, align, n_in, n_out, scale)
    probe = torch.eye(n_in, dtype=torch.float32).view(1, n_in, n_in, 1)
    with torch.no_grad():
        if mode == "nearest":
            w = torch._C._nn.upsample_nearest2d(probe, (n_out, 1), scale, None)
        else:
            w = torch._C._nn.upsample_bilinear2d(probe, (n_out, 1), align, scale, None)
    hit = (w[0, :, :, 0] != 0).numpy()  # [source row, output row]
    rows = np.arange(n_in)[:, None]
    lo = np.where(hit, rows, n_in).min(0)
    hi = np.where(hit, rows, -1).max(0) + 1
    return lo.astype(np.int64), hi.astype(np.int64)


def _closed_form(mode: str, align: bool, n_in: int, n_out: int, scale: float | None):
    s = (1.0 / scale) if scale else n_in / n_out
    o = np.arange(n_out, dtype=np.float64)
    if mode == "nearest":
        src = np.floor(o * s)
        lo, hi = src - 1, src + 2
    else:
        if align:
            s = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
            src = o * s
        else:
            src = np.maximum((o + 0.5) * s - 0.5, 0.0)
        lo, hi = np.floor(src) - 1, np.floor(src) + 3
    return np.clip(lo, 0, n_in - 1).astype(np.int64), np.clip(hi, 1, n_in).astype(np.int64)


def span(mode: str, align: bool, n_in: int, n_out: int, scale: float | None, o0: int, o1: int) -> tuple[int, int]:
    """Source rows read by output rows ``[o0, o1)``: both ends are monotone in ``o``."""
    lo, hi = reads(mode, align, n_in, n_out, scale)
    return int(lo[o0]), int(hi[o1 - 1])


def spans(mode: str, align: bool, n_in: int, n_out: int, scale: float | None, o0: np.ndarray, o1: np.ndarray):
    """:func:`span` for many ranges at once (arrays)."""
    lo, hi = reads(mode, align, n_in, n_out, scale)
    return lo[o0], hi[o1 - 1]


def axis_scale(scales, axis: int) -> float | None:
    """The scale torch's kernel gets for ``axis`` (0 rows, 1 columns), or None."""
    if scales is None:
        return None
    v = scales[axis]
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
