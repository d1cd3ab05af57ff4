"""edgeslice: partition one CNN inference over several heterogeneous devices.

The functions of :mod:`edgeslice.api` are here for scripts — :func:`trace`,
:func:`load_cluster`, :func:`plan`, :func:`simulate`, :func:`check`,
:func:`run` — and ``__version__``.  Importing ``edgeslice`` does not import
torch; the functions import what they need when called.

Note (API names over subpackages): ``edgeslice.plan`` is the function, although
a subpackage ``edgeslice.plan`` exists too.  Importing that subpackage would
normally rebind the attribute to it, so the package keeps its API functions
against such rebinding; the subpackage is still imported as usual
(``from edgeslice.plan import Plan``).

Example::

    >>> import edgeslice
    >>> import edgeslice.plan.plan  # the subpackage loads, and edgeslice.plan stays the function
    >>> callable(edgeslice.plan), edgeslice.__version__.count(".") >= 1
    (True, True)
"""

from __future__ import annotations

import sys as _sys
import types as _types
from importlib.metadata import PackageNotFoundError as _NotInstalled
from importlib.metadata import version as _version

try:
    __version__ = _version("edgeslice")
except _NotInstalled:  # a source tree on sys.path, not installed
    __version__ = "0+unknown"

from edgeslice.api import Result, check, load_cluster, plan, run, simulate, trace  # noqa: E402

__all__ = ["Result", "__version__", "check", "load_cluster", "plan", "run", "simulate", "trace"]

_API = frozenset(__all__)


class _Package(_types.ModuleType):
    """The ``edgeslice`` module: importing a subpackage does not replace an API function of the same name."""

    def __setattr__(self, name: str, value) -> None:
        if name in _API and isinstance(value, _types.ModuleType):
            return  # the import system binding the subpackage ``edgeslice.<name>``; it stays in sys.modules
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package
