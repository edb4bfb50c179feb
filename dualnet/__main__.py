"""``python -m dualnet ...`` is the ``dualnet`` command."""

import sys

from dualnet.cli import main

sys.exit(main())
