"""rliable statistics, with its stratified bootstrap vectorised.

Point estimates come from `rliable.metrics`. Confidence intervals follow `rliable.library`: percentile
intervals of a stratified bootstrap that resamples runs within each task. rliable draws each
replicate's indices with the global `np.random.choice` and evaluates the metric in a Python loop
(10-15 s per method for 50,000 replicates); here the same draws come from a `RandomState(seed)` in
blocks and the metrics are evaluated on whole blocks, so the intervals equal
`np.random.seed(seed); rliable.library.get_interval_estimates(...)` to the last digit
(tests/results/test_stats.py checks this) at a fraction of the time. The global random state is
never touched.

Score matrices have shape (runs, tasks) (or (runs, tasks, points) for curves).
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
from rliable import metrics as rly

METRICS = ["median", "iqm", "mean", "optimality_gap"]
POINT: dict[str, Callable[[np.ndarray], float]] = {
    "median": rly.aggregate_median,
    "iqm": rly.aggregate_iqm,
    "mean": rly.aggregate_mean,
    "optimality_gap": rly.aggregate_optimality_gap,
}
BLOCK_ELEMENTS = 4_000_000  # resampled scores held in memory at once


class _Matrix:
    """A (runs, tasks) score matrix prepared for fast metrics of resampled copies."""

    def __init__(self, scores: np.ndarray):
        self.scores = np.asarray(scores, dtype=float)
        self.flat = self.scores.ravel()
        order = np.argsort(self.flat, kind="stable")
        self.sorted = self.flat[order]
        self.rank = np.empty(self.flat.size, dtype=np.int64)
        self.rank[order] = np.arange(self.flat.size)
        # scipy.stats.trim_mean(x, 0.25) keeps sorted positions [cut, size - cut).
        self.cut = int(0.25 * self.flat.size)

    def metric(self, name: str, index: np.ndarray) -> np.ndarray:
        """Metric `name` of each replicate; index (reps, runs, tasks) holds flat positions into the matrix."""
        if name == "iqm":
            return self._iqm(index)
        x = self.flat[index]
        if name == "mean":
            return x.mean(axis=1).mean(axis=1)
        if name == "median":
            return np.median(x.mean(axis=1), axis=1)
        if name == "optimality_gap":
            return 1 - np.minimum(x, 1).mean(axis=(1, 2))
        raise ValueError(f"unknown metric '{name}'; valid metrics: {', '.join(METRICS)}")

    def _iqm(self, index: np.ndarray) -> np.ndarray:
        """Trimmed mean of each replicate from how often it holds each sorted score (no sorting per replicate)."""
        reps, size = index.shape[0], self.flat.size
        positions = self.rank[index.reshape(reps, -1)] + (np.arange(reps) * size)[:, None]
        counts = np.bincount(positions.ravel(), minlength=reps * size).reshape(reps, size)
        above = np.cumsum(counts, axis=1)
        low, high = self.cut, size - self.cut
        weights = np.clip(above, low, high) - np.clip(above - counts, low, high)
        return weights @ self.sorted / (high - low)


def _resampled_blocks(shape: tuple[int, ...], reps: int, rng: np.random.RandomState) -> Iterator[np.ndarray]:
    """Stratified bootstrap replicates of a matrix of `shape`, as flat positions, a block at a time,
    in rliable's draw order."""
    n_runs, per_run = shape[0], int(np.prod(shape[1:]))
    block = max(1, BLOCK_ELEMENTS // (n_runs * per_run))
    strata = np.arange(per_run).reshape(shape[1:])
    for start in range(0, reps, block):
        size = min(block, reps - start)
        # One randint call for `size` replicates yields the same stream as `size` calls of
        # np.random.choice(n_runs, shape), rliable's StratifiedBootstrap.update_indices.
        index = rng.randint(0, n_runs, size=(size, *shape))
        index *= per_run
        index += strata
        yield index


def percentile_interval(values: np.ndarray, size: float = 0.95) -> np.ndarray:
    """arch's percentile interval: row 0 lower, row 1 upper."""
    alpha = (1 - size) / 2
    return np.percentile(values, [100 * alpha, 100 * (1 - alpha)], axis=0)


def bootstrap(scores: np.ndarray, names: list[str], reps: int, seed: int) -> dict[str, np.ndarray]:
    """Bootstrap distributions of several metrics of one score matrix: {name: (reps, ...)}."""
    matrix = _Matrix(scores)
    rng = np.random.RandomState(seed)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for index in _resampled_blocks(matrix.scores.shape, reps, rng):
        for name in names:
            parts[name].append(matrix.metric(name, index))
    return {name: np.concatenate(values) for name, values in parts.items()}


def interval_estimates(scores: np.ndarray, names: list[str] = METRICS, reps: int = 50_000, seed: int = 0,
                       size: float = 0.95) -> dict[str, tuple[float, float, float]]:
    """{metric: (point, lower, upper)} for a (runs, tasks) matrix, as rliable computes them."""
    distributions = bootstrap(scores, names, reps, seed)
    result = {}
    for name in names:
        lower, upper = percentile_interval(distributions[name], size)
        result[name] = (float(POINT[name](scores)), float(lower), float(upper))
    return result


def curve_estimates(scores: np.ndarray, name: str = "iqm", reps: int = 2_000, seed: int = 0,
                    size: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Sample-efficiency curve: metric per point of a (runs, tasks, points) array and its (2, points) CIs.

    As in rliable, runs are resampled within each task independently at each point."""
    scores = np.asarray(scores, dtype=float)
    n_runs, n_tasks, n_points = scores.shape
    matrices = [_Matrix(scores[..., i]) for i in range(n_points)]
    rng = np.random.RandomState(seed)
    values: list[np.ndarray] = []
    for index in _resampled_blocks(scores.shape, reps, rng):
        runs = index // (n_tasks * n_points)  # back from flat positions of (runs, tasks, points)
        values.append(np.stack([m.metric(name, runs[..., i] * n_tasks + np.arange(n_tasks))
                                for i, m in enumerate(matrices)], axis=1))
    points = np.array([POINT[name](m.scores) for m in matrices])
    return points, percentile_interval(np.concatenate(values), size)


def mean_interval(values: np.ndarray, reps: int, seed: int, size: float = 0.95) -> tuple[float, float, float]:
    """Mean of one task's runs and its bootstrap CI (degenerate with one run)."""
    values = np.asarray(values, dtype=float)
    point, lower, upper = interval_estimates(values[:, None], ["mean"], reps, seed, size)["mean"]
    return point, lower, upper


def difference_interval(new: np.ndarray, old: np.ndarray, name: str, reps: int, seed: int,
                        size: float = 0.95) -> tuple[float, float, float]:
    """metric(new) - metric(old) for two (runs, tasks) matrices of the same tasks, with an independent
    stratified bootstrap CI (each method's runs resampled within each task)."""
    new, old = np.asarray(new, dtype=float), np.asarray(old, dtype=float)
    a = bootstrap(new, [name], reps, seed)[name]
    b = bootstrap(old, [name], reps, seed + 1)[name]
    lower, upper = percentile_interval(a - b, size)
    return float(POINT[name](new) - POINT[name](old)), float(lower), float(upper)


def _improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) averaged over tasks for blocks x (reps, nx, tasks), y (reps, ny, tasks): the Mann-Whitney
    U statistic over nx * ny, as rliable.metrics.probability_of_improvement."""
    greater = (x[:, :, None, :] > y[:, None, :, :]).mean(axis=(1, 2))
    ties = (x[:, :, None, :] == y[:, None, :, :]).mean(axis=(1, 2))
    return (greater + 0.5 * ties).mean(axis=1)


def probability_of_improvement(x: np.ndarray, y: np.ndarray, reps: int = 2_000, seed: int = 0,
                               size: float = 0.95) -> tuple[float, float, float]:
    """P(X > Y) and its CI from rliable's StratifiedIndependentBootstrap (same draws)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    rng = np.random.RandomState(seed)
    per_block = max(1, BLOCK_ELEMENTS // (x.shape[0] * y.shape[0] * x.shape[1]))
    values = []
    for start in range(0, reps, per_block):
        size_ = min(per_block, reps - start)
        draws = [(rng.randint(0, x.shape[0], size=x.shape), rng.randint(0, y.shape[0], size=y.shape))
                 for _ in range(size_)]  # per replicate: x's indices, then y's, as rliable draws them
        tasks = np.arange(x.shape[1])
        xs = np.stack([x[i, tasks] for i, _ in draws])
        ys = np.stack([y[j, tasks] for _, j in draws])
        values.append(_improvement(xs, ys))
    lower, upper = percentile_interval(np.concatenate(values), size)
    return float(rly.probability_of_improvement(x, y)), float(lower), float(upper)


def performance_profile(scores: np.ndarray, taus: np.ndarray, reps: int = 2_000, seed: int = 0,
                        size: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Score distribution (fraction of run x task scores above each tau) and its (2, len(taus)) CIs."""
    scores = np.asarray(scores, dtype=float)
    profile = (scores.reshape(-1, 1) > taus).mean(axis=0)
    rng = np.random.RandomState(seed)
    values = []
    for index in _resampled_blocks(scores.shape, reps, rng):
        flat = np.sort(scores.ravel()[index.reshape(index.shape[0], -1)], axis=1)
        above = flat.shape[1] - np.stack([np.searchsorted(row, taus, side="right") for row in flat])
        values.append(above / flat.shape[1])
    return profile, percentile_interval(np.concatenate(values), size)
