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


class DeviceFailed(EdgesliceError):
    """A device of a run died, failed or stopped answering; ``device`` names it (``run --adapt`` drops it)."""

    def __init__(self, message: str, device: str):
        super().__init__(message)
        self.device = device


class TestbedError(EdgesliceError):
    """The emulated testbed could not be built, found or used (names the device, link or missing capability)."""

    __test__ = False  # not a pytest test class, despite the name


# ---- wording messages -------------------------------------------------------------------
# Messages quote what a user wrote; a file can hold anything, so quoting is bounded and escaped:
# a message stays one short line that is safe to print on a terminal (DESIGN.md, style rule 9).


def brief(value, limit: int = 60) -> str:
    """``repr(value)`` for a message: escaped (no newline or control character), at most about ``limit`` characters.

    >>> brief("pi0"), brief("a\\nb"), brief("x" * 100, 8), brief(10**100, 20)
    ("'pi0'", "'a\\\\nb'", "'xxxxxxxx'... (100 characters)", 'an integer of 101 digits')
    """
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else f"{value[:limit]!r}... ({len(value)} characters)"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 3.33 * limit:
        return f"an integer of {len(str(abs(value))) if value.bit_length() < 14000 else 'thousands of'} digits"
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an integer of more digits than Python prints; nesting deeper than it walks
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else f"{text[:limit]}... (a {type(value).__name__})"


def label(name, limit: int = 40) -> str:
    """A name as written when it is plain (printable, short), else :func:`brief`'s quoted form."""
    if isinstance(name, str) and name.isprintable() and 0 < len(name) <= limit and not any(c.isspace() for c in name):
        return name
    return brief(name, limit)


def listing(names, most: int = 8) -> str:
    """``a, b, c``: the names as :func:`label` shows them, the first ``most`` of a long list and how many there are."""
    names = list(names)
    shown = ", ".join(label(n) for n in names[:most])
    return shown if len(names) <= most else f"{shown}, ... ({len(names)} in all)"


def one_line(text) -> str:
    """``text`` on one line: whitespace runs (newlines included) become one space, control characters are escaped."""
    text = " ".join(str(text).split())
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
