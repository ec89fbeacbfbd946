"""tokenbench: the harness (device, timing, results, runner, CLI)."""

__version__ = "0.1.0"
