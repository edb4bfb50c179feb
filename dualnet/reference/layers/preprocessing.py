"""float64 numpy reference of the preprocessing layers, written from the math of
:mod:`dualnet.layers.preprocessing`.

Each function takes the input, the (empty) weight dict and the layer's config as keywords
(``layer.get_config()`` without name/dtype).
"""

from __future__ import annotations

import numpy as np


def rescaling(x, weights=None, *, scale, offset=0.0, **_):
    """``x·scale + offset``; a list broadcasts along the last axis (numpy's own rule for a 1-D
    operand). An integer input is converted first, as the layer casts it to its dtype."""
    x = np.asarray(x, dtype=np.float64)
    return x * np.asarray(scale, np.float64) + np.asarray(offset, np.float64)
