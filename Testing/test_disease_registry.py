"""A fourth disease needs only its own code plus one registration: a toy disease run end to end.

The toy disease ("toy-logistic": one lesion label, FLAIR-only studies, logistic growth of the
lesion volume) is declared and registered here, in the test, the way a third party would do it
in its own package — nothing in the engine knows it. It then goes through study validation,
``hybridneuro run`` (its own pipeline, staged output and report), the model interface
(``make_model`` / ``fit`` / ``predict`` / ``save`` / ``load_model``) and the MRML bridge (its
label table with terminology). A test of the architecture checks that the shared layers import
no disease package.
"""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from HybridNeuroLib.cli import main
from HybridNeuroLib.diseases import BUILT_IN, Disease, disease, disease_names, register_disease, unregister_disease
from HybridNeuroLib.fit import Forecast
from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.hybrid.base import ForecastModel, load_model, make_model, register, unregister
from HybridNeuroLib.labels import Code, Label
from HybridNeuroLib.outputs import staged_output, written_files
from HybridNeuroLib.study import Study, StudyError, Timepoint, read_study, write_study

ENGINE = Path(__file__).resolve().parents[1] / "HybridNeuroLib"
LESION = Label(1, "lesion", (0.9, 0.4, 0.1), "lesion", Code("52988006", "Lesion"))


# -- the third party's code: a model, a pipeline, a declaration ------------------------------------
class LogisticVolumeModel(ForecastModel):
    """Whole-lesion volume V(t) = K / (1 + (K/V₀ − 1)·e^{−r (t − t₀)}), K = 4 × the largest observed."""

    name = "toy-logistic-volume"
    minimum_timepoints = 2

    def _fit(self, tissue, labels_by_day, *, progress, log) -> None:
        days = np.array([float(day) for day, _ in labels_by_day])
        volumes = np.array([lesion_ml(labels) for _, labels in labels_by_day])
        self.capacity_ml, self.first_day, self.first_ml = 4.0 * volumes.max(), days[0], volumes[0]
        log_odds = np.log(volumes / (self.capacity_ml - volumes))
        self.rate_per_day = float(np.polyfit(days - days[0], log_odds, 1)[0])  # logistic: log-odds linear in t
        last = labels_by_day[-1][1]
        self.grid = ImageGeometry.from_image(last)
        mask = sitk.GetArrayViewFromImage(last) > 0
        centre_kji = np.argwhere(mask).mean(axis=0)
        self.centre_lps_mm = (self.grid.ijk_to_lps() @ np.array([*centre_kji[::-1], 1.0]))[:3].tolist()

    def volume_ml(self, day: float) -> float:
        odds = (self.capacity_ml / self.first_ml - 1.0) * math.exp(-self.rate_per_day * (day - self.first_day))
        return self.capacity_ml / (1.0 + odds)

    def predict(self, days, *, grid=None, progress=False) -> Forecast:
        grid = grid or self.grid
        kji = np.indices(grid.shape_kji).reshape(3, -1)
        world = (grid.ijk_to_lps() @ np.vstack([kji[::-1], np.ones(kji.shape[1])]))[:3]
        distance = np.linalg.norm(world - np.array(self.centre_lps_mm)[:, None], axis=0).reshape(grid.shape_kji)
        labels, volumes = [], []
        for day in days:
            radius = (3.0 * self.volume_ml(day) * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
            labels.append(grid.image_from_array((distance <= radius).astype(np.uint8)))
            volumes.append({"day": float(day), "whole_ml": lesion_ml(labels[-1]), "core_ml": 0.0,
                            "whole_ml_range": [lesion_ml(labels[-1])] * 2, "kind": "predicted"})
        as_float = [sitk.Cast(image, sitk.sitkFloat32) for image in labels]
        return Forecast(tuple(float(d) for d in days), as_float, labels, as_float, volumes)

    def to_record(self) -> dict:
        return {"capacity_ml": self.capacity_ml, "rate_per_day": self.rate_per_day, "first_day": self.first_day,
                "first_ml": self.first_ml, "centre_lps_mm": self.centre_lps_mm, "grid": self.grid.to_dict()}

    @classmethod
    def from_record(cls, record: dict, tensors) -> LogisticVolumeModel:
        model = cls()
        model.capacity_ml, model.rate_per_day = record["capacity_ml"], record["rate_per_day"]
        model.first_day, model.first_ml, model.centre_lps_mm = (record["first_day"], record["first_ml"],
                                                                 record["centre_lps_mm"])
        model.grid = ImageGeometry.from_dict(record["grid"])
        return model


def lesion_ml(labels: sitk.Image) -> float:
    return float((sitk.GetArrayViewFromImage(labels) > 0).sum()) * float(np.prod(labels.GetSpacing())) / 1000.0


def run_toy(study_folder, out, settings=None, *, overwrite=False, progress=True, log=lambda message: None):
    """The toy disease's whole pipeline: read, fit, forecast, write — through the shared layers only."""
    study = read_study(study_folder)
    days = sorted(set(study.predict_days))
    with staged_output(out, inputs=[study_folder], overwrite=overwrite, command="run") as staging:
        model = make_model(TOY.default_model).fit(None, [(tp.day, tp.seg) for tp in study.timepoints])
        model.save(staging / "model")
        forecast = model.predict(days)
        for day, labels in zip(forecast.days, forecast.labels):
            sitk.WriteImage(labels, str(staging / f"seg_day{day:g}.nii.gz"))
        report = {"disease": TOY.name, "warnings": [], "volumes": forecast.volumes,
                  "files": sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())}
        (staging / "report.json").write_text(json.dumps(report))
    return ToyResult(Path(out).resolve(), report)


@dataclass(frozen=True)
class ToyResult:
    """What a disease's ``run`` returns (see :class:`HybridNeuroLib.diseases.Disease`)."""

    out: Path
    report: dict


TOY = Disease(name="toy-logistic", title="Toy logistic lesion", image_keys=("t2f",), labels=(LESION,),
              run=run_toy, default_model=LogisticVolumeModel.name, time_unit="days", state_kind="voxel field")


@pytest.fixture
def toy():
    """Register the toy disease and its model as a third party would; forget both afterwards."""
    register(LogisticVolumeModel)
    register_disease(TOY)
    yield TOY
    unregister_disease(TOY.name)
    unregister(LogisticVolumeModel.name)


def sphere_study(folder: Path, radii_mm=(4.0, 6.0), days=(0.0, 30.0), predict_days=(60.0, 90.0)) -> Path:
    grid = ImageGeometry(size=(24, 24, 24), spacing_mm=(1.0, 1.0, 1.0), origin_lps_mm=(-12.0, -12.0, -12.0),
                         direction_lps=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)))
    distance = np.linalg.norm(np.indices(grid.shape_kji) - 11.5, axis=0)
    timepoints = []
    for n, (day, radius) in enumerate(zip(days, radii_mm)):
        seg = grid.image_from_array((distance <= radius).astype(np.uint8))
        timepoints.append(Timepoint(f"tp{n}", day, {"t2f": sitk.Cast(seg, sitk.sitkFloat32) * 100.0}, seg))
    return write_study(Study("toy-01", "toy-logistic", tuple(timepoints), tuple(predict_days)), folder)


# -- the tests ---------------------------------------------------------------------------------------
def test_glioma_is_declared_with_its_keys_labels_unit_and_model():
    glioma = disease("glioma")
    assert glioma.image_keys == ("t1n", "t1c", "t2w", "t2f") and glioma.label_values == {0, 1, 2, 3}
    assert (glioma.time_unit, glioma.state_kind, glioma.default_model) == ("days", "voxel field", "physics")
    with pytest.raises(ValueError, match="unknown disease 'flu'.*glioma"):
        disease("flu")


def test_a_declaration_is_checked():
    with pytest.raises(ValueError, match="time_unit"):
        Disease("x", "X", ("t1n",), (LESION,), run=run_toy, default_model="physics", time_unit="weeks")
    with pytest.raises(ValueError, match="non-zero"):
        Disease("x", "X", ("t1n",), (Label(0, "bg", (0, 0, 0), "bg", LESION.snomed),), run=run_toy,
                default_model="physics")


def test_study_validation_follows_the_registered_disease(toy, tmp_path):
    study = read_study(sphere_study(tmp_path / "toy"))
    assert study.disease == "toy-logistic" and [tp.day for tp in study.timepoints] == [0.0, 30.0]
    bad = sphere_study(tmp_path / "bad")
    image = sitk.ReadImage(str(bad / "tp1" / "seg.nii.gz"))
    sitk.WriteImage(image * 2, str(bad / "tp1" / "seg.nii.gz"))  # label 2 exists for glioma, not for the toy
    (bad / "tp0" / "t1c.nii.gz").write_bytes((bad / "tp0" / "t2f.nii.gz").read_bytes())  # not a toy modality
    manifest = json.loads((bad / "study.json").read_text())
    (bad / "study.json").write_text(json.dumps(manifest | {"time_unit": "hours"}))
    with pytest.raises(StudyError) as caught:
        read_study(bad)
    problems = "\n".join(map(str, caught.value.problems))
    assert "unknown label values [2] (toy-logistic labels: 0 background, 1 lesion)" in problems
    assert "unknown image key 't1c' (known: t2f, seg)" in problems
    assert "study.json time_unit: 'toy-logistic' studies give times in 'days'" in problems


def test_an_unregistered_disease_is_refused_naming_the_known_ones(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "study.json").write_text(json.dumps({"format": "hybridneuro-study/1", "subject": "s",
                                                   "disease": "toy-logistic", "timepoints": []}))
    with pytest.raises(StudyError, match=r"disease: must be one of \['glioma'\]"):
        read_study(folder)


def test_hybridneuro_run_dispatches_on_the_study_disease(toy, tmp_path, capsys):
    study = sphere_study(tmp_path / "toy")
    out = tmp_path / "out"
    assert main(["run", str(study), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["disease"] == "toy-logistic" and [row["day"] for row in report["volumes"]] == [60.0, 90.0]
    volumes = [row["whole_ml"] for row in report["volumes"]]
    observed = [lesion_ml(tp.seg) for tp in read_study(study).timepoints]
    assert observed[1] < volumes[0] < volumes[1] < 4 * observed[1]  # logistic: growing, below capacity
    assert "seg_day60.nii.gz" in written_files(out)  # staged like every output, with its manifest
    printed = capsys.readouterr().out
    assert "day 60 (predicted): whole lesion" in printed and "scene.mrb" not in printed


def test_the_toy_model_goes_through_the_model_interface(toy, tmp_path):
    study = read_study(sphere_study(tmp_path / "toy"))
    model = make_model("toy-logistic-volume").fit(None, [(tp.day, tp.seg) for tp in study.timepoints])
    assert model.volume_ml(0.0) == pytest.approx(lesion_ml(study.timepoints[0].seg))  # exact at the first day
    assert model.volume_ml(30.0) == pytest.approx(lesion_ml(study.timepoints[1].seg))  # two points: exact fit
    model.save(tmp_path / "model")
    again = load_model(tmp_path / "model", expected="toy-logistic-volume")
    first, second = (m.predict([75.0]).labels[0] for m in (model, again))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(first), sitk.GetArrayFromImage(second))


def test_the_mrml_bridge_paints_the_toy_labels_with_their_terminology(toy, tmp_path, mrml):
    from HybridNeuroLib.mrml import image_to_volume, labels_to_segmentation
    from HybridNeuroLib.mrml.segmentations import segment_terminology

    tp = read_study(sphere_study(tmp_path / "toy")).timepoints[1]
    scan = image_to_volume(tp.images["t2f"], mrml.scene, "toy-01 t2f day 30")
    node = labels_to_segmentation(tp.seg, mrml.scene, "toy-01 lesion day 30", reference=scan,
                                  label_table=TOY.labels)
    segmentation = node.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 1
    segment = segmentation.GetNthSegment(0)
    assert segment.GetName() == "lesion" and "52988006" in segment_terminology(segment)


def _engine_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("HybridNeuroLib"):
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.startswith("HybridNeuroLib"))
    return names


SHARED = ["diseases.py", "runner.py", "outputs.py", "geometry.py", "metrics.py", "progress.py", "jobs.py", "device.py",
          "study", "mrml"]


def test_shared_layers_import_no_disease_package_and_diseases_import_no_other():
    packages = {f"HybridNeuroLib.{module.rsplit('.', 1)[-1]}" for module in BUILT_IN.values()}
    files = [p for name in SHARED for p in ([ENGINE / name] if name.endswith(".py") else (ENGINE / name).rglob("*.py"))]
    assert len(files) > 20
    offenders = {str(p.relative_to(ENGINE)): sorted(m for m in _engine_imports(p)
                                                     if any(m == pkg or m.startswith(pkg + ".") for pkg in packages))
                 for p in files}
    assert not {path: names for path, names in offenders.items() if names}
    for package in packages:  # a disease package imports no other disease package
        folder = ENGINE / package.split(".")[-1]
        others = packages - {package}
        for path in folder.rglob("*.py"):
            assert not [m for m in _engine_imports(path) if any(m.startswith(o) for o in others)], path
    assert set(disease_names()) >= set(BUILT_IN)
