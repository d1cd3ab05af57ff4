"""`edgeslice bench ...` suites, one module each: :mod:`.simulate` (plan evaluations per second), :mod:`.fl` (FL + PSOMW sweep); the testbed suite is :mod:`edgeslice.testbed.bench`."""
