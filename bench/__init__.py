"""``make bench``: benchmarks that write ``bench/results/<name>.json`` and ``docs/benchmarks.md``.

Run ``python -m bench --help``. Each benchmark module exposes ``run(options) -> Result``; the
report (``bench.report``) is regenerated from the JSON files only, so every figure in the doc
comes from a recorded run.
"""
