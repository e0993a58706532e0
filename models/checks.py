"""Argument checks shared by layers and models; errors say the name, the value seen and what is expected."""

from __future__ import annotations

from numbers import Integral, Real


def positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def probability(name: str, value) -> float:
    """A dropout-style rate in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def boolean(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def one_of(name: str, value, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def widths(name: str, value) -> tuple[int, ...]:
    """A sequence of positive layer widths, e.g. ``(128, 64, 32)``; returned as a tuple."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"{name} must be a sequence of positive integers such as (64, 16), got {value!r}")
    items = tuple(value)
    if any(isinstance(v, bool) or not isinstance(v, Integral) or v < 1 for v in items):
        raise ValueError(f"{name} must be a sequence of positive integers such as (64, 16), got {value!r}")
    return tuple(int(v) for v in items)


def positive_number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 < value < float("inf"):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def positive_numbers(name: str, value) -> tuple[float, ...]:
    """A non-empty sequence of positive finite numbers, e.g. ``(0.1, 1.0, 10.0)``; returned as a tuple."""
    expected = f"{name} must be a non-empty sequence of positive numbers such as (0.1, 1.0, 10.0), got {value!r}"
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(expected)
    items = tuple(value)
    if not items or any(isinstance(v, bool) or not isinstance(v, Real) or not 0 < v < float("inf") for v in items):
        raise ValueError(expected)
    return tuple(float(v) for v in items)
