"""float64 numpy reference of the convolutional layers."""

from __future__ import annotations

import numpy as np  # noqa: F401
