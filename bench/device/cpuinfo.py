"""The CPU's model name, without torch (the serve client and `--help` paths must not import it)."""

from __future__ import annotations

import platform


def cpu_model_name() -> str:
    """The CPU's marketing name from /proc/cpuinfo, falling back to platform's answer."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"
