"""Benchmarks (`make bench`): not timed tests. Each module `bench/<name>.py` has `run() -> dict`
which prints a table and returns the figures; `python -m bench [names…]` writes
`bench/results/<name>.json`."""
