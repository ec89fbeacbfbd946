"""The tokenbench command line."""

from bench.cli.commands import app, main

__all__ = ["app", "main"]
