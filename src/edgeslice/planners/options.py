"""Typed planner options: each planner declares them, the registry validates them, the CLI generates flags from them.

A planner's options are a frozen dataclass deriving from :class:`PlannerOptions`,
each field made with :func:`option` (its default and a one-line help), passed
to ``register(..., options=FooOptions)``; the planner is then called as
``fn(graph, cluster, cost, opts)`` with a validated instance.  A planner with
no options uses :class:`NoOptions`.

Field types are ``int``, ``float``, ``str``, ``bool``, a ``Literal`` of
strings, or one of these ``| None`` (``None``: the planner chooses).  Every
value is checked in one place (:meth:`PlannerOptions.__post_init__`), so a
typed instance made by hand is checked too:

- an ``int`` must be an integer (an integral float such as ``2e5`` is taken as
  ``200000``; ``True``, ``2.5``, nan and inf are not) and at least ``min``
  (default 1: options are positive unless declared otherwise), at most ``max``;
- a ``float`` must be finite and greater than 0, or at least ``min`` when declared;
- a ``Literal`` must be one of its values; ``parse`` (optional) turns a value
  into its canonical form or raises ``ValueError`` saying what is expected.

Cross-field rules (ftp's ``n`` with ``m``) go in the class's :meth:`~PlannerOptions.check`.
Errors are one-line :class:`~edgeslice.errors.OptionError`\\ s naming the option
(and its flag), the value and the valid range.

A plan records its options (:func:`record`): every field, defaults included,
as JSON values, sorted by name.  An option left ``None`` (``ftp``'s ``n``,
``m``, ``layers``: "choose for me") is recorded as what the planner chose when
the planner put that in the plan's options, so planning again with the
recorded options gives the same plan.

Example::

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class DemoOptions(PlannerOptions):
    ...     rounds: int = option(3, "how many rounds")
    ...     rate: float = option(0.5, "step size")
    >>> DemoOptions(rounds=2e1).rounds
    20
    >>> DemoOptions(rate=float("nan"))
    Traceback (most recent call last):
    ...
    edgeslice.errors.OptionError: option 'rate' (--rate) must be a finite number > 0, not nan
    >>> record(DemoOptions())
    (('rate', 0.5), ('rounds', 3))
"""

from __future__ import annotations

import difflib
import math
import numbers
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any, Callable, Literal

from edgeslice.errors import OptionError

KINDS = {int: "int", float: "float", str: "str", bool: "bool"}
# make_plan's own keywords: an option may not be called so.
RESERVED = ("name", "graph", "cluster", "cost", "devices")


def option(default, help: str, *, min: float | None = None, max: float | None = None,
           parse: Callable[[Any], Any] | None = None):
    """A dataclass field for a planner option: its ``default``, one-line ``help`` and valid range."""
    return field(default=default, metadata={"help": help, "min": min, "max": max, "parse": parse})


@dataclass(frozen=True)
class Spec:
    """One option as declared: what the validator, the CLI and ``edgeslice planners`` read."""

    name: str
    kind: str  # int, float, str, bool
    optional: bool
    choices: tuple | None
    default: Any
    help: str
    min: float | None
    max: float | None
    parse: Callable[[Any], Any] | None

    @property
    def flag(self) -> str:
        return flag(self.name)

    @property
    def type_text(self) -> str:
        base = " | ".join(self.choices) if self.choices else self.kind
        return base + (" | None" if self.optional else "")

    def range_text(self) -> str:
        """What the option accepts, as the error messages say it."""
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "int":
            lo = 1 if self.min is None else self.min
            text = f"an integer from {lo:g} to {self.max:g}" if self.max is not None else f"an integer >= {lo:g}"
        elif self.kind == "float":
            lo = f">= {self.min:g}" if self.min is not None else "> 0"
            text = f"a finite number {lo}" + (f" and <= {self.max:g}" if self.max is not None else "")
        elif self.kind == "bool":
            text = "true or false"
        else:
            text = "a string"
        return text + (" (or None)" if self.optional else "")


def show(value) -> str:
    """A default as the help and listings show it: ``2e6`` as ``2000000``, ``None`` as ``None``."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def flag(name: str) -> str:
    """The command-line flag of option ``name``: ``max_block`` → ``--max-block``."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class PlannerOptions:
    """Base of every planner's options class: validates and normalises each field when made."""

    def __post_init__(self):
        for s in specs(type(self)):
            object.__setattr__(self, s.name, coerce(s, getattr(self, s.name)))
        self.check()

    def check(self) -> None:
        """Rules between fields; raise :class:`OptionError` (one line) when they are broken."""


@dataclass(frozen=True)
class NoOptions(PlannerOptions):
    """A planner that takes no options."""


_SPECS: dict[type, tuple[Spec, ...]] = {}


def specs(cls: type) -> tuple[Spec, ...]:
    """The declared options of ``cls``, in declaration order (checked once; a bad declaration is a TypeError)."""
    hit = _SPECS.get(cls)
    if hit is not None:
        return hit
    if not (isinstance(cls, type) and issubclass(cls, PlannerOptions) and is_dataclass(cls)
            and cls.__dataclass_params__.frozen):
        raise TypeError(f"{cls!r}: planner options must be a frozen dataclass deriving from PlannerOptions")
    hints = typing.get_type_hints(cls)
    out = []
    for f in fields(cls):
        if f.default is MISSING or "help" not in f.metadata:
            raise TypeError(f"{cls.__name__}.{f.name}: declare planner options with option(default, help)")
        if f.name in RESERVED or f.name.startswith("_") or f.name == "check":
            raise TypeError(f"{cls.__name__}.{f.name}: an option may not be called {f.name!r}")
        t, optional = hints[f.name], False
        if typing.get_origin(t) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(t) if a is not type(None)]
            optional = len(args) < len(typing.get_args(t))
            if len(args) != 1:
                raise TypeError(f"{cls.__name__}.{f.name}: an option has one type (optionally | None), not {t}")
            t = args[0]
        choices = None
        if typing.get_origin(t) is Literal:
            choices = typing.get_args(t)
            if not all(isinstance(c, str) for c in choices):
                raise TypeError(f"{cls.__name__}.{f.name}: Literal options take strings")
            t = str
        if t not in KINDS:
            raise TypeError(f"{cls.__name__}.{f.name}: option type must be int, float, str, bool or a Literal, not {t}")
        m = f.metadata
        out.append(Spec(f.name, KINDS[t], optional, choices, f.default, m["help"], m.get("min"), m.get("max"),
                        m.get("parse")))
    _SPECS[cls] = hit = tuple(out)
    for s in hit:  # the defaults must themselves be valid
        coerce(s, s.default)
    return hit


def _bad(s: Spec, value, why: str = "") -> OptionError:
    shown = repr(value) if not isinstance(value, float) else f"{value:g}"
    return OptionError(f"option {s.name!r} ({s.flag}) must be {why or s.range_text()}, not {shown}")


def coerce(s: Spec, value):
    """``value`` checked against ``s`` and in its canonical, JSON-able form (or an :class:`OptionError`)."""
    if value is None:
        if s.optional:
            return None
        raise _bad(s, value)
    if s.parse is not None:
        try:
            value = s.parse(value)
        except (TypeError, ValueError) as exc:
            raise _bad(s, value, str(exc)) from None
    if s.kind == "bool":
        if not isinstance(value, bool):
            raise _bad(s, value)
        return value
    if s.kind == "str":
        if not isinstance(value, str) or (s.choices and value not in s.choices):
            raise _bad(s, value)
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _bad(s, value)
    if not math.isfinite(value):
        raise _bad(s, value)
    if s.kind == "int":
        if value != int(value):
            raise _bad(s, value)
        value = int(value)
        lo = 1 if s.min is None else s.min
        if value < lo or (s.max is not None and value > s.max):
            raise _bad(s, value)
        return value
    value = float(value)
    if (value <= 0 if s.min is None else value < s.min) or (s.max is not None and value > s.max):
        raise _bad(s, value)
    return value


def nearest(key: str, names) -> str | None:
    """The name ``key`` was probably meant as: the one it begins (when only one does), else the closest spelling."""
    names = list(names)
    starts = [n for n in names if n.startswith(key)] if len(key) >= 3 else []
    if len(starts) == 1:
        return starts[0]
    near = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    return near[0] if near else None


def unknown_message(planner: str, name: str, cls: type, *, cli: bool = False, takers: tuple[str, ...] = ()) -> str:
    """One line: ``planner`` has no option ``name``; the nearest valid one, and every valid one."""
    shown = flag if cli else repr
    names = [s.name for s in specs(cls)]
    key = name.lstrip("-").replace("-", "_")
    msg = f"{planner} has no option {shown(key)}"
    near = nearest(key, names)
    if near:
        msg += f"; did you mean {shown(near)}?"
    elif takers:
        msg += f" ({', '.join(takers)} {'takes' if len(takers) == 1 else 'take'} it)"
    listed = ", ".join(flag(n) if cli else n for n in names)
    if near:
        msg += f" Its options: {listed}" if names else ""
    else:
        msg += f"; its options: {listed}" if names else "; it takes no options"
    return msg


def build(planner: str, cls: type, given: dict, *, cli: bool = False, takers=None) -> PlannerOptions:
    """A validated ``cls`` from the ``given`` options; errors are one line and name ``planner``.

    ``takers(name)`` (optional) lists the planners that do take an unknown option.
    """
    names = {s.name for s in specs(cls)}
    for key in given:
        if key not in names:
            raise OptionError(unknown_message(planner, key, cls, cli=cli, takers=tuple(takers(key)) if takers else ()))
    try:
        return cls(**given)
    except OptionError as exc:
        raise OptionError(f"{planner}: {exc}") from None


def record(opts: PlannerOptions, chosen=()) -> tuple[tuple[str, Any], ...]:
    """The options as a plan records them: every field by name, sorted; ``None`` fields as the planner chose them.

    ``chosen`` are the ``(name, value)`` pairs the planner put in its plan's options.
    """
    picked = dict(chosen)
    out = {}
    for s in specs(type(opts)):
        v = getattr(opts, s.name)
        if v is None and picked.get(s.name) is not None:
            v = picked[s.name]
            v = int(v) if isinstance(v, numbers.Integral) and not isinstance(v, bool) else v
        out[s.name] = v
    return tuple(sorted(out.items()))


def describe(cls: type) -> list[dict]:
    """``[{name, type, default, help, range}, ...]`` (plus ``choices`` for a Literal), JSON-able.

    ``range`` is what the option accepts, as its error message says it (``"an integer >= 1"``).
    """
    rows = []
    for s in specs(cls):
        row = {"name": s.name, "type": s.type_text, "default": s.default, "help": s.help, "range": s.range_text()}
        if s.choices:
            row["choices"] = list(s.choices)
        rows.append(row)
    return rows


def parse_layouts(value) -> str:
    """FL path layouts in canonical text, ``"2x1,2x2"``, from that text or a sequence of ``"RxC"`` / ``(r, c)``."""
    items = value.split(",") if isinstance(value, str) else list(value)
    out = []
    for x in items:
        if isinstance(x, str):
            r, sep, c = x.strip().lower().partition("x")
            try:
                x = (int(r), int(c) if sep else 1)
            except ValueError:
                raise ValueError("comma-separated layouts like '2x1,2x2' (rows x columns)") from None
        try:
            r, c = (int(v) for v in x)
        except (TypeError, ValueError):
            raise ValueError("comma-separated layouts like '2x1,2x2' (rows x columns)") from None
        if r < 1 or c < 1:
            raise ValueError("layouts of at least 1 row and 1 column, like '2x1,2x2'")
        out.append(f"{r}x{c}")
    if not out:
        raise ValueError("at least one layout, like '2x1,2x2'")
    return ",".join(out)
