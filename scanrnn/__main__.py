"""``python -m scanrnn``: the ``scanrnn`` command line (see :mod:`scanrnn.cli`)."""

import sys

from .cli import main

sys.exit(main())
