"""A small builder for the exact planners' memory-constrained MILPs (HiGHS through ``scipy.optimize.milp``).

Rows are sparse ``(column, coefficient)`` lists with bounds; :meth:`Rows.solve`
minimises ``c @ x`` with the given integer columns and column bounds, to a zero
relative gap (the planners are exact), and returns ``x`` or None when infeasible.

Example (pick one of two items, the cheaper one that fits under 4)::

    >>> r = Rows(2)
    >>> r.add([(0, 1.0), (1, 1.0)], 1.0, 1.0)
    >>> r.add([(0, 5.0), (1, 3.0)], -np.inf, 4.0)
    >>> r.solve(np.array([1.0, 2.0]), integer=2, upper=np.ones(2)).round().tolist()
    [0.0, 1.0]
"""

from __future__ import annotations

import numpy as np


class Rows:
    """Linear constraints ``lo ≤ row · x ≤ hi`` over ``n`` columns, added one sparse row at a time."""

    def __init__(self, n: int):
        self.n = n
        self._rows: list[np.ndarray] = []
        self._lo: list[float] = []
        self._hi: list[float] = []

    def add(self, entries, lo: float, hi: float) -> None:
        r = np.zeros(self.n)
        for i, v in entries:
            r[i] += v
        self._rows.append(r)
        self._lo.append(lo)
        self._hi.append(hi)

    def solve(self, c: np.ndarray, *, integer: int, upper: np.ndarray) -> np.ndarray | None:
        """Minimise ``c @ x`` over ``0 ≤ x ≤ upper`` with the first ``integer`` columns integral."""
        from scipy.optimize import Bounds, LinearConstraint, milp

        integrality = np.zeros(self.n)
        integrality[:integer] = 1
        res = milp(c, constraints=LinearConstraint(np.array(self._rows), self._lo, self._hi), integrality=integrality,
                   bounds=Bounds(np.zeros(self.n), upper), options={"mip_rel_gap": 0.0})
        return res.x
