"""Collection for the whole suite: ``tests/`` and the ``>>>`` examples in ``src/edgeslice`` (``--doctest-modules``).

Every module of the package is imported to find its examples, so a module
that does something when imported must be listed here.  ``__main__.py``
modules (which run the command line) are never imported by pytest's doctest
collector; they are listed anyway so that the intent is written down.
"""

collect_ignore = [
    "src/edgeslice/cli/__main__.py",  # runs `edgeslice` with pytest's argv
]

# Tests that measure CPU time or load (the emulated testbed's quotas and load generators, a pinned load): another
# test beside them on this machine's cores would change what they measure, so they are marked ``serial`` and
# ``make test`` runs them alone after the others (which it runs two at a time with pytest-xdist).
SERIAL = (
    "tests/testbed/",
    "tests/runtime/test_adapt.py",
    "tests/cost/test_fcpm.py::test_profile_here_measures_under_a_real_pinned_load",
)


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        if item.nodeid.startswith(SERIAL):
            item.add_marker(pytest.mark.serial)


def pytest_configure(config):
    import os

    if os.environ.get("PYTEST_XDIST_WORKER"):  # two test processes on two cores: one torch thread each
        import torch

        torch.set_num_threads(1)
