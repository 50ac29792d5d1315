"""The whole pipeline on a study folder (``hybridneuro run``), and the steps ``fit``/``predict``/``treat`` share.

    >>> from HybridNeuroLib.pipeline import PipelineSettings, available_models, scenario_slug
    >>> PipelineSettings().model, "physics" in available_models()
    ('physics', True)
    >>> scenario_slug("RT 30×2 Gy + TMZ-like chemo")
    'rt-30x2-gy-tmz-like-chemo'

:func:`run_pipeline` (also the Python entry point for the Slicer module and console users):

1. reads the study (every problem of the folder reported at once);
2. segments the timepoints that have no ``seg`` (the shipped default model, trained on
   synthetic data only, unless ``segmentation_model`` names a model folder) and, when the
   study has no tissue maps, derives them by registering the SRI24 atlas (each with a warning);
3. fits the chosen model (:func:`HybridNeuroLib.hybrid.make_model`), saves it to ``model/``
   (``model.json`` + ``tensors.pt``, ``params.json``, ``initial_density.nii.gz``);
4. forecasts the observed days (the fit's own check) and the predict days on the grid of the
   study's first timepoint: ``seg_day<d>``, ``density_day<d>``, ``probability_day<d>``;
5. treatment scenarios (models with a mechanistic fit): ``scenarios/``;
6. figures (``forecast_overlay.png``, ``lesion_volume.png``, ``scenarios/scenarios.png``), the
   Slicer scene ``scene.mrb`` and ``report.json``.

Everything is written into a hidden staging folder beside ``out`` that is renamed to ``out`` only
when every step succeeded (:func:`HybridNeuroLib.outputs.staged_output`): on an error, Ctrl-C or
SIGTERM it is deleted, so a half-written folder is never presented as a result (a process killed
outright leaves only the hidden staging folder). ``out`` must be new or empty, or — with
``overwrite`` — an earlier output of this program, unchanged, which is then replaced as a whole.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import SimpleITK as sitk

from HybridNeuroLib.fit import FitResult, FitSettings, Forecast
from HybridNeuroLib.fit.result import PARAMS_NAME, read_params
from HybridNeuroLib.fit.study_fit import grid_warnings, study_grid, study_labels, study_tissue
from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.hybrid.base import MODEL_MODULES, RECORD_NAME, TENSORS_NAME, ForecastModel, load_model, make_model
from HybridNeuroLib.hybrid.summaries import SUMMARY_FORMAT, model_summary, physics_result  # noqa: F401 (API)
from HybridNeuroLib.metrics import dice
from HybridNeuroLib.outputs import check_output_folder, day_image_paths, probability_path, staged_output, write_image
from HybridNeuroLib.physics import TissueMaps, TreatmentPlan
from HybridNeuroLib.progress import Progress
from HybridNeuroLib.study import Study, read_study

INITIAL_NAME = "initial_density.nii.gz"
MODEL_FOLDER, SEGMENTATION_FOLDER, TISSUE_FOLDER, SCENARIO_FOLDER = "model", "segmentation", "tissue", "scenarios"
REPORT_NAME, OVERLAY_FIGURE, VOLUME_FIGURE, SCENE_NAME = ("report.json", "forecast_overlay.png", "lesion_volume.png",
                                                          "scene.mrb")
SCENARIOS_NAME, SCENARIO_FIGURE = "scenarios.json", "scenarios.png"
MAX_HORIZON_DAYS = 1826  # 5 years after the last scan, without --allow-long-horizon
SHIPPED_SEGMENTATION_NOTE = ("the default segmentation model was trained on synthetic data only; it is not a clinical "
                             "model — check its labels before trusting the forecast")


# -- models ------------------------------------------------------------------------------
def available_models() -> tuple[str, ...]:
    """Registered model names whose module is installed (the registry lists models still being written)."""
    return tuple(name for name, module in MODEL_MODULES.items() if importlib.util.find_spec(module) is not None)


def check_model_name(name: str) -> str:
    if name not in available_models():
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(available_models())}")
    return name


def model_options(name: str, fit_settings: FitSettings) -> dict:
    """Constructor options for model ``name``: ``fit_settings`` where the model is fitted with :class:`FitSettings`."""
    from HybridNeuroLib.hybrid import model_class

    setting = inspect.signature(model_class(name)).parameters.get("settings")
    if setting is not None and (isinstance(setting.default, FitSettings) or "FitSettings" in str(setting.annotation)):
        return {"settings": fit_settings}
    return {}


def fit_model(study: Study, name: str, fit_settings: FitSettings = FitSettings(), *,
              timepoint_ids: Sequence[str] | None = None, progress: bool = True,
              log: Callable[[str], None] = lambda message: None) -> ForecastModel:
    """``make_model(name, ...).fit_study(study)``; the fit settings go to models that take them."""
    model = make_model(check_model_name(name), **model_options(name, fit_settings))
    return model.fit_study(study, timepoint_ids=timepoint_ids, progress=progress, log=log)


def fit_files(out: Path) -> list[Path]:
    return [out / RECORD_NAME, out / TENSORS_NAME, out / PARAMS_NAME, out / INITIAL_NAME]


def save_fit(model: ForecastModel, study: Study, study_folder: Path, out: Path) -> list[Path]:
    """Write the checkpoint, ``params.json`` (with the study it was fitted on) and the initial density."""
    record = {"folder": str(Path(study_folder).resolve()), "subject": study.subject,
              "predict_days": list(study.predict_days), "grid": study_grid(study).to_dict()}
    result = physics_result(model)
    if result is not None:
        result.extra["study"] = record  # kept in params.json and in the checkpoint's fit record
    out.mkdir(parents=True, exist_ok=True)
    files = [model.save(out)] + ([out / TENSORS_NAME] if (out / TENSORS_NAME).is_file() else [])
    summary = model_summary(model) | {"study": record}
    (out / PARAMS_NAME).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    # the model's own state at the first timepoint (for physics: the seed, grown for the fitted onset if any)
    initial_image = model.predict([study.timepoints[0].day], grid=study_grid(study)).density[0]
    files += [out / PARAMS_NAME, write_image(initial_image, out / INITIAL_NAME)]
    return files


def load_fit(folder: Path, study_folder: Path | None = None, *, force: bool = False
             ) -> tuple[ForecastModel, Study, Path]:
    """A saved fit (checkpoint, or a ``params.json``-only folder of older versions) and its study.

    ``study_folder`` (``--study``) replaces the study recorded in the fit; it is refused when its
    subject or its first timepoint's grid differ from the fitted study's, unless ``force``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"fit folder {folder} does not exist; give a folder written by `hybridneuro fit` "
                                "(or the model/ folder of a `hybridneuro run` output)")
    params = folder / PARAMS_NAME
    if not (folder / RECORD_NAME).is_file() and not params.is_file():
        raise FileNotFoundError(f"fit folder {folder}: no {RECORD_NAME} or {PARAMS_NAME}; run `hybridneuro fit` first")
    record = read_params(folder) if params.is_file() else {}
    recorded = record.get("study") if isinstance(record.get("study"), dict) else {}
    chosen = study_folder or (Path(recorded["folder"]) if isinstance(recorded.get("folder"), str) else None)
    if chosen is None:
        raise ValueError(f"fit folder {folder}: {PARAMS_NAME} records no study; pass --study STUDY")
    if study_folder is None and not Path(chosen).is_dir():
        raise FileNotFoundError(f"fit folder {folder}: the study it was fitted on, {chosen}, no longer exists; "
                                "pass --study STUDY (the same patient, moved)")
    study = read_study(chosen)
    if study_folder is not None and not force:
        _check_same_patient(study, Path(chosen), recorded, folder)
    if (folder / RECORD_NAME).is_file():
        return load_model(folder), study, Path(chosen)
    result = FitResult.load(folder)  # written before checkpoints existed: the tissue comes from the study
    model = make_model("physics", settings=result.settings)
    model.result, model.tissue = result, study_tissue(study)
    return model, study, Path(chosen)


def _check_same_patient(study: Study, study_folder: Path, recorded: dict, fit_folder: Path) -> None:
    """Refuse to forecast a fit onto another patient's study or grid (``--force`` to insist)."""
    problems = []
    if isinstance(recorded.get("subject"), str) and recorded["subject"] != study.subject:
        problems.append(f"its subject is {study.subject!r}, the fit's is {recorded['subject']!r}")
    grid = study_grid(study)
    try:
        fitted = ImageGeometry.from_dict(recorded["grid"]) if "grid" in recorded else None
    except ValueError:
        fitted = None
    if fitted is not None and not grid.matches(fitted):
        problems.append(f"its first timepoint's grid (size {list(grid.size)}, spacing {list(grid.spacing_mm)} mm) "
                        f"differs from the fitted study's (size {list(fitted.size)}, spacing "
                        f"{list(fitted.spacing_mm)} mm)")
    if problems:
        raise ValueError(f"--study {study_folder} is not the study fit folder {fit_folder} was fitted on: "
                         f"{'; '.join(problems)}; forecasting it would place one patient's tumour on another's "
                         "scans — pass the fitted study, or --force if you are sure")
def check_model_folder(folder: str | Path) -> Path:
    """A segmentation model folder given by the user, checked to exist before any work."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"--segmentation-model {folder}: no such folder; give a model folder written by "
                                "`hybridneuro train-seg` (with model.json and model.pt)")
    return path


def forecast_days(study: Study, study_folder: Path, days: Sequence[float] | None, *,
                  allow_long_horizon: bool = False) -> list[float]:
    """``days`` (sorted, unique), or the study's ``predict_days`` when none are given, checked.

    Days must be finite, not before the first timepoint, and — unless ``allow_long_horizon`` — at
    most :data:`MAX_HORIZON_DAYS` after the last one (a forecast's cost grows with its horizon,
    and no growth model here is validated that far ahead).
    """
    chosen = sorted({float(d) for d in (days if days else study.predict_days)})
    if not chosen:
        raise ValueError(f"study {study_folder}: no predict_days in study.json; pass --days D …")
    bad = next((d for d in chosen if not np.isfinite(d)), None)
    if bad is not None:
        raise ValueError(f"--days: {bad} is not a number of days; give finite study days, e.g. --days 180 240")
    first, last = study.timepoints[0].day, study.timepoints[-1].day
    if chosen[0] < first:
        raise ValueError(f"--days: day {chosen[0]:g} lies before the study's first timepoint (day {first:g}); "
                         "forecasts go forward only")
    if chosen[-1] > last + MAX_HORIZON_DAYS and not allow_long_horizon:
        raise ValueError(f"--days: day {chosen[-1]:g} is {chosen[-1] - last:g} days after the last scan (day {last:g});"
                         f" forecasts are limited to {MAX_HORIZON_DAYS} days (5 years) ahead, beyond which no model "
                         "here is validated; pass --allow-long-horizon to run it anyway")
    return chosen


# -- forecasts ---------------------------------------------------------------------------
def forecast_files(out: Path, days: Sequence[float]) -> list[Path]:
    return [path for day in days for path in (*day_image_paths(out, day), probability_path(out, day))]


def write_forecast(forecast: Forecast, out: Path) -> list[Path]:
    """Density, labels and probability of every forecast day into ``out`` (see :mod:`HybridNeuroLib.outputs`)."""
    files = []
    for n, day in enumerate(forecast.days):
        density_path, seg_path = day_image_paths(out, day)
        files += [write_image(forecast.density[n], density_path), write_image(forecast.labels[n], seg_path),
                  write_image(forecast.probability[n], probability_path(out, day))]
    return files


def _image(images: dict[str, sitk.Image], keys: Sequence[str]) -> sitk.Image | None:
    return next((images[key] for key in keys if key in images), None)


def display_scan(study: Study) -> sitk.Image:
    """The scan figures and scenes show: the latest one on the study grid (T1c, FLAIR, else any)."""
    grid = study_grid(study)
    for tp in (*reversed(study.timepoints), study.timepoints[0]):
        image = _image(tp.images, ("t1c", "t2f")) or tp.reference_image
        if tp is study.timepoints[0] or (tp.id not in study.transforms and ImageGeometry.from_image(image) == grid):
            return image


def model_tissue(model: ForecastModel, study: Study) -> TissueMaps:
    """The tissue maps the model was fitted on (saved in its checkpoint), else the study's."""
    tissue = getattr(model, "tissue", None)
    return tissue if isinstance(tissue, TissueMaps) else study_tissue(study)


# -- treatment scenarios -----------------------------------------------------------------
@dataclass(frozen=True)
class ScenarioOptions:
    """One custom treatment (any combination); days are study days, None = the last observed day."""

    resection_day: float | None = None
    resection_fraction: float = 1.0          # of the cells inside the visible lesion at that day
    rt: bool = False
    rt_start_day: float | None = None
    rt_dose_per_fraction_gy: float = 2.0
    rt_fractions: int = 30
    chemo: bool = False
    chemo_start_day: float | None = None
    chemo_end_day: float | None = None       # default: start + 42 days (the 6 weeks of radiotherapy)
    chemo_kill_rate_per_day: float = 0.02


TMZ_DAYS = 42 + 6 * 28  # concurrent with RT, then six 28-day adjuvant cycles (a continuous window here)


def scenario_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower().replace("×", "x")).strip("-")


def build_scenarios(fit: FitResult, tissue: TissueMaps, grid: ImageGeometry,
                    options: ScenarioOptions | None = None) -> tuple[dict[str, TreatmentPlan | None], dict[str, dict]]:
    """(name → plan, name → JSON description): untreated plus the custom treatment, or the standard set."""
    from HybridNeuroLib.fit.scenarios import chemotherapy, combine, compare_scenarios, radiotherapy, resection

    start = fit.observed_days[-1] if fit.observed_days else fit.first_day
    plans: dict[str, TreatmentPlan | None] = {"untreated": None}
    described: dict[str, dict] = {"untreated": {"treatments": []}}
    if options is None:
        rt = {"kind": "radiotherapy", "start_day": start, "dose_per_fraction_gy": 2.0, "fractions": 30}
        chemo = {"kind": "chemotherapy", "start_day": start, "end_day": start + TMZ_DAYS, "kill_rate_per_day": 0.02}
        plans["RT 30×2 Gy"] = radiotherapy(fit, start)
        described["RT 30×2 Gy"] = {"treatments": [rt]}
        plans["RT 30×2 Gy + TMZ-like chemo"] = combine(radiotherapy(fit, start),
                                                        chemotherapy(fit, start, start + TMZ_DAYS, 0.02))
        described["RT 30×2 Gy + TMZ-like chemo"] = {"treatments": [rt, chemo]}
        return plans, described
    parts, treatments, names = [], [], []
    if options.resection_day is not None:
        day = float(options.resection_day)
        untreated = compare_scenarios(fit, tissue, {"untreated": None}, [day], grid=grid, with_images=True)
        mask = sitk.GetArrayFromImage(untreated["untreated"][0]["labels"]) > 0
        if not mask.any():
            raise ValueError(f"--resection-day {day:g}: the forecast shows no visible lesion that day to resect; "
                             "choose a later day")
        parts.append(resection(fit, day, mask, options.resection_fraction))
        treatments.append({"kind": "resection", "day": day, "removed_fraction": options.resection_fraction,
                           "mask": "the forecast's visible lesion that day", "mask_ml": round(
                               float(mask.sum()) * grid.voxel_volume_mm3 / 1000.0, 4)})
        names.append(f"resection day {day:g}")
    if options.rt or options.rt_start_day is not None:
        day = start if options.rt_start_day is None else float(options.rt_start_day)
        parts.append(radiotherapy(fit, day, options.rt_dose_per_fraction_gy, options.rt_fractions))
        treatments.append({"kind": "radiotherapy", "start_day": day, "fractions": options.rt_fractions,
                           "dose_per_fraction_gy": options.rt_dose_per_fraction_gy})
        names.append(f"RT {options.rt_fractions}×{options.rt_dose_per_fraction_gy:g} Gy day {day:g}")
    if options.chemo or options.chemo_start_day is not None or options.chemo_end_day is not None:
        day = start if options.chemo_start_day is None else float(options.chemo_start_day)
        end = day + 42.0 if options.chemo_end_day is None else float(options.chemo_end_day)
        if end <= day:
            raise ValueError(f"--chemo-end-day {end:g} must come after the chemotherapy start (day {day:g})")
        parts.append(chemotherapy(fit, day, end, options.chemo_kill_rate_per_day))
        treatments.append({"kind": "chemotherapy", "start_day": day, "end_day": end,
                           "kill_rate_per_day": options.chemo_kill_rate_per_day})
        names.append(f"chemo {options.chemo_kill_rate_per_day:g}/day days {day:g}–{end:g}")
    if not parts:
        raise ValueError("no treatment given: pass --resection-day, --rt-* or --chemo-* options, "
                         "or none of them for the standard scenarios")
    name = " + ".join(names)
    plans[name], described[name] = combine(*parts), {"treatments": treatments}
    return plans, described


def scenario_curve_days(first_day: float, days: Sequence[float], points: int = 13) -> list[float]:
    """The output days (``days``) plus evenly spaced days from the fit's first day, for smooth curves."""
    return sorted({round(float(d), 1) for d in np.linspace(first_day, max(days), points)} | {float(d) for d in days})


def run_scenarios(model: ForecastModel, study: Study, out: Path, days: Sequence[float],
                  options: ScenarioOptions | None = None, *, progress: bool = True) -> tuple[dict, dict, list[Path]]:
    """Solve and write the scenarios into ``out``; returns (JSON record, last-day labels by name, files)."""
    from HybridNeuroLib.fit.scenarios import compare_scenarios
    from HybridNeuroLib.report.scenario_figure import scenario_figure

    fit = physics_result(model)
    if fit is None:
        raise ValueError(f"model {model.name!r} has no mechanistic fit to apply treatments to; treatment scenarios "
                         "need the 'physics' model (fit with --model physics)")
    days = sorted({float(d) for d in days})
    grid = study_grid(study)
    tissue = model_tissue(model, study)
    plans, described = build_scenarios(fit, tissue, grid, options)
    curve_days = scenario_curve_days(fit.first_day, days)
    note = ("the fitted Fisher–Kolmogorov model" if model.name == "physics" else
            f"the mechanistic part of the {model.name!r} model only (its learned correction is not applied)")
    outcomes = {}
    with Progress("scenarios", total=len(plans), enabled=progress, unit="scenario") as bar:
        for name, plan in plans.items():
            outcomes |= compare_scenarios(fit, tissue, {name: plan}, curve_days, grid=grid, with_images=True)
            bar.advance()
    out.mkdir(parents=True, exist_ok=True)
    files, record = [], {"model": f"scenarios solved with {note}", "days": days, "curve_days": curve_days,
                         "first_day": fit.first_day, "scenarios": []}
    for name, rows in outcomes.items():
        folder = out / scenario_slug(name)
        folder.mkdir(exist_ok=True)
        images = {}
        for row in rows:
            if row["day"] in days:
                images[row["day"]] = write_image(row["labels"], day_image_paths(folder, row["day"])[1]).name
        record["scenarios"].append({"name": name, "folder": folder.name, **described[name], "label_images": images,
                                    "outcomes": [{k: v for k, v in row.items() if k != "labels"} for row in rows]})
        files += [folder / image_name for image_name in images.values()]
    last = {name: next(row["labels"] for row in rows if row["day"] == days[-1]) for name, rows in outcomes.items()}
    plain = {name: [{k: v for k, v in row.items() if k != "labels"} for row in rows] for name, rows in outcomes.items()}
    files.append(scenario_figure(display_scan(study), plain, last, out / SCENARIO_FIGURE,
                                 title=f"{study.subject}: treatment scenarios"))
    files.append(_write_json(record, out / SCENARIOS_NAME))
    return record, last, files


# -- the whole pipeline ------------------------------------------------------------------
@dataclass(frozen=True)
class PipelineSettings:
    """What ``run`` does; every field is recorded in ``report.json``."""

    model: str = "physics"
    fit: FitSettings = FitSettings()
    days: tuple[float, ...] | None = None          # default: the study's predict_days
    scenarios: bool = True
    scenario_options: ScenarioOptions | None = None  # None: the standard scenarios
    segmentation_model: str | None = None           # a `train-seg` model folder; None: the shipped default
    allow_long_horizon: bool = False                 # forecast days beyond MAX_HORIZON_DAYS after the last scan

    def to_dict(self) -> dict:
        return {"model": self.model, "fit": self.fit.to_dict(), "days": list(self.days) if self.days else None,
                "scenarios": self.scenarios, "scenario_options": asdict(self.scenario_options)
                if self.scenario_options else "standard", "segmentation_model": self.segmentation_model or "default"}


@dataclass
class PipelineResult:
    out: Path
    report: dict
    files: list[Path] = field(default_factory=list)


def _write_json(record: dict, path: Path) -> Path:
    # allow_nan=False: a NaN or infinite value is a bug, never a result
    path.write_text(json.dumps(record, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


def segment_missing(study: Study, out: Path, model_folder: str | None, *, progress: bool,
                     log: Callable[[str], None]) -> tuple[Study, list[str]]:
    """Segment timepoints without ``seg``; their labels go to ``out`` and into the returned study."""
    missing = [tp for tp in study.timepoints if tp.seg is None]
    if not missing:
        return study, []
    from HybridNeuroLib.segment.inference import segment_timepoint
    from HybridNeuroLib.segment.model import default_model, load_model_folder

    model = load_model_folder(model_folder) if model_folder else default_model()
    for tp in missing:  # every timepoint usable before any work
        try:
            model.check_contrasts(tp.images.keys())
        except ValueError as error:
            raise ValueError(f"study {study.subject!r}: timepoint {tp.id} has no lesion segmentation (seg) and cannot "
                             f"be segmented automatically: {error}; add its seg.nii.gz or the missing "
                             "contrasts") from None
    which = f"model {model_folder}" if model_folder else "the shipped default model"
    log(f"segmenting timepoint(s) {', '.join(tp.id for tp in missing)} (no seg in the study) with {which}")
    warnings = [f"timepoint(s) {', '.join(tp.id for tp in missing)} had no lesion segmentation and were segmented "
                f"automatically with {which} ({SEGMENTATION_FOLDER}/seg_<id>.nii.gz)"
                + ("" if model_folder else f"; {SHIPPED_SEGMENTATION_NOTE}")]
    out.mkdir(parents=True, exist_ok=True)
    segmented = {}
    with Progress("segment", total=len(missing), enabled=progress, unit="timepoint") as bar:
        for tp in missing:
            segmented[tp.id] = segment_timepoint(tp.images, model)
            write_image(segmented[tp.id], out / f"seg_{tp.id}.nii.gz")
            bar.advance()
    timepoints = tuple(replace(tp, seg=segmented.get(tp.id, tp.seg)) for tp in study.timepoints)
    return study.with_changes(timepoints=timepoints), warnings


def derive_tissue(study: Study, out: Path, log: Callable[[str], None]) -> tuple[Study, list[str]]:
    if study.tissue:
        return study, []
    from HybridNeuroLib.anatomy.tissue import tissue_from_atlas

    first = study.timepoints[0]
    t1 = _image(first.images, ("t1n", "t1c"))
    if t1 is None:
        raise ValueError(f"study {study.subject!r}: no tissue maps and no T1 image (t1n or t1c) at {first.id} to "
                         "derive them from; add tissue maps (\"tissue\" in study.json) or a T1 scan")
    from HybridNeuroLib.study.images import blank_image_warning

    log(f"deriving gm/wm/csf tissue maps: SRI24 atlas registered to {first.id}'s T1 (no tissue in the study)")
    t1_key = next(key for key in ("t1n", "t1c") if key in first.images)
    blank = blank_image_warning(t1, f"{first.id}/{t1_key}")
    if blank:
        log(f"warning: {blank}")
    lesion = sitk.Cast(first.seg > 0, sitk.sitkUInt8) if first.seg is not None else None
    tissue = tissue_from_atlas(t1, lesion_mask=lesion).tissue
    out.mkdir(parents=True, exist_ok=True)
    for key, image in tissue.items():
        write_image(image, out / f"{key}.nii.gz")
    return study.with_changes(tissue=tissue), [
        f"the study has no tissue maps: derived by registering the SRI24 atlas to {first.id}'s T1 "
        f"({TISSUE_FOLDER}/); check them, or add the patient's own maps to the study"] + ([blank] if blank else [])


def run_pipeline(study_folder, out, settings: PipelineSettings = PipelineSettings(), *, overwrite: bool = False,
                 progress: bool = True, log: Callable[[str], None] = lambda message: None) -> PipelineResult:
    """Run every step on ``study_folder`` into the new folder ``out`` (see the module docstring)."""
    from HybridNeuroLib.report.figures import forecast_overlay_figure, lesion_volumes_ml, volume_curve_figure
    from HybridNeuroLib.report.scene import write_forecast_scene
    from HybridNeuroLib.report.summary import build_report

    started = time.perf_counter()
    study_folder = Path(study_folder).resolve()
    # every input, then the output folder, checked before any work
    check_model_name(settings.model)
    if settings.segmentation_model:
        check_model_folder(settings.segmentation_model)
    out = check_output_folder(out, inputs=[study_folder, settings.segmentation_model], overwrite=overwrite)
    timings: dict[str, float] = {}
    clock = [started]
    steps = Progress("run", total=8, enabled=False, unit="step")  # machine lines only: each step draws its own bar

    def step(name: str) -> None:
        now = time.perf_counter()
        timings[name], clock[0] = round(now - clock[0], 2), now
        steps.advance()

    study = read_study(study_folder)
    days = tuple(forecast_days(study, study_folder, settings.days, allow_long_horizon=settings.allow_long_horizon))
    original = study
    step("read")
    with staged_output(out, inputs=[study_folder, settings.segmentation_model], overwrite=overwrite,
                       command="run") as staging:
        study, warnings = segment_missing(study, staging / SEGMENTATION_FOLDER, settings.segmentation_model,
                                           progress=progress, log=log)
        warnings = grid_warnings(study) + warnings  # fit_study logs them too
        step("segment")
        study, tissue_warnings = derive_tissue(study, staging / TISSUE_FOLDER, log)
        warnings += tissue_warnings
        step("tissue")
        log(f"{study.subject}: fitting the {settings.model!r} model to the lesions of days "
            f"{', '.join(f'{tp.day:g}' for tp in study.timepoints)}")
        model = fit_model(study, settings.model, settings.fit, progress=progress, log=log)
        save_fit(model, study, study_folder, staging / MODEL_FOLDER)
        result = physics_result(model)
        warnings += list(result.warnings) if result is not None else list(getattr(model, "warnings", ()))
        step("fit")
        observed = dict(study_labels(study))
        all_days = tuple(sorted(set(observed) | set(days)))
        log(f"forecasting days {', '.join(f'{d:g}' for d in all_days)}")
        forecast = model.predict(all_days, grid=study_grid(study), progress=progress)
        write_forecast(forecast, staging)
        step("predict")
        scenarios, scenario_lesions = None, {}
        if settings.scenarios and result is not None:
            log("treatment scenarios: " + ("the standard set" if settings.scenario_options is None else "custom"))
            scenarios, last, _ = run_scenarios(model, study, staging / SCENARIO_FOLDER, days,
                                               settings.scenario_options, progress=progress)
            if model.name != "physics":
                warnings.append(scenarios["model"])
            scenario_lesions = {f"scenario {name} lesion day {days[-1]:g}": labels for name, labels in last.items()}
        elif settings.scenarios:
            warnings.append(f"treatment scenarios skipped: model {settings.model!r} has no mechanistic fit to treat")
        step("scenarios")
        scan = display_scan(study)
        forecast_overlay_figure(scan, all_days, forecast.density, forecast.labels, staging / OVERLAY_FIGURE,
                                reference=[observed.get(day) for day in all_days],
                                title=f"{study.subject}: forecast (colours) vs observed lesion (dashed cyan)")
        rows, series = forecast.volumes, f"forecast ({settings.model})"
        observed_ml = {day: lesion_volumes_ml(seg)["whole lesion"] for day, seg in sorted(observed.items())}
        volume_curve_figure(all_days, {series: [row["whole_ml"] for row in rows]}, staging / VOLUME_FIGURE,
                            observed={"observed lesion": (list(observed_ml), list(observed_ml.values()))},
                            bands={series: ([row["whole_ml_range"][0] for row in rows],
                                            [row["whole_ml_range"][1] for row in rows])},
                            title=f"{study.subject}: whole-lesion volume")
        step("figures")
        log("writing the Slicer scene")
        write_forecast_scene(staging / SCENE_NAME, study.subject, scan, all_days, forecast.density, forecast.labels,
                             observed=observed, lesions=scenario_lesions)
        step("scene")
        fit_dice = {day: dice(sitk.GetArrayViewFromImage(forecast.labels[all_days.index(day)]) > 0,
                              sitk.GetArrayViewFromImage(seg) > 0) for day, seg in observed.items()}
        report = build_report(original, study, study_folder, settings, model, forecast, days=days,
                              observed_ml=observed_ml, fit_dice=fit_dice,
                              scenarios=scenarios, warnings=warnings, timings_s=timings,
                              files=sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
                              + [REPORT_NAME],
                              wall_time_s=time.perf_counter() - started, model_folder=MODEL_FOLDER)
        _write_json(report, staging / REPORT_NAME)
    steps.close()
    return PipelineResult(out, report, [out / p for p in report["files"]])
