"""Benchmarks: `python -m bench` (or `make bench`) runs them against a real server and prints a table."""
