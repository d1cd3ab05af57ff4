"""Running ``edgeslice`` commands in tests, and the one assertion every refusal must pass.

Most commands run in this process through the same ``main`` the console script calls (an escaping
exception is recorded as a traceback, so "no traceback" is still checked); the commands in
``REAL_PROCESS`` run as real subprocesses of the installed script.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

EDGESLICE = str(Path(sys.executable).with_name("edgeslice"))
TIMEOUT = 300


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:  # shown by failing asserts
        return (f"$ edgeslice {' '.join(self.args)}\n[exit {self.returncode}]\n"
                f"--- stdout ---\n{self.stdout[-3000:]}\n--- stderr ---\n{self.stderr[-3000:]}")


# Most commands run in this process through the same `main` the console script calls (an
# escaping exception is recorded as a traceback, so "no traceback" is still checked); these
# few also run as real subprocesses of the installed `edgeslice` script.
REAL_PROCESS = {("models", "--json"), ("plan", "--model", "nosuchnet", "-o", "x.json"), ("check", "plan.json", "--json")}
_IN_PROCESS = threading.Lock()


def _run(cwd: Path, args: list[str]) -> Result:
    if tuple(args) in REAL_PROCESS:
        return _run_process(cwd, args)
    import contextlib
    import io
    import traceback

    from edgeslice.cli import main

    out, err = io.StringIO(), io.StringIO()
    with _IN_PROCESS:  # chdir and redirection are process-wide
        old = os.getcwd()
        os.chdir(cwd)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(list(args))
                except SystemExit as exc:  # argparse
                    code = exc.code if isinstance(exc.code, int) else 1
                except BaseException:
                    traceback.print_exc(file=err)
                    code = 1
        finally:
            os.chdir(old)
    return Result(tuple(args), code, out.getvalue(), err.getvalue())


def _run_process(cwd: Path, args: list[str]) -> Result:
    # One thread per command: several run at once on a small machine.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    try:
        p = subprocess.run([EDGESLICE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        return Result(tuple(args), -1, str(exc.stdout or ""), f"timed out after {TIMEOUT} s\n{exc.stderr or ''}")
    return Result(tuple(args), p.returncode, p.stdout, p.stderr)



def assert_user_error(r: Result, *needles: str) -> str:
    """Non-zero exit, one `edgeslice: error:` line on stderr naming every needle, no traceback.

    At most one more line may precede it: the note saying which model file a plan runs.
    """
    assert r.returncode != 0, r
    assert r.returncode == 2, f"user errors exit with status 2 (cli.py docstring)\n{r}"
    assert "Traceback" not in r.stdout + r.stderr, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) <= 2, f"at most two lines on stderr\n{r}"
    if len(lines) == 2:  # the only second line allowed: which model code a plan runs (models.check_source)
        assert lines[0].startswith("edgeslice: note: the plan runs the code of "), r
        lines = lines[1:]
    assert len(lines) == 1 and lines[0].strip(), f"expected exactly one error line on stderr\n{r}"
    msg = lines[0]
    assert msg.startswith("edgeslice: error: "), r
    for n in needles:
        assert n in msg, f"{n!r} not in {msg!r}"
    return msg
