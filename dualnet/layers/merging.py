"""Merging layers (Keras's `layers/merging` group)."""

from __future__ import annotations

__all__: list[str] = []
