"""Registry of data sets: ``data.load(name, **options) -> Dataset``.

A loader is registered either with the options dataclass it takes (every raw-file loader:
``fn(options) -> Dataset``; its accepted options are the dataclass's fields, ``defaults``
overrides some of their defaults, and ``options.check(name)`` validates them before the
loader runs) or, without one, as ``fn(**options) -> Dataset`` whose
keyword parameters are its options.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from .schema import Dataset


@dataclass(frozen=True)
class _Entry:
    fn: Callable[..., Dataset]
    options: type | None
    defaults: dict


_LOADERS: dict[str, _Entry] = {}


def register(name: str, options: type | None = None, **defaults):
    """Decorator: make a loader loadable as ``data.load(name, ...)`` (see the module docstring)."""

    def deco(fn):
        if name in _LOADERS:
            raise ValueError(f"data set {name!r} is already registered")
        _LOADERS[name] = _Entry(fn, options, defaults)
        return fn

    return deco


def available() -> list[str]:
    return sorted(_LOADERS)


def options(name: str) -> list[str]:
    """Names of the options that ``load(name, ...)`` accepts."""
    entry = _entry(name)
    if entry.options is None:
        return list(inspect.signature(entry.fn).parameters)
    return [f.name for f in dataclasses.fields(entry.options)]


def load(name: str, **opts) -> Dataset:
    """Load the registered data set ``name`` with ``opts``; errors list what is accepted."""
    entry = _entry(name)
    accepted = options(name)
    unknown = sorted(set(opts) - set(accepted))
    if unknown:
        raise TypeError(f"data set {name!r} got unknown option(s) {unknown}; accepted: {accepted}")
    if entry.options is None:
        return entry.fn(**opts)
    checked = entry.options(**(entry.defaults | opts))
    checked.check(name)
    return entry.fn(checked)


def _entry(name: str) -> _Entry:
    try:
        return _LOADERS[name]
    except KeyError:
        raise KeyError(f"unknown data set {name!r}; available: {available()}") from None
