"""Activations layers (Keras's `layers/activations` group)."""

from __future__ import annotations

__all__: list[str] = []
