"""The Yang & Lerch set comparison: distances, kernel densities, overlap and divergence."""

from __future__ import annotations

import math

import numpy as np
import pytest

from midilm.evaluate.compare import (
    compare_feature,
    inter_set_distances,
    intra_set_distances,
    kde_kl_divergence,
    kl_divergence,
    overlap_area,
)


def test_intra_and_inter_set_distances():
    assert intra_set_distances(np.array([[0.0], [3.0], [4.0]])).tolist() == [3.0, 4.0, 1.0]
    assert intra_set_distances(np.array([[0.0, 0.0], [3.0, 4.0]])).tolist() == [5.0]
    assert inter_set_distances(np.array([[0.0], [1.0]]), np.array([[3.0], [5.0]])).tolist() == [3.0, 5.0, 2.0, 4.0]


def test_kl_divergence_of_known_histograms():
    assert kl_divergence([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3), abs=1e-15)
    assert kl_divergence([1, 3], [1, 3]) == 0.0  # normalised first
    assert kl_divergence([0.0, 1.0], [0.5, 0.5]) == pytest.approx(math.log(2))
    assert kl_divergence([0.5, 0.5], [1.0, 0.0]) == math.inf


def test_identical_samples_overlap_fully_and_diverge_not_at_all():
    x = np.random.default_rng(0).normal(size=200)
    assert overlap_area(x, x) == pytest.approx(1.0, abs=1e-12)
    assert kde_kl_divergence(x, x) == pytest.approx(0.0, abs=1e-12)
    assert overlap_area(np.zeros(5), np.zeros(9)) == pytest.approx(1.0, abs=1e-12)


def test_far_apart_samples_do_not_overlap():
    assert overlap_area(np.zeros(10), np.full(10, 100.0)) == pytest.approx(0.0, abs=1e-9)
    assert kde_kl_divergence(np.zeros(10), np.full(10, 100.0)) > 20


def test_overlap_of_two_unit_normals_one_apart():
    # two unit-variance normals whose means differ by 1 share 2 * Phi(-1/2) = 0.617 of their area
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.0, 1.0, 4000), rng.normal(1.0, 1.0, 4000)
    assert overlap_area(a, b) == pytest.approx(2 * 0.5 * math.erfc(0.5 / math.sqrt(2)), abs=0.03)


def test_compare_feature_of_a_set_with_itself_treats_both_sides_alike():
    points = np.random.default_rng(2).normal(size=(12, 3))
    out = compare_feature(points, points.copy())
    assert out["generated_intra"] == out["reference_intra"]
    assert out["generated_kl"] == out["reference_kl"] and out["generated_oa"] == out["reference_oa"]
    assert out["generated_pieces"] == out["reference_pieces"] == 12
    np.testing.assert_allclose(out["generated_mean"], points.mean(axis=0))


def test_compare_feature_drops_undefined_pieces_and_needs_two_per_set():
    reference = np.array([[1.0], [2.0], [np.nan]])
    assert compare_feature(np.array([[1.0], [3.0]]), reference)["reference_pieces"] == 2
    skipped = compare_feature(np.array([[1.0], [np.nan]]), reference)
    assert skipped["generated_pieces"] == 1 and "skipped" in skipped
