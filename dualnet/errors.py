"""Errors and warnings raised by dualnet.

Every error names the argument, the value received and what was expected, and is raised the
same way whichever backend is active (the checks live in the neutral layer, before any framework
is touched).
"""

from __future__ import annotations

from typing import Any


class DualnetWarning(UserWarning):
    """A warning issued by dualnet itself (the test-suite turns these into errors)."""


class BackendUnavailableError(ImportError):
    """A backend was requested whose framework is not installed."""


def describe(value: Any) -> str:
    """A short, safe ``repr`` for error messages (long values are truncated)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def bad_value(argument: str, value: Any, expected: str, *, where: str = "") -> ValueError:
    """Build the standard ``ValueError``: argument, value received, what was expected."""
    prefix = f"{where}: " if where else ""
    return ValueError(f"{prefix}invalid {argument}={describe(value)}; expected {expected}.")


def bad_type(argument: str, value: Any, expected: str, *, where: str = "") -> TypeError:
    """Build the standard ``TypeError``: argument, type received, what was expected."""
    prefix = f"{where}: " if where else ""
    return TypeError(
        f"{prefix}invalid {argument}={describe(value)} of type {type(value).__name__}; "
        f"expected {expected}."
    )


def unknown_name(kind: str, value: Any, known: list[str]) -> ValueError:
    """Build the standard error for an unknown registry name (activation, loss, ...)."""
    return ValueError(
        f"Unknown {kind} {describe(value)}; expected one of: {', '.join(sorted(known))}."
    )
