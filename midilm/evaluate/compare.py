"""Comparing two sets of pieces feature by feature, after Yang & Lerch (2020).

For one feature, every piece is a point; the *intra-set* distances are the
Euclidean distances between all pairs of pieces of one set, the *inter-set*
distances those between every piece of one set and every piece of the other.
Each list of distances is smoothed into a density with a Gaussian kernel
density estimate; a generated set that resembles the reference set has an
intra-set density that overlaps the inter-set density (overlapping area near 1,
Kullback-Leibler divergence near 0), just as the reference set's own does.
"""

from __future__ import annotations

import math

import numpy as np

GRID_POINTS = 1024
"""Points of the grid on which densities are evaluated and integrated."""
GRID_MARGIN_BANDWIDTHS = 4.0
"""The grid extends this many kernel bandwidths past the data, so the tails' mass is kept."""
DENSITY_FLOOR = 1e-12
"""Smallest probability of a grid cell in the KL divergence, so a density whose
tail underflows to zero gives a large finite divergence rather than infinity."""
CHUNK = 4096


def intra_set_distances(points: np.ndarray) -> np.ndarray:
    """Distances between every pair of distinct pieces ``[n, d]``: n(n-1)/2 values."""
    points = np.asarray(points, dtype=np.float64)
    i, j = np.triu_indices(len(points), k=1)
    return np.linalg.norm(points[i] - points[j], axis=-1)


def inter_set_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distances between every piece of ``a`` and every piece of ``b``: len(a) * len(b) values."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1).reshape(-1)


def bandwidth(samples: np.ndarray) -> float:
    """Scott's rule for a 1-D Gaussian kernel, ``std * n ** (-1/5)``; a set of
    equal values gets a small bandwidth on the scale of the values instead of 0."""
    std = float(np.std(samples, ddof=1)) if len(samples) > 1 else 0.0
    if std > 0:
        return std * len(samples) ** (-1 / 5)
    return 1e-3 * max(float(np.abs(samples).max()) if len(samples) else 0.0, 1.0)


def kde(samples: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Gaussian kernel density estimate of ``samples`` evaluated at an evenly
    spaced ``grid``; the bandwidth is at least two grid steps, so a narrow
    kernel cannot fall between grid points."""
    samples = np.asarray(samples, dtype=np.float64)
    h = max(bandwidth(samples), 2 * float(grid[1] - grid[0]))
    density = np.zeros(len(grid))
    for start in range(0, len(samples), CHUNK):
        z = (grid[:, None] - samples[None, start : start + CHUNK]) / h
        density += np.exp(-0.5 * z * z).sum(axis=1)
    return density / (len(samples) * h * math.sqrt(2 * math.pi))


def shared_grid(*sample_sets: np.ndarray) -> np.ndarray:
    """One grid covering every set plus its kernels' tails."""
    margin = GRID_MARGIN_BANDWIDTHS * max(bandwidth(s) for s in sample_sets)
    low = min(float(np.min(s)) for s in sample_sets) - margin
    high = max(float(np.max(s)) for s in sample_sets) + margin
    return np.linspace(low, high, GRID_POINTS)


def grid_probabilities(samples: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The density of ``samples`` as probabilities of the grid's cells (summing to 1)."""
    density = kde(samples, grid)
    return density / density.sum()


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) in nats of two discrete distributions (normalised here);
    cells where p is 0 add nothing, cells where only q is 0 make it infinite."""
    p = np.asarray(p, dtype=np.float64) / np.sum(p)
    q = np.asarray(q, dtype=np.float64) / np.sum(q)
    support = p > 0
    if np.any(q[support] == 0):
        return math.inf
    return max(0.0, float(np.sum(p[support] * np.log(p[support] / q[support]))))  # >= 0 up to rounding


def overlap_area(a: np.ndarray, b: np.ndarray) -> float:
    """Area shared by the kernel density estimates of two samples (1 = identical, 0 = disjoint)."""
    grid = shared_grid(a, b)
    return float(np.minimum(grid_probabilities(a, grid), grid_probabilities(b, grid)).sum())


def kde_kl_divergence(a: np.ndarray, b: np.ndarray) -> float:
    """KL divergence from the kernel density estimate of ``b`` to that of ``a``
    (KL(a || b)), on a shared grid, cells floored at :data:`DENSITY_FLOOR`."""
    grid = shared_grid(a, b)
    p = np.maximum(grid_probabilities(a, grid), DENSITY_FLOOR)
    q = np.maximum(grid_probabilities(b, grid), DENSITY_FLOOR)
    return kl_divergence(p, q)


def _summary(distances: np.ndarray) -> dict[str, float]:
    return {"mean": float(distances.mean()), "std": float(distances.std())}


def compare_feature(generated: np.ndarray, reference: np.ndarray) -> dict[str, object]:
    """The Yang & Lerch comparison of one feature between two sets of pieces
    (rows; pieces whose feature is undefined are left out). Needs two pieces per set."""
    generated = generated[~np.isnan(generated).any(axis=1)]
    reference = reference[~np.isnan(reference).any(axis=1)]
    out: dict[str, object] = {"generated_pieces": len(generated), "reference_pieces": len(reference)}
    if len(generated) < 2 or len(reference) < 2:
        out["skipped"] = "needs at least two pieces with this feature in each set"
        return out
    intra_generated = intra_set_distances(generated)
    intra_reference = intra_set_distances(reference)
    inter = inter_set_distances(generated, reference)
    out.update(
        generated_mean=generated.mean(axis=0).tolist(),
        reference_mean=reference.mean(axis=0).tolist(),
        generated_intra=_summary(intra_generated),
        reference_intra=_summary(intra_reference),
        inter=_summary(inter),
        generated_kl=kde_kl_divergence(intra_generated, inter),
        generated_oa=overlap_area(intra_generated, inter),
        reference_kl=kde_kl_divergence(intra_reference, inter),
        reference_oa=overlap_area(intra_reference, inter),
    )
    return out


def compare_sets(generated: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict[str, dict[str, object]]:
    """:func:`compare_feature` for every feature of two :func:`~midilm.evaluate.features.piece_features` results."""
    return {name: compare_feature(generated[name], reference[name]) for name in generated}
