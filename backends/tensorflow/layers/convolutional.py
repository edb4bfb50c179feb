"""Convolutional layers on tf.keras (builders named like the neutral classes)."""

from __future__ import annotations
