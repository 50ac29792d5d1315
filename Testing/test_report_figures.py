"""Figures show the lesion where it is, and only there."""

import matplotlib.image
import numpy as np
import pytest
import SimpleITK as sitk

from conftest import make_oblique_image
from HybridNeuroLib.report.figures import forecast_overlay_figure, lesion_volumes_ml, volume_curve_figure


def _warm_pixels(path) -> np.ndarray:
    """Coloured pixels (heat map, outlines): the scan and background are grey, with R = G = B."""
    rgb = matplotlib.image.imread(path)[..., :3]
    return (rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.15


def _images(lesion: bool, shape=(7, 9, 11)):
    scan = make_oblique_image(shape)
    density = np.zeros(shape, np.float32)
    if lesion:
        density[2:5, 3:7, 4:8] = 0.9
    density_image = sitk.GetImageFromArray(density)
    density_image.CopyInformation(scan)
    labels = sitk.GetImageFromArray(np.where(density > 0.25, 2, 0).astype(np.uint8))
    labels.CopyInformation(scan)
    return scan, density_image, labels


def test_overlay_shows_the_lesion_and_nothing_without_one(tmp_path):
    with_lesion = forecast_overlay_figure(*_pack(_images(True)), tmp_path / "lesion.png")
    without = forecast_overlay_figure(*_pack(_images(False)), tmp_path / "none.png")
    assert _warm_pixels(with_lesion).sum() > 500
    assert _warm_pixels(without).sum() < 20  # title text only


def _pack(images):
    scan, density, labels = images
    return scan, [30], [density], [labels]


def test_overlay_rows_follow_days_and_lists_must_match(tmp_path):
    scan, density, labels = _images(True)
    one = matplotlib.image.imread(forecast_overlay_figure(scan, [1], [density], [labels], tmp_path / "1.png"))
    two = matplotlib.image.imread(forecast_overlay_figure(scan, [1, 2], [density] * 2, [labels] * 2,
                                                          tmp_path / "2.png"))
    assert two.shape[0] > 1.8 * one.shape[0]
    with pytest.raises(ValueError, match="as many"):
        forecast_overlay_figure(scan, [1, 2], [density], [labels], tmp_path / "x.png")


def test_lesion_volumes_in_millilitres():
    labels = sitk.GetImageFromArray(np.array([[[0, 1, 2, 2, 3, 3, 3]]], np.uint8))
    labels.SetSpacing((10.0, 10.0, 2.0))  # 200 mm³ = 0.2 mL per voxel
    volumes = lesion_volumes_ml(labels)
    assert volumes == pytest.approx({"whole lesion": 1.2, "necrotic core": 0.2, "edema": 0.4,
                                     "enhancing tumor": 0.6})


def test_volume_curve_is_written(tmp_path):
    path = volume_curve_figure([0, 30, 60], {"whole lesion": [1, 2, 4]}, tmp_path / "v.png")
    assert matplotlib.image.imread(path).shape[0] > 100


def test_scenario_figure_outlines_each_scenarios_lesion(tmp_path):
    from HybridNeuroLib.labels import BRATS_LABELS
    from HybridNeuroLib.report.scenario_figure import scenario_figure

    scan, _, labels = _images(True)
    empty = sitk.Image(labels)
    empty = sitk.Multiply(empty, 0)
    rows = {name: [{"day": 0, "whole_ml": 1.0, "cells_ml": 1.0}, {"day": 60, "whole_ml": ml, "cells_ml": ml}]
            for name, ml in (("untreated", 2.0), ("RT", 0.0))}
    edema = np.array(next(label.color_rgb for label in BRATS_LABELS if label.value == 2))

    def edema_pixels(images) -> int:
        rgb = matplotlib.image.imread(scenario_figure(scan, rows, images, tmp_path / "s.png"))[..., :3]
        return int((np.abs(rgb - edema).max(axis=-1) < 0.08).sum())

    assert edema_pixels({"untreated": labels, "RT": empty}) > 20
    assert edema_pixels({"untreated": empty, "RT": empty}) == 0
    with pytest.raises(ValueError, match="every scenario"):
        scenario_figure(scan, rows, {"surgery": labels}, tmp_path / "x.png")
