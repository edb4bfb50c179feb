"""Backend-neutral dtype names.

dualnet names dtypes by string, the way Keras does. Floating dtypes are what layers, losses and
activations compute in; integer dtypes carry labels (``SparseCategoricalCrossentropy``).
"""

from __future__ import annotations

from typing import Any

from dualnet.errors import describe

FLOAT_DTYPES: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")
INT_DTYPES: tuple[str, ...] = ("int32", "int64")
ALL_DTYPES: tuple[str, ...] = (*FLOAT_DTYPES, *INT_DTYPES, "bool")
# Keras's ``floatx``: what Python floats, lists and layer weights default to.
FLOATX = "float32"


def standardize(
    dtype: Any, *, argument: str = "dtype", allowed: tuple[str, ...] = ALL_DTYPES, where: str = ""
) -> str:
    """Return the dualnet name of ``dtype`` (a string, numpy dtype, or framework dtype).

    Raises:
        TypeError: ``dtype`` is not one of ``allowed``.
    """
    name = getattr(dtype, "name", None)  # numpy, TensorFlow and ml_dtypes dtypes have `.name`
    if name is None and isinstance(dtype, type):
        name = getattr(dtype, "__name__", None)  # np.float32, ml_dtypes.bfloat16 scalar types
    if name is None:
        name = str(dtype)
    name = name.removeprefix("torch.").removeprefix("<dtype: '").removesuffix("'>")
    if name not in allowed:
        prefix = f"{where}: " if where else ""  # the object whose argument was wrong
        raise TypeError(
            f"{prefix}invalid {argument}={describe(dtype)}; expected one of {', '.join(allowed)}."
        )
    return name


def numpy_dtype(dtype: str) -> Any:
    """The numpy dtype for a dualnet dtype name (bfloat16 comes from ``ml_dtypes``)."""
    import numpy as np

    if dtype == "bfloat16":
        import ml_dtypes  # installed with TensorFlow and JAX; the only numpy bfloat16 there is

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)
