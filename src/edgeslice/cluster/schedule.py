"""A device's ``load:`` in a cluster file: background CPU load, constant or steps over time.

Read by :mod:`edgeslice.cluster.load` (``chk`` is its field checker, whose messages name the file and
field); kept apart so the loader stays one responsibility: the shape of a cluster file.
"""

from __future__ import annotations

from typing import Any


def load_schedule(chk, raw: Any, f: str) -> tuple[tuple[float, float], ...]:
    """A device's ``load:`` (percent of its CPU busy with other work, constant or ``[[t_s, percent], ...]``) as
    ``((t_s, fraction), ...)`` sorted by time."""
    from edgeslice.cluster.load import _show as show

    what = "a percent in [0, 100) (e.g. 60: 60% of the device busy with other work)"
    if not isinstance(raw, list):
        return ((0.0, chk.number(raw, f, lo=0, lo_open=False, hi=100, what=what) / 100.0),)
    if not raw:
        raise chk.fail(f, "give a percent (e.g. 60) or steps [[t_s, percent], ...], not an empty list")
    steps = []
    for i, s in enumerate(raw):
        if not (isinstance(s, list) and len(s) == 2):
            raise chk.fail(f"{f}[{i}]", f"must be [t_s, percent], got {show(s)}")
        t = chk.number(s[0], f"{f}[{i}][0]", lo=0, lo_open=False)
        steps.append((float(t), chk.number(s[1], f"{f}[{i}][1]", lo=0, lo_open=False, hi=100, what=what) / 100.0))
    times = [t for t, _ in steps]
    if len(set(times)) != len(times):
        raise chk.fail(f, "two steps start at the same time; give each time once")
    return tuple(sorted(steps))
