"""Bootstrap medians drawn without building the resamples: the same distribution, in O(log n) per resample.

The bootstrap replicate of a median is one or two order statistics of a resample. Where the
samples are sorted, a resample is only a count of draws per position, and the order statistic of
rank m is found by descending a binary tree over the positions: at each node the draws it holds
split between its two halves by a binomial draw (the count in a half of a multinomial, given the
node's count, is binomial with the half's share of the probability), and the descent follows the
half that holds rank m. A resample costs ceil(log2 n) binomial draws per record instead of n
uniform draws and a median over them, and the replicates have exactly the distribution of
resampling and taking the median (the former way, kept in tests/compare/test_bootstrap.py).

Several records pooled into one side are resampled in two stages as before: the records with
replacement (a multinomial count per record), then each picked record's own number of samples
from it. Each record's draws split at the tree's nodes by their own binomial, the descent goes by
their sum. For an even total the median is the mean of ranks m and m + 1: their descents share
every split until they part, and split independently after (disjoint nodes of a multinomial are
independent given their counts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RatioCI:
    """Candidate median / baseline median - 1, with a bootstrap confidence interval."""

    change: float
    low: float
    high: float
    confidence: float


class _Tree:
    """The pooled samples sorted, and for each record how many of its samples lie below each position."""

    def __init__(self, arrays: list[np.ndarray]):
        pooled = np.concatenate(arrays)
        labels = np.repeat(np.arange(len(arrays)), [a.size for a in arrays])
        order = np.argsort(pooled, kind="stable")
        self.values = pooled[order]
        self.size = int(pooled.size)
        self.sizes = np.array([a.size for a in arrays], dtype=np.int64)
        # each record's positions in the sorted order, record after record, record j's shifted by
        # j * (size + 1), so that one sorted array answers "how many of record j's lie below i"
        self._offset = np.arange(len(arrays), dtype=np.int64) * (self.size + 1)
        if len(arrays) == 1:
            self._positions = np.arange(self.size, dtype=np.int64)
        else:
            self._positions = np.argsort(labels[order], kind="stable") + np.repeat(self._offset, self.sizes)
        self._start = np.cumsum(self.sizes) - self.sizes

    def below(self, i: np.ndarray) -> np.ndarray:
        """For positions i (k,), the (k, records) counts of each record's samples at positions < i."""
        keys = i[:, None] + self._offset[None, :]
        return np.searchsorted(self._positions, keys, side="left") - self._start[None, :]


State = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
# per resample: the node [lo, hi) of positions, each record's count of samples below lo and below
# hi, each record's draws in the node (k, records), and the rank sought among the node's draws


def _split(tree: _Tree, rng: np.random.Generator, state: State) -> tuple[np.ndarray, np.ndarray]:
    """Each record's samples below the node's middle, and its draws that fall in the left half (binomial)."""
    lo, hi, clo, chi, cnt, _ = state
    cmid = tree.below((lo + hi) // 2)  # a node of one position keeps it: its left half is empty
    span = chi - clo
    p = np.divide(cmid - clo, span, out=np.zeros(span.shape), where=span > 0)
    return cmid, rng.binomial(cnt, p)


def _descend(state: State, cmid: np.ndarray, left: np.ndarray) -> State:
    """Into the half that holds the rank sought."""
    lo, hi, clo, chi, cnt, rank = state
    mid = (lo + hi) // 2
    total = left.sum(axis=1)
    go = rank < total
    g = go[:, None]
    return (np.where(go, lo, mid), np.where(go, mid, hi), np.where(g, clo, cmid), np.where(g, cmid, chi),
            np.where(g, left, cnt - left), np.where(go, rank, rank - total))  # fmt: skip


def _order_statistics(tree: _Tree, counts: np.ndarray, rank: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Values of ranks `rank` and `rank` + 1 of each resample ((k, 2)), the resample drawn `counts` (k, records)."""
    k = counts.shape[0]
    node = (np.zeros(k, np.int64), np.full(k, tree.size, np.int64), np.zeros_like(counts),
            np.broadcast_to(tree.sizes, counts.shape).copy(), counts)  # fmt: skip
    a: State = (*node, rank)
    b: State = (*node, rank + 1)
    for _ in range(int(np.ceil(np.log2(tree.size))) if tree.size > 1 else 0):
        apart = (a[0] != b[0]) | (a[1] != b[1])
        cmid, left = _split(tree, rng, a)
        b_cmid, b_left = cmid, left  # in the same node: the same draws, split once
        if apart.any():  # descents that parted split their own node, independently
            b_cmid, b_left = cmid.copy(), left.copy()
            sub: State = (b[0][apart], b[1][apart], b[2][apart], b[3][apart], b[4][apart], b[5][apart])
            b_cmid[apart], b_left[apart] = _split(tree, rng, sub)
        a, b = _descend(a, cmid, left), _descend(b, b_cmid, b_left)
    return np.stack([tree.values[a[0]], tree.values[b[0]]], axis=1)


def bootstrap_medians(groups: Sequence[Sequence[float] | np.ndarray], n_resamples: int = 2000,
                      seed: int = 0) -> np.ndarray:  # fmt: skip
    """Bootstrap replicates of the median of pooled samples, one per resample (as the former way, drawn faster).

    One group (one record) is resampled as is. Several groups (records of several GPUs or runs
    pooled into one side) are resampled in two stages, the records and then the samples within
    each, so the interval carries the spread between records and not only within them.
    """
    arrays = [np.asarray(g, dtype=np.float64) for g in groups if len(g)]
    if not arrays:
        raise ValueError("cannot bootstrap zero samples")
    rng = np.random.default_rng(seed)
    tree = _Tree(arrays)
    n_groups = len(arrays)
    if n_groups == 1:
        picks = np.ones((n_resamples, 1), dtype=np.int64)
    else:
        picks = rng.multinomial(n_groups, np.full(n_groups, 1 / n_groups), size=n_resamples)
    counts = picks * tree.sizes[None, :]
    total = counts.sum(axis=1)
    pair = _order_statistics(tree, counts, (total - 1) // 2, rng)
    return np.where(total % 2 == 1, pair[:, 0], pair.mean(axis=1))


def median_change(
    base_median: float, cand_median: float, base_boot: np.ndarray, cand_boot: np.ndarray, confidence: float = 0.95
) -> RatioCI:
    """Candidate median / baseline median - 1, with the percentile interval of the same ratio over the bootstrap
    medians of each side (drawn independently). Both medians must be positive."""
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(cand_boot / base_boot - 1.0, [tail, 100 - tail])
    return RatioCI(cand_median / base_median - 1.0, float(low), float(high), confidence)
