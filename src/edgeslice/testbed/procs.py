"""The testbed's processes: found, killed and waited for, within one deadline.

Note "removal is bounded, retried and named": a process may be *entering* a
device while :func:`edgeslice.testbed.net.down` removes it (a shell that
:meth:`~edgeslice.testbed.net.Testbed.wrap` started has not yet written its pid
to the cgroup, or ``ip netns exec`` has opened the namespace but not yet entered
it), or still *leaving* it after SIGKILL (the kernel unlinks a dying task from
its cgroup only at the very end of its exit, and until then ``rmdir`` says
``EBUSY``).  So nothing is removed on a single look: every process found is
killed and waited for (through a pidfd, which does not reap it: its parent,
e.g. a ``subprocess.Popen``, still gets its exit status), looked for again, and
what the kernel still calls busy is retried, all within one deadline; whatever
is still there at the deadline is named with the reason, never left silently.
"""

from __future__ import annotations

import os
import select
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path


def _alive(pid: int) -> bool:
    """True while ``pid`` has not exited (a zombie has: it holds no cgroup, namespace or CPU)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def wait_exited(pids: Iterable[int], deadline: float) -> set[int]:
    """Wait until every process in ``pids`` has exited or ``deadline`` passes; return those still alive.

    A pidfd turns readable when its process exits; waiting on it does not reap, so a
    ``Popen`` that started the process still gets its exit status.  Thread ids (which
    have no pidfd before Linux 6.9) and kernels without ``pidfd_open`` are polled.
    """
    fds: dict[int, int] = {}
    polled: set[int] = set()
    for pid in pids:
        try:
            fds[os.pidfd_open(pid)] = pid
        except ProcessLookupError:
            continue
        except (OSError, AttributeError):
            polled.add(pid)
    try:
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        waiting = set(fds)
        while True:
            polled = {p for p in polled if _alive(p)}
            left = deadline - time.monotonic()
            if not (waiting or polled) or left <= 0:
                return {fds[fd] for fd in waiting} | polled
            for fd, _ in poller.poll(min(left, 0.02 if polled else left) * 1000):
                poller.unregister(fd)
                waiting.discard(fd)
    finally:
        for fd in fds:
            os.close(fd)


def kill_until_empty(find: Callable[[], set[int]], deadline: float) -> set[int]:
    """SIGKILL what ``find()`` returns and wait for it, until it returns nothing; return what is left at ``deadline``.

    Looked at again after each round: a process may join while the others die.
    """
    me = os.getpid()
    while True:
        pids = {p for p in find() if p != me and _alive(p)}  # a zombie has left; its parent reaps it
        if not pids or time.monotonic() >= deadline:
            return pids
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_exited(pids, deadline)


def holders(inodes: set[int], joinable: tuple[str, ...] = ()) -> set[int]:
    """Processes in a network namespace of ``inodes``, or about to enter one or a cgroup under ``joinable``.

    A process inside a namespace links ``/proc/<pid>/ns/net`` to it (``ip netns pids`` looks there; this
    also finds them once the name is gone).  One about to enter holds it open (``ip netns exec`` between
    ``open`` and ``setns``), or holds a ``cgroup.procs`` under ``joinable`` open for writing
    (:meth:`edgeslice.testbed.net.Testbed.wrap` with ``defer_cgroups``): neither is in yet, and
    either would slip past a single look.
    """
    links = {f"net:[{i}]" for i in inodes}
    out: set[int] = set()
    if not (links or joinable):
        return out
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            if os.readlink(f"/proc/{pid}/ns/net") in links:
                out.add(pid)
                continue
            for fd in os.scandir(f"/proc/{pid}/fd"):
                target = os.readlink(fd.path)
                if target in links or (target.startswith(joinable) and target.endswith("/cgroup.procs")
                                       and _open_for_writing(pid, fd.name)):
                    out.add(pid)
                    break
        except OSError:  # gone meanwhile, or not ours to look at
            continue
    return out


def _open_for_writing(pid: int, fd: str) -> bool:
    info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text().splitlines()
    flags = next(line.split()[1] for line in info if line.startswith("flags"))
    return int(flags, 8) & os.O_ACCMODE != os.O_RDONLY


def join_deferred_cgroups(who: str) -> None:
    """Join the cgroups a deferred testbed process inherited as descriptors (see ``Testbed.wrap(defer_cgroups=True)``).

    Does nothing outside the testbed (no ``$EDGESLICE_JOIN_CGROUP_FDS``).  ``who`` names the process in the error.
    """
    from edgeslice.errors import EdgesliceError

    for fd in filter(None, os.environ.get("EDGESLICE_JOIN_CGROUP_FDS", "").split(",")):
        try:
            os.write(int(fd), str(os.getpid()).encode())
            os.close(int(fd))
        except (OSError, ValueError) as exc:
            raise EdgesliceError(f"{who} could not join its testbed cgroup (descriptor {fd}): {exc}; "
                                 "is the testbed up (`edgeslice testbed status`)?") from None
