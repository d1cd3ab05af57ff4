"""The ``edgeslice`` command line: one module per command, each with ``add(sub)`` and ``run(args)``.

Every command that takes a plan file needs nothing else: the plan names its
model, input and batch.  User errors (an :class:`~edgeslice.errors.EdgesliceError`)
print one line on stderr and exit with status 2; ``check`` exits 1 when the
partitioned output differs from the model's.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from edgeslice.errors import EdgesliceError

COMMANDS = ('models', 'planners', 'layers', 'plan', 'simulate', 'compare', 'profile', 'run', 'worker', 'bench', 'testbed', 'show', 'check')


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edgeslice", description="Partition CNN inference over heterogeneous edge devices.")
    sub = ap.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"edgeslice.cli.{name}").add(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "input", None) is None and hasattr(args, "input") and getattr(args, "model", None):
        from edgeslice.models import model_info

        try:
            args.input = model_info(args.model).default_input
        except EdgesliceError as exc:
            print(f"edgeslice: error: {exc}", file=sys.stderr)
            return 2
    try:
        return args.fn(args)
    except EdgesliceError as exc:
        print(f"edgeslice: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgeslice: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader (e.g. `| head`) went away: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a file we were asked to write or read: one line, not a traceback
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"edgeslice: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
