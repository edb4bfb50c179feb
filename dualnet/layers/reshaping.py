"""Reshaping layers (Keras's `layers/reshaping` group)."""

from __future__ import annotations

__all__: list[str] = []
