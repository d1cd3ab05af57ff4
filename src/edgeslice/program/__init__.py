"""Stage 3 of the data flow: Plan → Program by region algebra (see DESIGN.md)."""

from edgeslice.program.lower import analyse_part, lower
from edgeslice.program.program import ComputeTask, InputTask, Need, Out, OutputTask, Piece, Program, Step, TransferTask

__all__ = ["analyse_part", "lower", "ComputeTask", "InputTask", "Need", "Out", "OutputTask", "Piece", "Program", "Step", "TransferTask"]
