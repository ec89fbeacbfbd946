"""Summary statistics of timing samples."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

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
BATCH_ELEMENTS = 1 << 22  # resampled values held at once: bounds memory whatever the sample count


def bootstrap_medians(
    groups: Sequence[Sequence[float] | np.ndarray], n_resamples: int = 2000, seed: int = 0
) -> np.ndarray:
    """Bootstrap replicates of the median of pooled samples, one per resample.

    One group (one record) is resampled as is. Several groups (records of several GPUs or runs
    pooled into one baseline) are resampled in two stages, the records and then the samples
    within each, so the interval carries the spread between records and not only within them.
    """
    arrays = [np.asarray(g, dtype=np.float64) for g in groups if len(g)]
    if not arrays:
        raise ValueError("cannot bootstrap zero samples")
    rng = np.random.default_rng(seed)
    out = np.empty(n_resamples)
    if len(arrays) == 1:
        x = arrays[0]
        rows = max(1, BATCH_ELEMENTS // x.size)
        for i in range(0, n_resamples, rows):
            k = min(rows, n_resamples - i)
            out[i : i + k] = np.median(x[rng.integers(0, x.size, size=(k, x.size))], axis=1)
        return out
    sizes = {g.size for g in arrays}
    if len(sizes) == 1:  # records of one suite usually keep as many samples each: draw whole batches at once
        stacked, (n,) = np.stack(arrays), sizes
        n_groups = len(arrays)
        rows = max(1, BATCH_ELEMENTS // (n_groups * n))
        for i in range(0, n_resamples, rows):
            k = min(rows, n_resamples - i)
            picks = rng.integers(0, n_groups, size=(k, n_groups, 1))
            values = stacked[picks, rng.integers(0, n, size=(k, n_groups, n))]
            out[i : i + k] = np.median(values.reshape(k, n_groups * n), axis=1)
        return out
    for i in range(n_resamples):
        picked = (arrays[j] for j in rng.integers(0, len(arrays), len(arrays)))
        out[i] = np.median(np.concatenate([g[rng.integers(0, g.size, g.size)] for g in picked]))
    return out


@dataclass(frozen=True)
class RatioCI:
    """Candidate median / baseline median - 1, with a bootstrap confidence interval."""

    change: float
    low: float
    high: float
    confidence: float


def median_change(
    baseline: np.ndarray, candidate: np.ndarray, base_boot: np.ndarray, cand_boot: np.ndarray, confidence: float = 0.95
) -> RatioCI:
    """Relative change of the median from baseline to candidate, with its percentile-bootstrap interval.

    `baseline` and `candidate` are the pooled samples; `*_boot` their bootstrap medians
    (bootstrap_medians, drawn independently on each side). Both medians must be positive.
    """
    change = float(np.median(candidate) / np.median(baseline) - 1.0)
    ratios = cand_boot / base_boot - 1.0
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return RatioCI(change, float(low), float(high), confidence)
