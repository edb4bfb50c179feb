"""Pooling layers (Keras's `layers/pooling` group)."""

from __future__ import annotations

__all__: list[str] = []
