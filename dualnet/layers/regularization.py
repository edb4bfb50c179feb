"""Regularization layers (Keras's `layers/regularization` group)."""

from __future__ import annotations

__all__: list[str] = []
