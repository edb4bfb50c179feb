"""Figures are written, readable, and refuse bad arguments before drawing anything."""

from __future__ import annotations

import numpy as np
import pytest

from dualnet import figures
from dualnet.reference import activations as R


def test_activation_curves_png(tmp_path):
    import matplotlib.image

    path = figures.activation_curves(tmp_path / "a.png", ("sigmoid", "relu"), points=51)
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 300
    assert image.std() > 0.05  # not a blank canvas


@pytest.mark.parametrize("backend_name", ["torch", "tensorflow"])
def test_activation_values_match_reference(backend_name):
    x = np.linspace(-3, 3, 13) + 0.01  # off the kink at 0
    y, dy = figures.activation_values("tanh", x, backend_name)
    np.testing.assert_allclose(y, R.tanh(x), rtol=1e-14)
    np.testing.assert_allclose(dy, 1 - np.tanh(x) ** 2, rtol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"names": ("nope",)}, "Unknown activation 'nope'"),
        ({"names": ("softmax",)}, "element-wise"),
        ({"names": ()}, "names="),
        ({"x_range": (2.0, 1.0)}, "x_range="),
    ],
)
def test_bad_arguments_write_nothing(tmp_path, kwargs, match):
    target = tmp_path / "x.png"
    with pytest.raises(ValueError, match=match):
        figures.activation_curves(target, **kwargs)
    assert not target.exists()
