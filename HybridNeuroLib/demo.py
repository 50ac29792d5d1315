"""The main job (``make demo``): glioma growth forecast on the embedded sample case.

    >>> import tempfile
    >>> from HybridNeuroLib.demo import DemoSettings, run_demo
    >>> result = run_demo(tempfile.mkdtemp(), DemoSettings(sample_voxel_mm=4), progress=False)
    >>> [row["day"] for row in result.rows]
    [0.0, 60.0, 120.0, 180.0, 240.0]
    >>> result.rows[-1]["predicted_ml"] > result.rows[1]["predicted_ml"] > 0
    True

What it does, step by step:

1. takes the embedded sample case (a synthetic glioma patient on real SRI24 anatomy,
   :mod:`HybridNeuroLib.synth.sample`; generated on first use, then cached) and reads it as
   any study folder: scans and lesion labels at days 0, 60, 120, tissue maps;
2. seeds the Fisher–Kolmogorov model at the day-0 lesion (centre and equivalent-sphere
   radius) with *population* parameters from the literature (D_w, ρ below);
3. solves it to every observed day and to the study's ``predict_days``;
4. compares the predicted whole lesion with the observed one (Dice, volumes) and, because the
   sample is synthetic, with the ground truth at the future days;
5. writes per-day density and label images, figures, a JSON report and a Slicer scene.

It is an *uncalibrated* forecast: nothing is fitted to this patient yet (personalisation
comes with ``hybridneuro fit``), so its Dice scores are the baseline a fit must beat.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import SimpleITK as sitk

from HybridNeuroLib import __version__
from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.metrics import dice
from HybridNeuroLib.outputs import day_image_paths, prepare_output_folder, write_image
from HybridNeuroLib.physics import GrowthParameters, ImagingThresholds, Seed, TissueMaps, simulate
from HybridNeuroLib.report.figures import forecast_overlay_figure, lesion_volumes_ml, volume_curve_figure
from HybridNeuroLib.study import read_study

REPORT_NAME, OVERLAY_FIGURE, VOLUME_FIGURE, SCENE_NAME = ("report.json", "forecast_overlay.png",
                                                          "lesion_volume.png", "hybridneuro-demo.mrb")


@dataclass(frozen=True)
class DemoSettings:
    """Population parameters (mid-range of the literature) and the sample's grid; units in the names."""

    dw_mm2_per_day: float = 0.3
    rho_per_day: float = 0.03
    sample_voxel_mm: int = 2  # 2 = the embedded sample case; 4 = a coarse copy for quick checks


@dataclass
class DemoResult:
    out: Path
    files: list[Path]
    rows: list[dict]  # one per day: day, kind (observed/predicted), volumes (mL), Dice
    report: dict = field(default_factory=dict)


def lesion_seed(labels: sitk.Image, visible_from: float = ImagingThresholds().edema_flair) -> Seed:
    """A seed at the lesion's centre (RAS mm) whose visible part (u ≥ ``visible_from``) is a sphere of the lesion's volume.

    The seed profile is u = 2^(−r²/R²), visible up to r = R·√log₂(1/θ).
    """
    geometry = ImageGeometry.from_image(labels)
    voxels_kji = np.argwhere(sitk.GetArrayViewFromImage(labels) > 0)
    if not len(voxels_kji):
        raise ValueError("the first timepoint has no lesion to seed the model from")
    centre_ijk = voxels_kji.mean(axis=0)[::-1]
    centre_ras = geometry.ijk_to_ras() @ np.append(centre_ijk, 1.0)
    visible_radius_mm = (3.0 * len(voxels_kji) * geometry.voxel_volume_mm3 / (4.0 * math.pi)) ** (1.0 / 3.0)
    return Seed(tuple(float(v) for v in centre_ras[:3]), visible_radius_mm / math.sqrt(math.log2(1.0 / visible_from)))


def _sample_study_folder(voxel_mm: int) -> Path:
    from HybridNeuroLib.synth.sample import sample_case

    if voxel_mm == 2:
        return sample_case()
    # a coarse variant for tests and doctests, cached beside the real one
    from HybridNeuroLib.synth import generator, sample

    folder = sample.sample_case_folder().with_name(f"{sample.sample_case_folder().name}-{voxel_mm}mm")
    if not (folder / "study" / "study.json").is_file():
        generator.generate_subject(sample.SAMPLE_SEED, folder, days=sample.SAMPLE_DAYS,
                                   predict_days=sample.SAMPLE_PREDICT_DAYS, voxel_mm=voxel_mm,
                                   parameters=sample.SAMPLE_PARAMETERS, overwrite=True)
    return folder / "study"


def run_demo(out, settings: DemoSettings = DemoSettings(), *, overwrite: bool = False, progress: bool = True,
             log: Callable[[str], None] = lambda message: None) -> DemoResult:
    """Run the demo into folder ``out`` (refuses to replace earlier results unless ``overwrite``)."""
    started = time.perf_counter()
    log("preparing the embedded sample case (generated once, then cached)")
    study_folder = _sample_study_folder(settings.sample_voxel_mm)
    study = read_study(study_folder)
    observed = {tp.day: tp.seg for tp in study.timepoints if tp.seg is not None}
    days = tuple(sorted(set(observed) | set(study.predict_days)))

    out = Path(out)
    planned = [out / name for name in (REPORT_NAME, OVERLAY_FIGURE, VOLUME_FIGURE, SCENE_NAME)]
    planned += [path for day in days for path in day_image_paths(out, day)]
    out = prepare_output_folder(out, planned, inputs=[study_folder], overwrite=overwrite)

    tissue = TissueMaps.from_images(study.tissue["gm"], study.tissue["wm"], study.tissue["csf"])
    first = study.timepoints[0]
    seed = lesion_seed(first.seg)
    parameters = GrowthParameters(settings.dw_mm2_per_day, settings.rho_per_day)
    log(f"{study.subject}: seeding at the day-{first.day:g} lesion (RAS "
        f"{', '.join(f'{v:.1f}' for v in seed.centre_ras_mm)} mm, radius {seed.radius_mm:.1f} mm); "
        f"population parameters D_w = {parameters.dw_mm2_per_day} mm²/day, ρ = {parameters.rho_per_day}/day")
    result = simulate(tissue, seed, parameters, [day - first.day for day in days], progress=progress)

    truth = _truth_labels(study_folder, study.predict_days)
    rows, files = [], []
    for day, density, labels in zip(days, result.density, result.labels):
        density_path, labels_path = day_image_paths(out, day)
        files += [write_image(density, density_path), write_image(labels, labels_path)]
        predicted = sitk.GetArrayViewFromImage(labels) > 0
        row = {"day": day, "kind": "observed" if day in observed else "predicted",
               "predicted_ml": lesion_volumes_ml(labels)["whole lesion"]}
        reference = observed.get(day, truth.get(day))
        if reference is not None:
            row["reference"] = "observed" if day in observed else "ground truth (synthetic sample)"
            row["reference_ml"] = lesion_volumes_ml(reference)["whole lesion"]
            row["dice_whole_lesion"] = round(dice(predicted, sitk.GetArrayViewFromImage(reference) > 0), 4)
        rows.append(row)

    scan = study.timepoints[-1].images.get("t1c") or study.timepoints[-1].reference_image
    files.append(forecast_overlay_figure(
        scan, days, result.density, result.labels, out / OVERLAY_FIGURE,
        reference=[observed.get(day, truth.get(day)) for day in days],
        title=f"{study.subject}: forecast (colours) vs observed/true lesion (dashed cyan)"))
    files.append(volume_curve_figure(
        days, {"forecast": [row["predicted_ml"] for row in rows]}, out / VOLUME_FIGURE,
        observed={row["reference"]: ([r["day"] for r in rows if r.get("reference") == row["reference"]],
                                     [r["reference_ml"] for r in rows if r.get("reference") == row["reference"]])
                  for row in rows if "reference" in row},
        title=f"{study.subject}: whole-lesion volume"))
    files.append(_write_scene(out / SCENE_NAME, study, scan, days, result.density, result.labels, overwrite))

    report = {
        "software": {"name": "hybridneuro", "version": __version__},
        "job": "demo: uncalibrated Fisher–Kolmogorov forecast on the embedded sample case (no fit)",
        "study": {"folder": str(study_folder), "subject": study.subject,
                  "observed_days": sorted(observed), "predict_days": list(study.predict_days)},
        "settings": asdict(settings), "seed": seed.to_dict(),
        "simulation": result.report(), "days": rows,
        "files": [path.name for path in files] + [REPORT_NAME],
        "wall_time_s": round(time.perf_counter() - started, 2),
    }
    (out / REPORT_NAME).write_text(json.dumps(report, indent=2) + "\n")
    files.append(out / REPORT_NAME)
    return DemoResult(out, files, rows, report)


def _truth_labels(study_folder: Path, days) -> dict[float, sitk.Image]:
    """Ground-truth labels of a synthetic subject (``truth/day-<d>/labels.nii.gz`` beside the study), if any."""
    truth = {}
    for day in days:
        path = study_folder.parent / "truth" / f"day-{day:g}" / "labels.nii.gz"
        if path.is_file():
            truth[float(day)] = sitk.ReadImage(str(path))
    return truth


def _write_scene(path: Path, study, scan, days, density, labels, overwrite: bool) -> Path:
    # the MRML bridge is imported here: the rest of the demo needs no Slicer libraries
    from HybridNeuroLib.mrml import create_headless_scene, labels_to_segmentation, save_scene_bundle
    from HybridNeuroLib.mrml.forecast import add_forecast

    context = create_headless_scene()
    nodes = add_forecast(context.scene, study.subject, scan, days, density, labels)
    for tp in study.timepoints:
        if tp.seg is not None:
            labels_to_segmentation(tp.seg, context.scene, f"{study.subject} observed lesion day {tp.day:g}",
                                   reference=nodes.scan)
    return save_scene_bundle(context.scene, path, overwrite=overwrite)
