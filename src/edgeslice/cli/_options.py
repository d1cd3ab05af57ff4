"""Planner-option flags for ``plan`` and ``compare``, generated from the planners' option dataclasses.

Every option of every registered planner becomes one flag (field ``max_block``
→ ``--max-block``), listed once however many planners take it, its help naming
which do (and their defaults).  A flag's value is parsed as its field's type
(integers and floats as numbers: ``2e6`` is fine for an integer option), and
checked where every option is checked, by the planner's options class
(:mod:`edgeslice.planners.options`), so a new planner adds no CLI code.

Values are kept under their own names in the namespace (``option.<name>``,
default ``None``) so :func:`given_options` passes only what the user gave.
"""

from __future__ import annotations

import argparse

from edgeslice.planners.options import flag, nearest, show, specs

PREFIX = "option."


def _number(text: str):
    """An int where the text is one, else a float (nan, inf, 2.5 and 2e6 too: the options class judges them)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def declared() -> dict[str, list]:
    """``{option name: [(planner, Spec), ...]}`` over every registered planner, in registry order."""
    from edgeslice.planners import planners

    out: dict[str, list] = {}
    for pname, info in planners().items():
        for s in specs(info.options):
            out.setdefault(s.name, []).append((pname, s))
    return out


def _help(takers) -> str:
    """``planners: help (default ...)`` for each distinct help text, defaults grouped by value."""
    parts = []
    by_help: dict[str, list] = {}
    for pname, s in takers:
        by_help.setdefault(s.help, []).append((pname, s.default))
    for text, rows in by_help.items():
        names = ", ".join(p for p, _ in rows)
        defaults: dict[str, list[str]] = {}
        for p, d in rows:
            if d is not None:
                defaults.setdefault(show(d), []).append(p)
        if len(defaults) == 1 and sum(map(len, defaults.values())) == len(rows):
            dflt = f" (default {next(iter(defaults))})"
        elif defaults:
            dflt = " (default " + "; ".join(f"{v} for {', '.join(ps)}" for v, ps in defaults.items()) + ")"
        else:
            dflt = ""
        parts.append(f"{names}: {text}{dflt}")
    return "; ".join(parts).replace("%", "%%")


def add_option_flags(p: argparse.ArgumentParser) -> None:
    """Add one flag per planner option to ``p`` (a ``plan`` or ``compare`` parser)."""
    group = p.add_argument_group("planner options", "each planner takes only its own; see `edgeslice planners`")
    for name, takers in declared().items():
        kinds = {s.kind for _, s in takers}
        kw: dict = {"dest": PREFIX + name, "default": None, "help": _help(takers)}
        if kinds == {"bool"}:
            kw["action"] = argparse.BooleanOptionalAction
        elif kinds <= {"int", "float"}:
            kw.update(type=_number, metavar="N")
        elif kinds == {"str"}:
            choices = [c for _, s in takers for c in (s.choices or ())]
            if all(s.choices for _, s in takers):
                kw["choices"] = list(dict.fromkeys(choices))
            else:
                kw["metavar"] = name.upper()
        else:
            raise TypeError(f"planner option {name!r} has different types in {', '.join(p for p, _ in takers)}: "
                            f"{', '.join(sorted(kinds))}; one name, one type")
        group.add_argument(flag(name), **kw)


def given_options(args) -> dict:
    """The planner options the user gave on the command line, by option name."""
    return {k[len(PREFIX):]: v for k, v in vars(args).items() if k.startswith(PREFIX) and v is not None}


def unknown_flag_message(parser: argparse.ArgumentParser, extra: list[str], planners: list[str]) -> str:
    """One line for arguments ``parser`` did not know: the nearest flag, and the options of ``planners``."""
    from edgeslice.planners import planner_info

    tok = next((t for t in extra if t.startswith("-")), None)
    command = parser.prog.split()[-1]
    if tok is None:
        return f"{command}: unrecognized arguments: {' '.join(extra)}"
    key = tok.split("=", 1)[0]
    name = key.lstrip("-").replace("-", "_")
    own = [s for a in parser._actions for s in a.option_strings
           if s.startswith("--") and a.dest not in ("help",) and not a.dest.startswith(PREFIX)]
    infos = []
    for pname in planners:
        try:
            infos.append(planner_info(pname))
        except Exception as exc:  # an unknown planner: that is the error to report
            return str(exc)
    options = [s.name for i in infos for s in specs(i.options)]
    near_opt = nearest(name, options)
    near_own = nearest(key, own)
    if near_own and not near_opt:
        return f"{command} has no flag {key}; did you mean {near_own}? (see edgeslice {command} --help)"
    if len(infos) == 1:
        from edgeslice.planners.options import unknown_message

        return unknown_message(infos[0].name, name, infos[0].options, cli=True)
    listed = ", ".join(flag(n) for n in dict.fromkeys(options))
    msg = f"{command}: no planner compared has option {flag(name)}"
    if near_opt:
        takers = [i.name for i in infos if near_opt in {s.name for s in specs(i.options)}]
        return msg + f"; did you mean {flag(near_opt)} ({', '.join(takers)})? Their options: {listed or 'none'}"
    return msg + f"; their options: {listed or 'none'}"
