"""Summary statistics of timing samples."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# A measurement whose coefficient of variation exceeds this is flagged unstable.
DEFAULT_CV_THRESHOLD = 0.05


@dataclass(frozen=True)
class Summary:
    """Median, mean, p5/p95 (linear interpolation), sample stdev (n-1), CV = stdev / mean."""

    n: int
    median: float
    mean: float
    p5: float
    p95: float
    stdev: float
    cv: float
    min: float
    max: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def record_fields(self, samples: list[float]) -> dict[str, Any]:
        """The record's samples_s, n_samples and time_* fields (a stdev or CV that n = 1 leaves undefined: null)."""
        return {
            "n_samples": self.n,
            "samples_s": samples,
            "time_median_s": self.median,
            "time_mean_s": self.mean,
            "time_p5_s": self.p5,
            "time_p95_s": self.p95,
            "time_min_s": self.min,
            "time_max_s": self.max,
            "time_stdev_s": self.stdev if math.isfinite(self.stdev) else None,
            "time_cv": self.cv if math.isfinite(self.cv) else None,
        }


def summarize(samples: Sequence[float]) -> Summary:
    """Summarise samples; stdev and CV are NaN for a single sample, never a made-up 0."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        raise ValueError("cannot summarise zero samples")
    mean = float(x.mean())
    stdev = float(x.std(ddof=1)) if x.size > 1 else math.nan
    return Summary(
        n=int(x.size),
        median=float(np.median(x)),
        mean=mean,
        p5=float(np.percentile(x, 5)),
        p95=float(np.percentile(x, 95)),
        stdev=stdev,
        cv=stdev / mean if mean > 0 and not math.isnan(stdev) else math.nan,
        min=float(x.min()),
        max=float(x.max()),
    )


def is_unstable(summary: Summary, cv_threshold: float = DEFAULT_CV_THRESHOLD) -> bool:
    """True when the spread is too large to trust the median (or cannot be judged)."""
    return math.isnan(summary.cv) or summary.cv > cv_threshold


BASELINE_SEED, CANDIDATE_SEED = 0xBA5E, 0xCA4D  # fixed, and different, so the same files give the same interval
