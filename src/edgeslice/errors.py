"""Typed errors for edgeslice.

Every error a user can provoke (a bad model name, a malformed plan, a plan for
another model, a layer the tracer cannot cut) is an :class:`EdgesliceError`
whose message names the thing at fault and says how to fix it.  The command
line prints the message as one line and exits non-zero; it never shows a
traceback for these.  Anything else escaping is a bug in edgeslice.
"""

from __future__ import annotations


class EdgesliceError(Exception):
    """Base class of every user-facing error."""


class ModelError(EdgesliceError):
    """The model could not be found, imported, built or loaded with weights."""


class TraceError(EdgesliceError):
    """torch.fx could not trace the model, or traced a construct edgeslice cannot cut."""


class PlanError(EdgesliceError):
    """A plan file is unreadable, malformed, or invalid for its model."""


class PlanMismatchError(PlanError):
    """A plan was made for a different model, input shape or batch than it is used with."""


class OptionError(EdgesliceError):
    """A planner option is unknown, ill-typed or out of range (names the planner, the option and what it accepts)."""


class LoweringError(EdgesliceError):
    """A valid-looking plan could not be lowered to a Program (names the segment and part)."""


class ClusterError(EdgesliceError):
    """A cluster description is unreadable or invalid (names the file and field)."""


class TestbedError(EdgesliceError):
    """The emulated testbed could not be built, found or used (names the device, link or missing capability)."""

    __test__ = False  # not a pytest test class, despite the name
