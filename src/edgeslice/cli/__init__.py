"""The ``edgeslice`` command line: one module per command, each with ``add(sub)`` and ``run(args)``.

Every command that takes a plan file needs nothing else: the plan names its
model, input and batch.  User errors (an :class:`~edgeslice.errors.EdgesliceError`)
print one line on stderr and exit with status 2; so do bad command lines (an
unknown flag, a value argparse cannot parse: :class:`_Parser`), where a
command may name what it would take instead (``plan`` and ``compare``: the
planners' options).  ``check`` exits 1 when the partitioned output differs
from the model's.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from edgeslice.errors import EdgesliceError

COMMANDS = ('models', 'planners', 'layers', 'plan', 'simulate', 'compare', 'profile', 'run', 'worker', 'bench', 'testbed', 'show', 'check', 'predictor', 'train')


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line on stderr (``edgeslice: error: plan: ...``), exit status 2."""

    def error(self, message: str):
        where = self.prog.split(" ", 1)[1] + ": " if " " in self.prog else ""
        print(f"edgeslice: error: {where}{message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from edgeslice import __version__

    ap = _Parser(prog="edgeslice", description="Partition CNN inference over heterogeneous edge devices.")
    ap.add_argument("--version", action="version", version=f"edgeslice {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"edgeslice.cli.{name}").add(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["worker"]:  # everything after `worker` is the worker's own (argparse's REMAINDER drops leading flags)
        from edgeslice.cli.worker import run_worker_args

        return run_worker_args(argv[1:])
    args, extra = build_parser().parse_known_args(argv)
    if extra:  # a command's ``on_unknown(args, extra)`` may say what it takes instead
        hook = getattr(args, "on_unknown", None)
        try:
            msg = hook(args, extra) if hook else f"unrecognized arguments: {' '.join(extra)}"
        except EdgesliceError as exc:
            msg = str(exc)
        print(f"edgeslice: error: {msg}", file=sys.stderr)
        return 2
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
    except SystemExit as exc:  # SIGTERM / SIGHUP of `run` (runtime.launch.Terminated): its workers are ended
        if type(exc).__name__ == "Terminated":
            print(f"edgeslice: terminated by signal {int(exc.code) - 128}; every worker was ended", file=sys.stderr)
        raise
    except BrokenPipeError:  # the reader (e.g. `| head`) went away: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a file we were asked to write or read: one line, not a traceback
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"edgeslice: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
