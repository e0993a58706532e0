"""Registry of data sets: ``data.load(name, **options) -> Dataset``."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from .schema import Dataset

_LOADERS: dict[str, Callable[..., Dataset]] = {}


def register(name: str):
    """Decorator: make ``fn(**options) -> Dataset`` loadable as ``data.load(name, ...)``."""

    def deco(fn):
        if name in _LOADERS:
            raise ValueError(f"data set {name!r} is already registered")
        _LOADERS[name] = fn
        return fn

    return deco


def available() -> list[str]:
    return sorted(_LOADERS)


def options(name: str) -> list[str]:
    """Names of the options that ``load(name, ...)`` accepts."""
    return list(inspect.signature(_loader(name)).parameters)


def load(name: str, **opts) -> Dataset:
    """Load the registered data set ``name`` with ``opts``; errors list what is accepted."""
    fn = _loader(name)
    accepted = options(name)
    unknown = sorted(set(opts) - set(accepted))
    if unknown:
        raise TypeError(f"data set {name!r} got unknown option(s) {unknown}; accepted: {accepted}")
    return fn(**opts)


def _loader(name: str):
    try:
        return _LOADERS[name]
    except KeyError:
        raise KeyError(f"unknown data set {name!r}; available: {available()}") from None
