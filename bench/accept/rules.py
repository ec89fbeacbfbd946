"""Acceptance rules: from a node's records to findings, each PASS, FAIL or N/A with its reason.

The thresholds are data (bench/accept/thresholds.toml, each with its source), overridable by the
user's file. A rule that cannot be judged here (no vendor peak for a CPU, no reference, one GPU
only) says N/A and why: it never passes or fails a GPU silently. Reads records only.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bench.compare.model import config_key
from bench.compare.node import headline
from bench.errors import first_error
from bench.results import files
from bench.text import number, plural

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

NODE = "node"  # the gpu of a finding about the whole node


class ThresholdsError(ValueError):
    """A thresholds file that cannot be used; the message is one line naming the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GemmRule(_Strict):
    min_frac_peak: float = Field(gt=0, le=1)
    dtypes: list[str]
    source: str


class BandwidthRule(_Strict):
    min_frac_peak: float = Field(gt=0, le=1)
    source: str


class ReferenceRule(_Strict):
    min_frac: float = Field(gt=0, le=1)
    source: str


class OutlierRule(_Strict):
    max_pct_below_median: float = Field(gt=0, lt=100)
    source: str


class CollectiveRule(_Strict):
    min_frac_fabric: float = Field(gt=0, le=1)
    min_size_bytes: int = Field(ge=0)
    fabric_gb_per_s: dict[str, float]
    source: str


class HealthRule(_Strict):
    fail_clock_events: list[str]
    source: str


class SoakRule(_Strict):
    min_steady_over_first: float = Field(gt=0, le=1)
    max_decay_pct_per_min: float = Field(ge=0)
    source: str


class Thresholds(_Strict):
    """Every rule's thresholds, with where each comes from."""

    gemm: GemmRule
    bandwidth: BandwidthRule
    reference: ReferenceRule
    outlier: OutlierRule
    collective: CollectiveRule
    health: HealthRule
    soak: SoakRule


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_thresholds(path: Path | None = None) -> Thresholds:
    """The packaged thresholds, with the keys of `path` (a TOML file) replacing theirs."""
    data = tomllib.loads((resources.files("bench.accept") / "thresholds.toml").read_text(encoding="utf-8"))
    if path is not None:
        try:
            data = _merge(
                data, tomllib.loads(files.read_text_bounded(Path(path), files.limit_bytes(), "a thresholds file"))
            )
        except OSError as e:
            raise ThresholdsError(f"--thresholds {path}: cannot read ({e.strerror or e})") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ThresholdsError(f"--thresholds {path}: not valid TOML ({e})") from None
    try:
        return Thresholds.model_validate(data)
    except ValidationError as e:
        raise ThresholdsError(f"--thresholds {path}: {first_error(e, 'thresholds', show_input=True)}") from None


@dataclass(frozen=True)
class Finding:
    """One rule's outcome for one GPU (or the node): PASS, FAIL or N/A, and why."""

    node: str
    gpu: str
    rule: str
    verdict: str
    detail: str


def _ok(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("status") == "ok" and r.get("phase") != "soak"]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def check_rule(node: str, gpu: str, records: list[dict[str, Any]]) -> Finding:
    """Every measurement ran and its output check passed (a wrong answer fails, whatever the speed)."""
    failed = [r for r in records if r.get("status") == "failed"]
    if not failed:
        n = sum(1 for r in records if r.get("check_passed") is True)
        return Finding(node, gpu, "checks", "PASS", f"{plural(n, 'output check')} passed, no measurement failed")
    first = "; ".join(f"{r.get('workload')} {r.get('label')}: {r.get('reason')}" for r in failed[:3])
    more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
    return Finding(node, gpu, "checks", "FAIL", f"{plural(len(failed), 'measurement')} failed: {first}{more}")


def health_rule(node: str, gpu: str, records: list[dict[str, Any]], th: HealthRule) -> Finding:
    """No memory fault during a measurement and no hardware slowdown of the clocks."""
    faults = [f"{r.get('workload')} {r.get('label')}: {r.get('health_detail')}" for r in records
              if r.get("health_change") == "fail"]  # fmt: skip
    events: dict[str, float] = {}
    for r in records:
        for reason, share in (r.get("clock_event_shares") or {}).items():
            if reason in th.fail_clock_events and share and share > 0:
                events[reason] = max(events.get(reason, 0.0), float(share))
    if faults or events:
        parts = faults[:2] + [
            f"{reason} in up to {_pct(share)} of a window" for reason, share in sorted(events.items())
        ]
        return Finding(node, gpu, "health", "FAIL", "; ".join(parts))
    if not any("clock_event_shares" in r and r.get("n_telemetry_samples") for r in records):
        return Finding(node, gpu, "health", "N/A", "no clock-event telemetry on this device (NVML not available)")
    return Finding(node, gpu, "health", "PASS", "no memory fault, no hardware slowdown")


def _peak_rule(node: str, gpu: str, rows: list[dict[str, Any]], rule: str, field: str, minimum: float,
               unit: str) -> Finding:  # fmt: skip
    judged = [r for r in rows if r.get(field) is not None]
    if not rows:
        return Finding(node, gpu, rule, "N/A", "no such measurement in this suite")
    if not judged:
        why = rows[0].get("peak_reason") or "no vendor peak known"
        return Finding(node, gpu, rule, "N/A", f"no vendor peak for {rows[0].get('device_name')}: {why}")
    low = [r for r in judged if r[field] < minimum]
    if low:
        worst = min(low, key=lambda r: r[field])
        return Finding(node, gpu, rule, "FAIL", f"{worst.get('label')}: {_pct(worst[field])} of peak < "
                       f"{_pct(minimum)} ({number(worst.get(unit))} {unit.split('_')[0]})")  # fmt: skip
    best = min(judged, key=lambda r: r[field])
    return Finding(node, gpu, rule, "PASS", f"{len(judged)} at >= {_pct(minimum)} of peak (lowest {_pct(best[field])})")


def gemm_rule(node: str, gpu: str, records: list[dict[str, Any]], th: GemmRule) -> Finding:
    rows = [r for r in _ok(records) if r.get("workload") == "gemm" and r.get("param_dtype") in th.dtypes]
    return _peak_rule(node, gpu, rows, "gemm", "frac_peak_flops", th.min_frac_peak, "tflops")


def bandwidth_rule(node: str, gpu: str, records: list[dict[str, Any]], th: BandwidthRule) -> Finding:
    rows = [r for r in _ok(records) if r.get("workload") == "copy"]
    return _peak_rule(node, gpu, rows, "bandwidth", "frac_peak_bw", th.min_frac_peak, "gb_per_s")


def reference_rule(node: str, gpu: str, records: list[dict[str, Any]], reference: list[dict[str, Any]],
                   th: ReferenceRule) -> Finding:  # fmt: skip
    """Each figure at least a fraction of the reference's median for the same configuration."""
    if not reference:
        return Finding(node, gpu, "reference", "N/A", "no reference results for this GPU model")
    ref: dict[Any, list[float]] = {}
    for r in _ok(reference):
        value, _ = headline(r)
        if value is not None:
            ref.setdefault(config_key(r), []).append(value)
    short, n = [], 0
    for r in _ok(records):
        value, unit = headline(r)
        base = sorted(ref.get(config_key(r), []))
        if value is None or not base:
            continue
        n += 1
        median = base[len(base) // 2]
        if value < th.min_frac * median:
            short.append(f"{r.get('workload')} {r.get('label')}: {number(value)} {unit} = {_pct(value / median)}")
    if not n:
        return Finding(node, gpu, "reference", "N/A", "no configuration in common with the reference")
    if short:
        return Finding(
            node, gpu, "reference", "FAIL", f"under {_pct(th.min_frac)} of the reference: {'; '.join(short[:3])}"
        )
    return Finding(
        node, gpu, "reference", "PASS", f"{plural(n, 'configuration')} at >= {_pct(th.min_frac)} of the reference"
    )
