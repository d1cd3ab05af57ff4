"""A bounded cache of pure analyses: what region algebra and cost models compute again and again.

An entry is a pure function of its key (the key holds every input: layer
indices, regions, steps — and for compute times the cost model and device
objects themselves), so a hit is always right.  The cache is bounded (least
recently used entries go first), so a caller that varies device speeds or
loads thousands of times — an RL environment, a sweep — does not grow memory
without bound.  Lowering and the planners use the graph's analysis cache
(:attr:`~edgeslice.graph.layer.LayerGraph.memo`); a cost model owns its own
(:class:`~edgeslice.cost.base.CostModel`), so its times die with it.

Example::

    >>> c = AnalysisCache(maxsize=2)
    >>> c["a"] = 1; c["b"] = 2; c.get("a"); c["c"] = 3
    1
    >>> sorted(c.keys()), len(c), c.evictions
    (['a', 'c'], 2, 1)
"""

from __future__ import annotations

from collections import OrderedDict

DEFAULT_SIZE = 200_000  # entries; a VGG-16 FL sweep touches ~40 000


class AnalysisCache:
    """A least-recently-used mapping with at most ``maxsize`` entries (``get`` and ``[] =`` as on a dict)."""

    __slots__ = ("_d", "maxsize", "evictions")

    def __init__(self, maxsize: int = DEFAULT_SIZE):
        if maxsize < 1:
            raise ValueError(f"AnalysisCache: maxsize must be at least 1, not {maxsize}")
        self._d: OrderedDict = OrderedDict()
        self.maxsize = maxsize
        self.evictions = 0

    def get(self, key, default=None):
        d = self._d
        try:
            v = d[key]
        except KeyError:
            return default
        d.move_to_end(key)
        return v

    def __setitem__(self, key, value) -> None:
        d = self._d
        d[key] = value
        d.move_to_end(key)
        if len(d) > self.maxsize:
            d.popitem(last=False)
            self.evictions += 1

    def __getitem__(self, key):
        v = self.get(key, _MISSING)
        if v is _MISSING:
            raise KeyError(key)
        return v

    def __contains__(self, key) -> bool:
        return key in self._d

    def __len__(self) -> int:
        return len(self._d)

    def keys(self):
        return self._d.keys()

    def clear(self) -> None:
        self._d.clear()


_MISSING = object()
