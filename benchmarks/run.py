"""Run the dualnet benchmarks: ``python benchmarks/run.py --quick`` (same as ``dualnet bench``).

The harness and the kernel definitions live in the installed package ``dualnet.bench``
(``dualnet/bench/suite.py`` holds the definitions) so that ``dualnet bench`` works from an
installed dualnet; this script is the entry point from a checkout. See benchmarks/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    # From a checkout without `pip install -e .`: make the repository's dualnet importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from dualnet.bench.cli import main

    sys.exit(main(sys.argv[1:], prog="python benchmarks/run.py"))
