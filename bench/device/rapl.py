"""The host's side of a measurement: CPU package energy from RAPL, and the process's peak RSS.

RAPL energy counters live under /sys/class/powercap/intel-rapl:N/energy_uj (AMD CPUs use the same
driver on recent kernels). Package domains are the top-level `intel-rapl:N` zones; their
sub-zones (core, uncore, dram) are parts of a package and are not added again. Since Linux 5.10
the files are readable by root only, so on most machines this is null with that reason.
"""

from __future__ import annotations

import resource
import sys
from dataclasses import dataclass
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")


@dataclass(frozen=True)
class RaplZone:
    name: str  # e.g. package-0
    energy_path: Path
    max_range_uj: int  # the counter wraps to 0 after this value


def _zones(root: Path) -> tuple[list[RaplZone], str | None]:
    if not root.is_dir():
        return [], f"{root} does not exist (no powercap driver on this machine)"
    zones = []
    for d in sorted(root.glob("intel-rapl:*")):
        if d.name.count(":") != 1:  # intel-rapl:0:0 is a sub-zone of package 0
            continue
        try:
            name = (d / "name").read_text().strip()
            max_range = int((d / "max_energy_range_uj").read_text())
            int((d / "energy_uj").read_text())  # readable now, or the reason why not
        except (OSError, ValueError) as e:
            return [], f"RAPL zone {d} is not readable: {type(e).__name__}: {e}"
        if name.startswith("package"):
            zones.append(RaplZone(name, d / "energy_uj", max_range))
    if not zones:
        return [], f"no RAPL package zones under {root}"
    return zones, None


class HostEnergy:
    """Reads the CPU packages' RAPL counters; `reason` says why not where they are unreadable."""

    def __init__(self, root: Path = POWERCAP):
        self.zones, self.reason = _zones(root)

    @property
    def available(self) -> bool:
        return bool(self.zones)

    def read(self) -> list[int] | None:
        """Raw counter values, microjoules, one per package; None when unreadable."""
        if not self.zones:
            return None
        try:
            return [int(z.energy_path.read_text()) for z in self.zones]
        except (OSError, ValueError) as e:
            self.reason = f"RAPL read failed: {type(e).__name__}: {e}"
            return None

    def joules_between(self, start: list[int] | None, end: list[int] | None) -> float | None:
        """Energy of all packages between two reads, counting one wrap of each counter."""
        if start is None or end is None:
            return None
        total_uj = 0
        for zone, a, b in zip(self.zones, start, end, strict=True):
            total_uj += b - a if b >= a else b + zone.max_range_uj - a
        return total_uj / 1e6


def rss_peak_bytes() -> int:
    """This process's peak resident set size since it started (a high-water mark, not per window)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB, macOS bytes
