"""``python -m edgeslice.cli``: the same as the ``edgeslice`` command."""

import sys

from edgeslice.cli import main

sys.exit(main())
