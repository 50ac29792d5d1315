"""PREDICT-GBM radiotherapy targets: the iso-volumetric model target vs the 15 mm margin, with exact oracles."""

from __future__ import annotations

import json

import numpy as np
import pytest

from HybridNeuroLib.fit.target import compare_targets, coverage_fraction, iso_volumetric_target, standard_target
from HybridNeuroLib.geometry import ImageGeometry


def ball(shape, centre, radius_vox):
    k, j, i = np.indices(shape)
    return (k - centre[0]) ** 2 + (j - centre[1]) ** 2 + (i - centre[2]) ** 2 <= radius_vox ** 2


def rod_case():
    """A 1 mm rod (80 voxels): core 20–23; density falls to the right of the core, zero to its left."""
    labels = np.zeros((1, 1, 80), np.uint8)
    labels[0, 0, 20:24] = 1
    x = np.arange(80, dtype=float)
    density = np.where(x >= 20, np.exp(-(x - 20) / 10.0), 0.0).reshape(labels.shape)
    return labels, density, np.ones(labels.shape, bool)


def test_margin_is_the_core_grown_by_15_mm_in_world_units_clipped_to_the_domain():
    labels, _, domain = rod_case()
    standard = standard_target(labels, (1.0, 1.0, 1.0), domain)
    assert np.flatnonzero(standard[0, 0]).tolist() == list(range(5, 39))   # 20 − 15 … 23 + 15
    # 2 mm voxels: the same 15 mm is 7 voxels each side (7 × 2 = 14 ≤ 15 < 16)
    assert np.flatnonzero(standard_target(labels, (1.0, 1.0, 2.0), domain)[0, 0]).tolist() == list(range(13, 31))
    clipped = domain.copy()
    clipped[0, 0, :10] = False
    assert np.flatnonzero(standard_target(labels, (1.0, 1.0, 1.0), clipped)[0, 0]).tolist() == list(range(10, 39))


def test_model_target_covers_more_of_a_lesion_that_spreads_along_the_density():
    labels, density, domain = rod_case()
    standard = standard_target(labels, (1.0, 1.0, 1.0), domain)
    model = iso_volumetric_target(density, int(standard.sum()), domain, labels)
    # 34 voxels: the core and the 30 voxels right of it (the zero-density left side comes last)
    assert np.flatnonzero(model[0, 0]).tolist() == list(range(20, 54))
    later = np.zeros(labels.shape, bool)
    later[0, 0, 20:60] = True                                                 # 40 voxels
    assert coverage_fraction(standard, later) == 19 / 40                      # voxels 20 … 38
    assert coverage_fraction(model, later) == 34 / 40                         # voxels 20 … 53


def test_volumes_equal_and_the_model_target_holds_the_highest_density():
    rng = np.random.default_rng(5)
    shape = (30, 32, 28)
    labels = np.zeros(shape, np.uint8)
    labels[ball(shape, (15, 16, 14), 7)] = 2
    labels[ball(shape, (15, 16, 14), 3)] = 3
    domain = ball(shape, (15, 16, 12), 14)
    density = rng.random(shape).round(2)              # many exact ties
    spacing = (1.0, 1.2, 0.9)
    standard = standard_target(labels, spacing, domain, margin_mm=6.0)
    model = iso_volumetric_target(density, int(standard.sum()), domain, labels, spacing)
    assert model.sum() == standard.sum() > 0
    assert not (model & ~domain).any() and not (standard & ~domain).any()
    assert density[model].min() >= density[domain & ~model].max()


def test_constant_density_gives_back_the_margin_and_a_lesion_inside_is_fully_covered():
    shape = (24, 24, 24)
    labels = np.zeros(shape, np.uint8)
    labels[ball(shape, (12, 12, 12), 2)] = 1
    domain = np.ones(shape, bool)
    domain[:, :, :5] = False
    standard = standard_target(labels, (2.0, 2.0, 2.0), domain)
    model = iso_volumetric_target(np.full(shape, 0.3), int(standard.sum()), domain, labels, (2.0, 2.0, 2.0))
    assert np.array_equal(model, standard)
    inside = ball(shape, (12, 12, 12), 6) & domain                        # 12 mm around the centre
    assert coverage_fraction(standard, inside) == 1.0
    assert coverage_fraction(model, inside) == 1.0
    assert coverage_fraction(standard, ~standard & domain) == 0.0


def test_compare_targets_on_images_gives_a_json_summary():
    shape = (20, 20, 40)
    grid = ImageGeometry(shape[::-1], (2.0, 2.0, 2.0), (0.0, 0.0, 0.0), tuple(map(tuple, np.eye(3))))
    labels = np.zeros(shape, np.uint8)
    labels[ball(shape, (10, 10, 10), 3)] = 2
    labels[ball(shape, (10, 10, 10), 1)] = 3
    later = np.zeros(shape, np.uint8)
    later[ball(shape, (10, 10, 14), 5)] = 2                                 # no core in the later scan
    i = np.indices(shape)[2].astype(float)
    density = np.exp(-np.abs(i - 14) / 6.0)
    domain = np.ones(shape, bool)
    summary = compare_targets(grid.image_from_array(density.astype(np.float32)), grid.image_from_array(labels),
                              grid.image_from_array(later), domain, with_masks=True)
    masks = summary.pop("masks")
    json.dumps(summary)
    assert summary["target_volume_ml"] == pytest.approx(masks["standard"].sum() * 0.008)
    assert masks["model"].sum() == masks["standard"].sum()
    assert summary["standard"]["core_coverage"] is None and summary["model"]["core_coverage"] is None
    assert summary["standard_basis"] == "core"
    assert summary["standard"]["whole_coverage"] == coverage_fraction(masks["standard"], later > 0)
    assert summary["model"]["whole_coverage"] == coverage_fraction(masks["model"], later > 0)


def test_a_lesion_without_core_gets_the_margin_around_its_whole_tumour():
    labels, density, domain = rod_case()
    edema = np.where(labels > 0, 2, 0).astype(np.uint8)                 # the same lesion, non-enhancing
    whole = standard_target(edema, (1.0, 1.0, 1.0), domain, basis="whole")
    assert np.array_equal(whole, standard_target(labels, (1.0, 1.0, 1.0), domain))
    grid = ImageGeometry((80, 1, 1), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), tuple(map(tuple, np.eye(3))))
    summary = compare_targets(grid.image_from_array(density.astype(np.float32)), grid.image_from_array(edema),
                              grid.image_from_array(edema), domain)
    assert summary["standard_basis"] == "whole" and summary["standard"]["whole_coverage"] == 1.0


def test_bad_inputs_are_named():
    labels, density, domain = rod_case()
    with pytest.raises(ValueError, match="no tumour core"):
        standard_target(np.where(labels > 0, 2, 0), (1.0, 1.0, 1.0), domain)
    with pytest.raises(ValueError, match="later lesion is empty"):
        coverage_fraction(domain, np.zeros_like(domain))
    with pytest.raises(ValueError, match="NaN"):
        iso_volumetric_target(density * np.nan, 3, domain, labels)
    with pytest.raises(ValueError, match="voxels requested"):
        iso_volumetric_target(density, 81, domain, labels)
    grid = ImageGeometry((4, 4, 4), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), tuple(map(tuple, np.eye(3))))
    other = ImageGeometry((4, 4, 4), (2.0, 1.0, 1.0), (0.0, 0.0, 0.0), tuple(map(tuple, np.eye(3))))
    seg = np.zeros((4, 4, 4), np.uint8)
    seg[2, 2, 2] = 1
    with pytest.raises(ValueError, match="density is not on the planning labels' grid"):
        compare_targets(other.image_from_array(seg.astype(np.float32)), grid.image_from_array(seg),
                        grid.image_from_array(seg), np.ones((4, 4, 4), bool))
