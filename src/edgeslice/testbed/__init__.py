"""The emulated edge testbed: a cluster file made real on one machine.

:mod:`edgeslice.testbed.net` builds and removes the namespaces, shaped links
and CPU quotas (:mod:`edgeslice.testbed.cgroups` sets and removes the quotas,
:mod:`edgeslice.testbed.procs` finds, kills and waits for the processes
inside); :mod:`edgeslice.testbed.calibrate` measures what each emulated
device and link really does (``edgeslice testbed profile``) and writes the
calibrated cluster that planning on the testbed uses;
:mod:`edgeslice.testbed.bench` plans, predicts and runs every planner there
(``edgeslice bench testbed``).
"""

from edgeslice.testbed.net import LeftoversError, Testbed, current, down, preflight, require, status, up

__all__ = ["LeftoversError", "Testbed", "current", "down", "preflight", "require", "status", "up"]
