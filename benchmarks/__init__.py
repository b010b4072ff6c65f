"""Benchmark harness: our tool side by side with git, DVC, W&B Artifacts and raw limits.

Words: a *dataset* is D1 ("big") or D2 ("many") from datasets.py; a *case* is one operation
on one dataset (cases.py); a *peer* is another tool timed on the same case (peers.py); a
*sample* is one timed run (timing.py). `python -m benchmarks.run` runs everything.
"""
