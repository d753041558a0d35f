"""Benchmarks: ``python -m bench NAME [--smoke]``; each prints medians and ratios to a baseline."""
