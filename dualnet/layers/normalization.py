"""Normalization layers (Keras's `layers/normalization` group)."""

from __future__ import annotations

__all__: list[str] = []
