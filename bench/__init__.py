"""Benchmarks, run on demand with `python -m bench NAME` (never part of the test suite)."""
