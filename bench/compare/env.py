"""The environment of baseline and candidate side by side: software, firmware, clocks and settings.

A difference is a warning under the verdict, never a verdict: a new driver can explain a change
in speed, but the times decide whether there is one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from bench.results.identity import physical_gpu
from bench.results.reader import Run


@dataclass
class EnvDiff:
    """One environment field: its values on each side, and whether they differ."""

    key: str
    baseline: list[str]
    candidate: list[str]
    state: str  # same | differs | unknown (known on one side only)

    @property
    def differs(self) -> bool:
        """True when both sides know the field and their values differ (a warning under the verdict)."""
        return self.state == "differs"


# Environment fields listed side by side; a difference is a warning, not a verdict.
ENV_KEYS = {
    "device_name": "device",
    "driver_version": "driver",
    "cuda_version": "CUDA",
    "torch_version": "torch",
    "tokenbench_version": "tokenbench",
    "python_version": "Python",
    "gpu_vbios": "VBIOS",
    "gpu_power_limit_w": "power limit (W, as found)",
    "gpu_sm_clock_max_mhz": "SM clock max (MHz)",
    "gpu_mem_clock_max_mhz": "memory clock max (MHz)",
    "gpu_persistence_mode": "persistence mode",
    "gpu_mig_mode": "MIG mode",
    "float32_matmul_precision": "float32 matmul precision",
    "torch_num_threads": "torch threads",
}
CLOCK_TOLERANCE = 0.05  # observed mean SM clocks this far apart are listed as differing


def _env_values(runs: list[Run], key: str) -> dict[str, list[str]]:
    """Each value of an environment field, with the GPUs it was found on."""
    values: dict[str, list[str]] = defaultdict(list)
    for run in runs:
        env = (run.header or {}).get("environment") or {}
        value = env.get(key)
        if value is None:  # records carry the software versions too, for runs without a header
            value = next((r.get(key) for r in run.records if r.get(key) is not None), None)
        if value is not None:
            text = f"{value:g}" if isinstance(value, float) else str(value)
            values[text] += sorted({physical_gpu(r) for r in run.records})
    return values


def _shown(values: dict[str, list[str]]) -> list[str]:
    """The values; where they differ inside one side, each with the GPUs that had it."""
    if len(values) < 2:
        return sorted(values)
    return [f"{v} on {gs[0] if len(gs) == 1 else f'{len(gs)} GPUs'}" for v, gs in sorted(values.items())]


def _observed_clock(runs: list[Run]) -> float | None:
    clocks = [r["sm_clock_mean_mhz"] for run in runs for r in run.records if r.get("sm_clock_mean_mhz")]
    return float(np.median(clocks)) if clocks else None


def _mhz(clock: float | None) -> list[str]:
    return [] if clock is None else [f"{clock:.0f}"]


def _state(known_b: bool, known_c: bool, same: bool) -> str:
    return "unknown" if known_b != known_c else "same" if same else "differs"


def env_diffs(base: list[Run], cand: list[Run]) -> list[EnvDiff]:
    """Every environment field either side knows, and the SM clock observed in the timed windows."""
    out = []
    for key, name in ENV_KEYS.items():
        b, c = _env_values(base, key), _env_values(cand, key)
        if b or c:
            out.append(EnvDiff(name, _shown(b), _shown(c), _state(bool(b), bool(c), set(b) == set(c))))
    cb, cc = _observed_clock(base), _observed_clock(cand)
    if cb or cc:
        close = bool(cb and cc) and abs((cc or 0) / (cb or 1) - 1) <= CLOCK_TOLERANCE
        out.append(
            EnvDiff("SM clock in the windows (MHz, median)", _mhz(cb), _mhz(cc), _state(bool(cb), bool(cc), close))
        )
    return out
