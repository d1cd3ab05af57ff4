"""Stage 4b of the data flow: run a Program on real tensors (see DESIGN.md)."""

from edgeslice.execute.inprocess import run_program
from edgeslice.execute.kernels import Kernels

__all__ = ["Kernels", "run_program"]
