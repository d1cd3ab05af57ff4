"""Collection for the whole suite: ``tests/`` and the ``>>>`` examples in ``src/edgeslice`` (``--doctest-modules``).

Every module of the package is imported to find its examples, so a module
that does something when imported must be listed here.  ``__main__.py``
modules (which run the command line) are never imported by pytest's doctest
collector; they are listed anyway so that the intent is written down.
"""

collect_ignore = [
    "src/edgeslice/cli/__main__.py",  # runs `edgeslice` with pytest's argv
]
