"""Fixtures the planner tests share."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgeslice.graph.trace import trace_module


@pytest.fixture(scope="module")
def seq6():
    """A six-layer chain (conv, ReLU ×3) at 3×16×16: small enough for brute force over every placement."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
                          nn.Conv2d(16, 4, 3, padding=1), nn.ReLU()).eval()
    return trace_module(model, (3, 16, 16), spec="seq6")
