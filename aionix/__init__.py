"""Aionix: a portable cloud runtime in one process around one SQLite file."""

__version__ = "0.1.0"
