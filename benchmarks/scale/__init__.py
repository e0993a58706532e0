"""The scale report: Criteo-format files of growing size, encoded, reloaded and trained on.

``python -m benchmarks.scale`` generates (``data.generate``) Criteo-format files of each size,
then measures every step in a fresh subprocess (``worker``), so that each step's peak resident
memory is its own: the first ``data.load`` (encode), a cached reload, and one epoch of the
study's DCN-V2 (parallel, 3 layers) trained from the memory map, and in memory where the
arrays fit. Each size's figures go to ``<work>/<rows>.json`` (written atomically), so an
interrupted run resumes at the first size not done; ``report`` renders ``results/scale.md``
and a log-log plot from those files.
"""
