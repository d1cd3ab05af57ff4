"""Shared fixtures: traced models, cached; memory given back after each module.

Traced models are cached per (spec, input, batch), the most recently used
few only: a whole-session cache held every model's weights at once (the
suite's process grew to 19 GB).  After each test module, freed memory is
given back to the system (``malloc_trim``), so one module's big tensors do
not stay resident for the rest of the run.
"""

from __future__ import annotations

import collections
import ctypes
import gc

import pytest
import torch

torch.set_num_threads(2)

_CACHED = 6
_cache: collections.OrderedDict = collections.OrderedDict()


def _traced(spec: str, shape: tuple[int, ...], batch: int):
    key = (spec, shape, batch)
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    from edgeslice.graph import trace

    _cache[key] = value = trace(spec, shape, batch)
    while len(_cache) > _CACHED:
        _cache.popitem(last=False)
    return value


@pytest.fixture(scope="session")
def traced():
    """``traced(spec, shape, batch=1) -> (LayerGraph, GraphModule)``, cached (the last few)."""

    def get(spec, shape, batch=1):
        return _traced(spec, tuple(shape), batch)

    return get


@pytest.fixture(scope="session")
def tiny_agent(tmp_path_factory):
    """A small trained MEC agent file (DQN, one short episode; 3 blocks, 2 edge servers): what planner
    ``mtl-a3c`` needs as ``--agent``, for tests that run every planner."""
    from edgeslice.planners.learned.agents import train_agent
    from edgeslice.planners.learned.nets import save_agent

    cfg = {"mode": "paper", "model": "alexnet", "input": [3, 64, 64], "blocks": 3, "edge_servers": 2, "tasks": 10}
    net, _, _ = train_agent("dqn", cfg, {"episodes": 1, "actors": 1})
    path = tmp_path_factory.mktemp("agent") / "agent.pt"
    save_agent(net, path, algo="dqn", config=cfg)
    return str(path)


@pytest.fixture(autouse=True, scope="module")
def _give_memory_back():
    yield
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
