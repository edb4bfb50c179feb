"""Activations layers on torch (builders named like the neutral classes)."""

from __future__ import annotations
