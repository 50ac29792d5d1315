"""The forecasting-model interface: registry, checkpoints (round trip and refusals), cohort split."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

from HybridNeuroLib.fit import FitSettings
from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.hybrid import CheckpointError, load_model, make_model, model_names
from HybridNeuroLib.hybrid.cohort import evaluation_seeds, training_seeds
from HybridNeuroLib.physics import TissueMaps

FAST = FitSettings(voxel_mm=4.0, starts=1, iterations=4, members=1, member_iterations=2)


def small_patient():
    grid = ImageGeometry((14, 14, 14), (4.0, 4.0, 4.0), (0.0, 0.0, 0.0), tuple(map(tuple, np.eye(3))))
    wm = np.ones(grid.shape_kji, np.float32)
    tissue = TissueMaps(gm=0 * wm, wm=wm, csf=0 * wm, geometry=grid)
    early, late = (np.zeros(grid.shape_kji, np.uint8) for _ in range(2))
    early[6:9, 6:9, 6:9], late[5:10, 5:10, 5:10] = 2, 2
    return tissue, [(0.0, grid.image_from_array(early)), (40.0, grid.image_from_array(late))]


@pytest.fixture(scope="module")
def fitted_physics(tmp_path_factory):
    tissue, labels = small_patient()
    model = make_model("physics", settings=FAST).fit(tissue, labels, progress=False)
    folder = tmp_path_factory.mktemp("physics")
    model.save(folder)
    return model, folder


def test_every_listed_model_is_registered_and_unknown_names_are_refused():
    from HybridNeuroLib.hybrid import model_class

    for name in model_names():
        assert model_class(name).name == name
    with pytest.raises(ValueError, match=r"unknown model 'pysics'; choose one of: physics, parallel"):
        make_model("pysics")


def test_physics_model_round_trip_reproduces_the_forecast_bit_for_bit(fitted_physics):
    model, folder = fitted_physics
    record = json.loads((folder / "model.json").read_text())
    assert record["format"] == "hybridneuro-model/1" and record["model"] == "physics" and record["tensors"]
    loaded = load_model(folder)
    first, again = model.predict([40, 90]), loaded.predict([40, 90])
    for a, b in zip(first.density + first.probability, again.density + again.probability):
        np.testing.assert_array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))
    assert first.volumes == again.volumes and first.volumes[1]["whole_ml"] > first.volumes[0]["whole_ml"]


def test_damaged_or_foreign_checkpoints_are_refused_with_the_reason(fitted_physics, tmp_path):
    _, folder = fitted_physics
    with pytest.raises(CheckpointError, match="holds a 'physics' model, not the requested 'parallel'"):
        load_model(folder, expected="parallel")
    with pytest.raises(FileNotFoundError, match="no model.json"):
        load_model(tmp_path)

    def variant(name, edit=None, tensors=b"keep"):
        target = tmp_path / name
        target.mkdir()
        record = json.loads((folder / "model.json").read_text())
        if edit:
            edit(record)
        (target / "model.json").write_text(json.dumps(record))
        if tensors == b"keep":
            (target / "tensors.pt").write_bytes((folder / "tensors.pt").read_bytes())
        elif tensors is not None:
            (target / "tensors.pt").write_bytes(tensors)
        return target

    with pytest.raises(CheckpointError, match="model version 99, .* reads version 1; refit"):
        load_model(variant("version", lambda r: r.update(model_version=99)))
    with pytest.raises(CheckpointError, match="format 'other/1'"):
        load_model(variant("format", lambda r: r.update(format="other/1")))
    with pytest.raises(CheckpointError, match="tensors.pt is missing"):
        load_model(variant("missing", tensors=None))
    with pytest.raises(CheckpointError, match="cannot be read as tensors"):
        load_model(variant("damaged", tensors=b"not a zip file"))
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / "model.json").write_text("{ truncated")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_model(tmp_path / "json")


def test_models_needing_two_timepoints_say_so_and_physics_accepts_one():
    tissue, labels = small_patient()
    with pytest.raises(ValueError, match=r"model 'series' needs at least 2 timepoints .* got 1 \(days 0\)"):
        make_model("series").fit(tissue, labels[:1], progress=False)
    with pytest.warns(UserWarning, match="not identifiable"):
        model = make_model("physics", settings=FAST).fit(tissue, labels[:1], progress=False)
    assert model.predict([40]).volumes[0]["whole_ml"] > 0


def test_training_and_evaluation_cohorts_never_share_a_subject():
    assert not set(training_seeds(64)) & set(evaluation_seeds(64))
    assert evaluation_seeds(5) == evaluation_seeds(20)[:5]   # growing the cohort keeps its subjects


@pytest.mark.parametrize("name", ["physics", "series", "neural-ode", "parallel", "solver-in-the-loop"])
def test_every_model_refuses_lesions_outside_the_tissue_grid_naming_the_day(name):
    tissue, labels = small_patient()
    elsewhere = ImageGeometry((14, 14, 14), (4.0, 4.0, 4.0), (500.0, 0.0, 0.0), tuple(map(tuple, np.eye(3))))
    moved = [(day, elsewhere.image_from_array(sitk.GetArrayFromImage(image))) for day, image in labels]
    with pytest.raises(ValueError, match="lesion labels of day 0: the lesion lies outside the tissue maps' grid"):
        make_model(name).fit(tissue, moved, progress=False)
