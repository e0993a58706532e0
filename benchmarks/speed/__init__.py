"""The speed report: our families against peer implementations, side by side (``python -m benchmarks.speed``).

Modules: ``cases`` (what is compared, the targets, the settings), ``measure`` (one implementation's
measurements), ``workers`` (child processes), ``levers`` (fit's levers on and off), ``render``
(markdown), ``main`` (the whole run and the command line), ``peers`` (the peer implementations).
"""
