"""Stage 4a of the data flow: simulate a Program → predicted Timeline (see DESIGN.md)."""

from edgeslice.sim.simulate import Event, Timeline, simulate

__all__ = ["Event", "Timeline", "simulate"]
