"""Convolutional layers (Keras's `layers/convolutional` group)."""

from __future__ import annotations

__all__: list[str] = []
