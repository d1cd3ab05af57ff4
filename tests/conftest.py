"""Shared fixtures: traced models are cached per (spec, input, batch) for the whole session."""

from __future__ import annotations

import functools

import pytest
import torch

torch.set_num_threads(2)


@functools.lru_cache(maxsize=None)
def _traced(spec: str, shape: tuple[int, ...], batch: int):
    from edgeslice.graph import trace

    return trace(spec, shape, batch)


@pytest.fixture(scope="session")
def traced():
    """``traced(spec, shape, batch=1) -> (LayerGraph, GraphModule)``, cached."""

    def get(spec, shape, batch=1):
        return _traced(spec, tuple(shape), batch)

    return get
