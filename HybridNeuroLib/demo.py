"""The main job (``make demo``): personalised glioma forecast on the embedded sample case.

    >>> import tempfile
    >>> from HybridNeuroLib.demo import QUICK_DEMO, run_demo
    >>> result = run_demo(tempfile.mkdtemp(), QUICK_DEMO, progress=False)
    >>> [row["day"] for row in result.rows]
    [0.0, 60.0, 120.0, 180.0, 240.0]
    >>> result.rows[-1]["fitted_ml"] > result.rows[1]["fitted_ml"] > 0
    True

What it does, step by step:

1. takes the embedded sample case (a synthetic glioma patient on real SRI24 anatomy,
   :mod:`HybridNeuroLib.synth.sample`; generated on first use, then cached) and reads it as
   any study folder: scans and lesion labels at days 0, 60, 120, tissue maps;
2. *population* forecast (the baseline): seeds the Fisher–Kolmogorov model at the day-0
   lesion (centre, visible volume) with literature-average D_w and ρ;
3. *personalised* forecast: fits D_w, ρ and the seed to the observed lesions
   (:func:`HybridNeuroLib.fit.fit_study`, with an ensemble for intervals) and predicts;
4. scores both against the observed lesions and, because the sample is synthetic, against
   the ground truth at the future days (whole-lesion Dice and volumes);
5. writes per-day density, label and probability images of the personalised forecast,
   the fit (``fit/params.json``), figures, a JSON report and a Slicer scene.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import SimpleITK as sitk

from HybridNeuroLib import __version__
from HybridNeuroLib.fit import FitSettings, fit_study, predict
from HybridNeuroLib.fit.study_fit import study_grid
from HybridNeuroLib.metrics import dice
from HybridNeuroLib.outputs import check_output_folder, day_image_paths, probability_path, staged_output, write_image
from HybridNeuroLib.physics import GrowthParameters, TissueMaps, simulate
from HybridNeuroLib.physics.initial import lesion_seed
from HybridNeuroLib.report.figures import forecast_overlay_figure, lesion_volumes_ml, volume_curve_figure
from HybridNeuroLib.report.scene import write_forecast_scene
from HybridNeuroLib.study import read_study
from HybridNeuroLib.study.images import read_image

REPORT_NAME, OVERLAY_FIGURE, VOLUME_FIGURE, SCENE_NAME = ("report.json", "forecast_overlay.png",
                                                          "lesion_volume.png", "hybridneuro-demo.mrb")


@dataclass(frozen=True)
class DemoSettings:
    """Population parameters (mid-range of the literature), the sample's grid and the fit; units in the names."""

    dw_mm2_per_day: float = 0.3
    rho_per_day: float = 0.03
    sample_voxel_mm: int = 2  # 2 = the embedded sample case; 4 = a coarse copy for quick checks
    fit: FitSettings = FitSettings()


QUICK_DEMO = DemoSettings(sample_voxel_mm=4, fit=FitSettings(voxel_mm=4.0, starts=1, iterations=15, members=2,
                                                              member_iterations=5))
"""A coarse, quick variant for tests and examples (4 mm, short fit)."""


@dataclass
class DemoResult:
    out: Path
    files: list[Path]
    rows: list[dict]  # one per day: day, kind (observed/predicted), volumes (mL), Dice
    report: dict = field(default_factory=dict)


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
    check_output_folder(out, overwrite=overwrite)  # before any work (the sample case is checked against it below)
    log("preparing the embedded sample case (generated once, then cached)")
    study_folder = _sample_study_folder(settings.sample_voxel_mm)
    study = read_study(study_folder)
    observed = {tp.day: tp.seg for tp in study.timepoints if tp.seg is not None}
    days = tuple(sorted(set(observed) | set(study.predict_days)))

    final = Path(out).expanduser().resolve()
    with staged_output(final, inputs=[study_folder], overwrite=overwrite, command="demo") as out:
        tissue = TissueMaps.from_images(study.tissue["gm"], study.tissue["wm"], study.tissue["csf"])
        first = study.timepoints[0]
        seed = lesion_seed(first.seg)
        parameters = GrowthParameters(settings.dw_mm2_per_day, settings.rho_per_day)
        log(f"{study.subject}: population forecast from the day-{first.day:g} lesion (RAS "
            f"{', '.join(f'{v:.1f}' for v in seed.centre_ras_mm)} mm), D_w = {parameters.dw_mm2_per_day} mm²/day, "
            f"ρ = {parameters.rho_per_day}/day")
        population = simulate(tissue, seed, parameters, [day - first.day for day in days], progress=progress)

        log(f"{study.subject}: fitting D_w, ρ and the seed to the lesions of days "
            f"{', '.join(f'{d:g}' for d in sorted(observed))}")
        fit = fit_study(study, settings.fit, progress=progress, log=log)
        best = fit.best
        log(f"fitted D_w = {best.dw_mm2_per_day:.3g} mm²/day, ρ = {best.rho_per_day:.3g}/day")
        forecast = predict(fit, tissue, days, grid=study_grid(study), progress=False)

        truth = _truth_labels(study_folder, study.predict_days)
        rows, files = [], []
        for n, day in enumerate(days):
            density_path, labels_path = day_image_paths(out, day)
            files += [write_image(forecast.density[n], density_path), write_image(forecast.labels[n], labels_path),
                      write_image(forecast.probability[n], probability_path(out, day))]
            row = {"day": day, "kind": "observed" if day in observed else "predicted",
                   "population_ml": lesion_volumes_ml(population.labels[n])["whole lesion"],
                   "fitted_ml": forecast.volumes[n]["whole_ml"],
                   "fitted_ml_range": forecast.volumes[n]["whole_ml_range"]}
            reference = observed.get(day, truth.get(day))
            if reference is not None:
                visible = sitk.GetArrayViewFromImage(reference) > 0
                row["reference"] = "observed" if day in observed else "ground truth (synthetic sample)"
                row["reference_ml"] = lesion_volumes_ml(reference)["whole lesion"]
                row["dice_population"] = round(dice(sitk.GetArrayViewFromImage(population.labels[n]) > 0, visible), 4)
                row["dice_fitted"] = round(dice(sitk.GetArrayViewFromImage(forecast.labels[n]) > 0, visible), 4)
            rows.append(row)
        (out / "fit").mkdir(exist_ok=True)
        files.append(fit.save(out / "fit"))

        scan = study.timepoints[-1].images.get("t1c") or study.timepoints[-1].reference_image
        files.append(forecast_overlay_figure(
            scan, days, forecast.density, forecast.labels, out / OVERLAY_FIGURE,
            reference=[observed.get(day, truth.get(day)) for day in days],
            title=f"{study.subject}: personalised forecast (colours) vs observed/true lesion (dashed cyan)"))
        references = {row["reference"]: ([r["day"] for r in rows if r.get("reference") == row["reference"]],
                                         [r["reference_ml"] for r in rows if r.get("reference") == row["reference"]])
                      for row in rows if "reference" in row}
        files.append(volume_curve_figure(
            days, {"population forecast": [row["population_ml"] for row in rows],
                   "personalised forecast": [row["fitted_ml"] for row in rows]}, out / VOLUME_FIGURE,
            observed=references, bands={"personalised forecast": ([row["fitted_ml_range"][0] for row in rows],
                                                                  [row["fitted_ml_range"][1] for row in rows])},
            title=f"{study.subject}: whole-lesion volume"))
        files.append(write_forecast_scene(out / SCENE_NAME, study.subject, scan, days, forecast.density,
                                          forecast.labels, observed=observed, overwrite=overwrite))

        report = {
            "software": {"name": "hybridneuro", "version": __version__},
            "job": "demo: population vs personalised Fisher–Kolmogorov forecast on the embedded sample case",
            "study": {"folder": str(study_folder), "subject": study.subject,
                      "observed_days": sorted(observed), "predict_days": list(study.predict_days)},
            "settings": asdict(settings), "population_seed": seed.to_dict(),
            "population_simulation": population.report(), "fit": fit.to_dict(), "days": rows,
            "files": [str(path.relative_to(out)) for path in files] + [REPORT_NAME],
            "wall_time_s": round(time.perf_counter() - started, 2),
        }
        (out / REPORT_NAME).write_text(json.dumps(report, indent=2) + "\n")
        files.append(out / REPORT_NAME)
    files = [final / path.relative_to(out) for path in files]
    return DemoResult(final, files, rows, report)


def _truth_labels(study_folder: Path, days) -> dict[float, sitk.Image]:
    """Ground-truth labels of a synthetic subject (``truth/day-<d>/labels.nii.gz`` beside the study), if any."""
    truth = {}
    for day in days:
        path = study_folder.parent / "truth" / f"day-{day:g}" / "labels.nii.gz"
        if path.is_file():
            truth[float(day)] = read_image(path, what="ground-truth labels")
    return truth

