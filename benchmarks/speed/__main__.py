"""Entry point: ``python -m benchmarks.speed`` (see :mod:`benchmarks.speed.main`)."""

from .main import main

main()
