"""Treatment scenarios on a fitted patient: more treatment, fewer tumour cells."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from fit_cases import grown_lesion, phantom_tissue
from HybridNeuroLib.fit import FitSettings, fit_growth
from HybridNeuroLib.fit.scenarios import chemotherapy, combine, compare_scenarios, radiotherapy, resection


@pytest.fixture(scope="module")
def fitted():
    tissue = phantom_tissue(16, voxel_mm=4.0)
    labels, _ = grown_lesion(tissue, days=(0.0, 40.0))
    shifted = [(day + 10.0, image) for day, image in labels]  # study days 10, 50: plans use study days
    return tissue, labels, fit_growth(tissue, shifted, FitSettings(voxel_mm=4.0, iterations=10, members=0),
                                      progress=False)


def test_more_radiotherapy_dose_leaves_fewer_cells(fitted):
    tissue, _, fit = fitted
    plans = {f"{dose} Gy": radiotherapy(fit, 60.0, dose_per_fraction_gy=dose, fractions=10)
             for dose in (1.0, 2.0, 3.0)}
    rows = compare_scenarios(fit, tissue, {"untreated": None, **plans}, [70.0, 120.0])
    for n in range(2):
        cells = [rows[name][n]["cells_ml"] for name in ("untreated", "1.0 Gy", "2.0 Gy", "3.0 Gy")]
        assert all(a > b for a, b in zip(cells, cells[1:])), cells
        assert rows["3.0 Gy"][n]["whole_ml"] <= rows["untreated"][n]["whole_ml"]


def test_chemotherapy_resection_and_their_combination_reduce_cells(fitted):
    tissue, labels, fit = fitted
    mask = sitk.GetArrayFromImage(labels[1][1]) > 0
    scenarios = {"untreated": None, "chemo": chemotherapy(fit, 60.0, 102.0, 0.02),
                 "stronger chemo": chemotherapy(fit, 60.0, 102.0, 0.04),
                 "resection": resection(fit, 60.0, mask), "resection + chemo": None}
    scenarios["resection + chemo"] = combine(scenarios["resection"], scenarios["chemo"])
    rows = compare_scenarios(fit, tissue, scenarios, [120.0], with_images=True)
    cells = {name: rows[name][0]["cells_ml"] for name in rows}
    assert cells["untreated"] > cells["chemo"] > cells["stronger chemo"]
    assert cells["untreated"] > cells["resection"] > cells["resection + chemo"]
    assert cells["chemo"] > cells["resection + chemo"]
    assert rows["chemo"][0]["labels"].GetSize() == tissue.geometry.size


def test_treatment_before_the_first_timepoint_is_refused(fitted):
    _, _, fit = fitted
    with pytest.raises(ValueError, match="before the fit's first timepoint"):
        radiotherapy(fit, 5.0)
    assert np.isclose(radiotherapy(fit, 60.0).radiotherapy[0].days[0], 50.0)  # solver days from day 10
