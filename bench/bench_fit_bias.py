"""Why is D_w biased high on the peer-simulated cohort (issue 15, item 1)? A one-factor-at-a-time study.

    $ .venv/bin/python bench/bench_fit_bias.py                          # all conditions, subjects 0–4
    $ .venv/bin/python bench/bench_fit_bias.py --conditions base known  # some conditions only
    $ .venv/bin/python bench/bench_fit_bias.py --subjects 2 --evaluations 300
    $ .venv/bin/python bench/bench_fit_bias.py --own 0 2 4 6 --conditions base fitpeak fitthr \\
          --rows /tmp/hybridneuro_fit_bias/rows_own.jsonl     # no-regression check on bench_fit.py's cohort

The *peer design* (how issue 15's measurement was made, reproduced with our own solver, which
matches TumorGrowthToolkit's to Dice 0.997): per subject (all randomness from
``numpy.random.default_rng(5000 + n)``) the SRI24 atlas at 1 mm (not deformed, as the peer cohort),
a seed in deep white matter (wm ≥ 0.8, ≥ 15 mm inside the brain), D_w log-uniform in 0.14–0.68
mm²/day and infiltration length ℓ = √(D_w/ρ) uniform in 4–5 mm (the biased patients), per-patient
visibility thresholds FLAIR U(0.20, 0.30) and T1Gd U(0.60, 0.70); TGT-like initial map (Gaussian,
half-maximum radius 3 mm, peak 0.5, cut below 0.1 — *not* the fit's onset seed family) grown by
plain FK until its equivalent radius is about a drawn 8–14 mm (first scan); the second scan 38–95
days later; forecast 60–160 days after the second. The first scan is edema-only (its core labels
merged into edema), as often in the peer cohort.

Conditions (``--conditions``), each switching ONE factor from ``base``:

- ``base``      the peer design above, fitted with the engine's fixed default thresholds (0.25 / 0.65);
- ``known``     (a) the fit is told the truth's thresholds;
- ``truth2mm``  (b) the truth simulated on the 2 mm atlas grid (= the fitting grid) instead of 1 mm;
- ``three``     (c) a third scan half-way between the two;
- ``core1``     (c) the first scan keeps its core labels (not edema-only);
- ``coreX3``    (d) tumour-core (T1Gd) contour weighted 3× the whole-tumour (FLAIR) one (``core_weight=3``);
- ``coreX0.3``  (d) the core weighted 0.3×;
- ``seed1``     the truth grown from the fit's own seed family (peak 1, 3 mm) instead of the TGT-like map;
- ``fitthr``    the fix under test: thresholds estimated per patient within 0.20–0.30 / 0.60–0.70
  (``FitSettings(fit_thresholds=True)``);
- ``fitpeak``   the fix under test: the seed's peak density fitted in 0.05–1 (``fit_seed_peak=True``);
- ``fitboth``   both;
- ``nocore``    (d) a scan without core counts as evidence (the model's u ≥ θ_T1Gd there is penalised,
  ``absent_core_evidence=True``; by default a core-less scan has no core term at all);
- ``nocorepeak`` ``nocore`` and ``fitpeak`` together;
- ``seed1known`` controls: ``seed1`` with the thresholds known (the truth in the fit's model family, 1 mm);
- ``knownpeak``  ``known`` and ``fitpeak`` together;
- ``seed1knownage`` diagnostic: ``seed1known`` plus a second CMA-ES start whose onset is the truth's
  (the lesion's real age); the lower final loss wins, as for any multi-start;
- ``agestarts`` the fix: ``base`` with ``FitSettings(onset_age_factors=(1, 4))`` (a second CMA-ES start
  4× older than the onset estimate, no truth used, full budget each; lower final loss wins);
- ``knownagestarts`` ``agestarts`` with the thresholds known.

``--age-factors F …`` sets ``onset_age_factors`` of every other condition (default 1: the single-age
start, whatever the library default), e.g. ``--conditions base known --age-factors 1 3 10``; rows
record the factors, the tables label a condition with them (``base ×(1, 3, 10)``).

Fit: ``FitSettings(optimizer="cmaes", starts=1, fit_onset=True, members=0)`` on the 2 mm grid
(the best current fit), ``--evaluations`` CMA-ES losses. Reported per subject and condition: D_w,
ρ and front speed 2√(D_w ρ) relative errors (signed: + means too high), fitted thresholds, forecast
whole-tumour Dice on the 1 mm truth grid, fit wall time; and per condition the medians. Truths
are cached under ``--cache`` (default /tmp/hybridneuro_fit_bias; never committed). One torch
thread, subjects run one after another.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from HybridNeuroLib.anatomy import load_atlas  # noqa: E402
from HybridNeuroLib.fit import FitSettings, fit_growth, predict  # noqa: E402
from HybridNeuroLib.fit.objective import Objective  # noqa: E402
from HybridNeuroLib.fit.observations import prepare_observations  # noqa: E402
from HybridNeuroLib.geometry import ImageGeometry  # noqa: E402
from HybridNeuroLib.labels import ImagingThresholds, density_to_labels  # noqa: E402
from HybridNeuroLib.metrics import dice  # noqa: E402
from HybridNeuroLib.physics import GrowthParameters, Seed, TissueMaps, simulate  # noqa: E402

STRATA = 5
CONDITIONS = ("base", "known", "truth2mm", "three", "core1", "coreX3", "coreX0.3", "seed1", "fitthr", "fitpeak",
              "fitboth", "nocore", "nocorepeak", "seed1known", "knownpeak",
              "seed1knownage", "agestarts", "knownagestarts")
KNOWN = ("known", "seed1known", "knownpeak", "seed1knownage", "knownagestarts")      # conditions told the truth's thresholds


def draw(n: int) -> dict:
    """The subject's random design (parameters, thresholds, days, seed voxel index)."""
    rng = np.random.default_rng(5000 + n)
    stratum = (n % STRATA + rng.uniform()) / STRATA  # log-uniform, stratified so 5 subjects span the range
    dw = float(math.exp(math.log(0.14) + stratum * math.log(0.68 / 0.14)))
    width = float(rng.uniform(4.0, 5.0))
    return {"subject": n, "dw": dw, "rho": dw / width ** 2, "width_mm": width,
            "flair": float(rng.uniform(0.20, 0.30)), "t1gd": float(rng.uniform(0.60, 0.70)),
            "detect_mm": float(rng.uniform(8.0, 14.0)), "gap_days": float(rng.uniform(38.0, 95.0)),
            "forecast_days": float(rng.uniform(60.0, 160.0)), "seed_pick": float(rng.uniform())}


def tissue_at(voxel_mm: int) -> TissueMaps:
    atlas = load_atlas(voxel_mm=voxel_mm)
    return TissueMaps(geometry=ImageGeometry.from_image(atlas.t1), **atlas.arrays())


def seed_centre(tissue: TissueMaps, pick: float) -> tuple[float, float, float]:
    spacing = tissue.geometry.spacing_mm[::-1]
    brain = (tissue.gm + tissue.wm + tissue.csf) > 0.5
    depth = ndimage.distance_transform_edt(brain, sampling=spacing)
    candidates = np.argwhere((tissue.wm >= 0.8) & (depth >= 15.0))
    k, j, i = candidates[int(pick * len(candidates))]
    return tuple(float(v) for v in (tissue.geometry.ijk_to_ras() @ np.array([i, j, k, 1.0]))[:3])


def tgt_like_map(tissue: TissueMaps, centre: tuple[float, float, float]) -> np.ndarray:
    """Gaussian of half-maximum radius 3 mm and peak 0.5, cut below 0.1 (TumorGrowthToolkit-like)."""
    array = (0.5 * _gaussian(tissue.geometry, centre, 3.0)).astype(np.float32)
    array[array < 0.1] = 0.0
    return array


def _gaussian(geometry: ImageGeometry, centre, radius_mm: float) -> np.ndarray:
    k, j, i = np.indices(geometry.shape_kji)
    ijk = np.stack([i.ravel(), j.ravel(), k.ravel(), np.ones(i.size)])
    ras = (geometry.ijk_to_ras() @ ijk)[:3]
    squared = ((ras - np.asarray(centre)[:, None]) ** 2).sum(0).reshape(geometry.shape_kji)
    return np.exp2(-squared / radius_mm ** 2)


def detection_day(d: dict, centre, seed_family: str, cache: Path) -> float:
    """First day (10-day steps, on the 2 mm atlas) whose FLAIR-visible equivalent radius reaches ``detect_mm``.

    The same day is used for the 1 mm and the 2 mm truth (so both show the same design)."""
    file = cache / f"detect_{d['subject']}_{seed_family}.json"
    if file.exists():
        return json.loads(file.read_text())["day"]
    tissue = tissue_at(2)
    initial = tgt_like_map(tissue, centre) if seed_family == "tgt" else Seed(centre, 3.0, 1.0)
    days = [10.0 * k for k in range(1, 301)]
    run = simulate(tissue, initial, GrowthParameters(d["dw"], d["rho"]), days, progress=False)
    volume = tissue.geometry.voxel_volume_mm3
    for day, image in zip(days, run.density):
        radius = (3 * float((sitk.GetArrayViewFromImage(image) >= d["flair"]).sum()) * volume / (4 * math.pi)) ** (1 / 3)
        if radius >= d["detect_mm"]:
            break
    file.write_text(json.dumps({"day": day}))
    return day


def truth(n: int, voxel_mm: int, seed_family: str, cache: Path) -> dict:
    """Density arrays at the scan/forecast days (cached), with the design."""
    d = draw(n)
    file = cache / f"truth_{n}_{voxel_mm}mm_{seed_family}.npz"
    tissue = tissue_at(voxel_mm)
    centre = seed_centre(tissue_at(1), d["seed_pick"])  # the same world point at either resolution
    first = detection_day(d, centre, seed_family, cache)
    days = [first, first + d["gap_days"] / 2, first + d["gap_days"], first + d["gap_days"] + d["forecast_days"]]
    if not file.exists():
        initial = tgt_like_map(tissue, centre) if seed_family == "tgt" else Seed(centre, 3.0, 1.0)
        started = time.perf_counter()
        run = simulate(tissue, initial, GrowthParameters(d["dw"], d["rho"]), days, progress=False)
        np.savez_compressed(file, density=np.stack([sitk.GetArrayFromImage(image) for image in run.density]),
                            simulate_s=time.perf_counter() - started)
    with np.load(file) as stored:
        density, simulate_s = stored["density"], float(stored["simulate_s"])
    return {**d, "tissue": tissue, "density": density, "days": days, "simulate_s": simulate_s, "centre": centre}


def age_factors(condition: str, args) -> tuple[float, ...]:
    """The fit's ``onset_age_factors``: (1, 4) for the ``*agestarts`` conditions, else ``--age-factors``."""
    return (1.0, 4.0) if condition in ("agestarts", "knownagestarts") else tuple(args.age_factors)


def label(row: dict) -> str:
    """Condition name, with the onset age factors when not the single-age start."""
    factors = row.get("age_factors", [1.0, 4.0] if row["condition"] in ("agestarts", "knownagestarts") else [1.0])
    if row["condition"] in ("agestarts", "knownagestarts") or list(factors) == [1.0]:
        return row["condition"]
    return f"{row['condition']} ×({', '.join(f'{f:g}' for f in factors)})"


def done_key(row: dict) -> tuple:
    default = (1.0, 4.0) if row["condition"] in ("agestarts", "knownagestarts") else (1.0,)
    return (row["subject"], row["condition"], row["evaluations"], tuple(row.get("age_factors", default)))


def run_condition(n: int, condition: str, args) -> dict:
    voxel = 2 if condition == "truth2mm" else 1
    t = truth(n, voxel, "peak1" if condition.startswith("seed1") else "tgt", args.cache)
    geometry = t["tissue"].geometry
    truth_thresholds = ImagingThresholds(t["flair"], t["t1gd"])
    labels = [density_to_labels(array, truth_thresholds) for array in t["density"]]
    study_days = [0.0, t["gap_days"] / 2, t["gap_days"], t["gap_days"] + t["forecast_days"]]
    first = labels[0].copy()
    if condition != "core1":
        first[first > 0] = 2   # edema-only first scan
    observed = [(0.0, first)] + ([(study_days[1], labels[1])] if condition == "three" else []) \
        + [(study_days[2], labels[2])]
    settings = FitSettings(optimizer="cmaes", starts=1, fit_onset=True, members=0, evaluations=args.evaluations,
                           thresholds=truth_thresholds if condition in KNOWN else ImagingThresholds(),
                           core_weight={"coreX3": 3.0, "coreX0.3": 0.3}.get(condition, 1.0),
                           fit_thresholds=condition in ("fitthr", "fitboth"),
                           fit_seed_peak=condition in ("fitpeak", "fitboth", "nocorepeak", "knownpeak"),
                           absent_core_evidence=condition in ("nocore", "nocorepeak"),
                           onset_age_factors=age_factors(condition, args))
    started = time.perf_counter()
    extra = []
    if condition == "seed1knownage":  # diagnostic: one more start at the truth's own age (uses the truth)
        from HybridNeuroLib.fit.initialise import starting_points  # noqa: PLC0415
        from HybridNeuroLib.fit.optimize import GrowthFit  # noqa: PLC0415
        from HybridNeuroLib.physics.initial import lesion_seed  # noqa: PLC0415
        data0 = prepare_observations(t["tissue"], [(day, geometry.image_from_array(array)) for day, array in observed],
                                     voxel_mm=settings.voxel_mm, region_margin_mm=settings.region_margin_mm)
        seed0 = lesion_seed(data0.first_labels, settings.thresholds.edema_flair)
        dw0, rho0 = starting_points(data0, settings)[0]
        extra = [GrowthFit(dw0, rho0, seed0.centre_ras_mm, 3.0, math.nan, onset_days=t["days"][0])]
    result = fit_growth(t["tissue"], [(day, geometry.image_from_array(array)) for day, array in observed], settings,
                        progress=False, extra_starts=extra)
    fit_s = time.perf_counter() - started
    forecast = predict(result, tissue_at(1), [study_days[3]])
    future = labels[3] > 0
    if voxel != 1:  # score on the 1 mm grid: the truth's 2 mm labels resampled (nearest)
        reference = tissue_at(1).geometry
        image = geometry.image_from_array(future.astype(np.uint8))
        future = sitk.GetArrayFromImage(sitk.Resample(image, reference.image_from_array(
            np.zeros(reference.shape_kji, np.uint8)), sitk.Transform(), sitk.sitkNearestNeighbor, 0)) > 0
    best = result.best
    speed = 2.0 * math.sqrt(t["dw"] * t["rho"])
    # the loss of the truth's own state (its seed, its onset, its D_w/ρ; its thresholds where the condition
    # knows or fits them) under this condition's loss: below the fit's loss → the search failed, not the model
    data = prepare_observations(t["tissue"], [(day, geometry.image_from_array(array)) for day, array in observed],
                                voxel_mm=settings.voxel_mm, region_margin_mm=settings.region_margin_mm)
    objective = Objective(data, settings)
    knows = condition in KNOWN or settings.fit_thresholds
    as_tensor = lambda value: torch.tensor(value, dtype=torch.float64)  # noqa: E731
    with torch.inference_mode():
        loss_at_truth = float(objective.loss(
            as_tensor(t["dw"]), as_tensor(t["rho"]), as_tensor(t["centre"]), as_tensor(3.0),
            onset_days=as_tensor(t["days"][0]), peak=1.0 if condition.startswith("seed1") else 0.5,
            thresholds=(t["flair"], t["t1gd"]) if knows else None))
    fitted = result.settings.thresholds
    return {"subject": n, "condition": condition, "dw_true": t["dw"], "rho_true": t["rho"], "width_mm": t["width_mm"],
            "flair_true": t["flair"], "t1gd_true": t["t1gd"], "gap_days": t["gap_days"],
            "forecast_days": t["forecast_days"],
            "dw_fit": best.dw_mm2_per_day, "rho_fit": best.rho_per_day, "onset_fit": best.onset_days,
            "flair_fit": fitted.edema_flair, "t1gd_fit": fitted.enhancing_t1gd,
            "dw_err": best.dw_mm2_per_day / t["dw"] - 1, "rho_err": best.rho_per_day / t["rho"] - 1,
            "speed_err": best.front_speed_mm_per_day / speed - 1,
            "dice": dice(sitk.GetArrayViewFromImage(forecast.labels[0]) > 0, future),
            "volumes_ml": [float((array > 0).sum()) * geometry.voxel_volume_mm3 / 1000 for array in labels],
            "first_core_ml": float(((labels[0] == 1) | (labels[0] == 3)).sum()) * geometry.voxel_volume_mm3 / 1000,
            "peak_fit": best.peak_density, "loss": best.loss, "loss_at_truth": loss_at_truth, "onset_true": t["days"][0],
            "start_losses": [s.loss for s in result.starts], "start_onsets": [s.onset_days for s in result.starts], "start_onsets_from": [s.start_onset_days for s in result.starts],
            "age_factors": list(age_factors(condition, args)),
            "fit_s": fit_s, "simulate_s": t["simulate_s"], "evaluations": args.evaluations}


OWN_OPTIONS = {"base": {}, "fitthr": {"fit_thresholds": True}, "fitpeak": {"fit_seed_peak": True},
               "nocore": {"absent_core_evidence": True},
               "nocorepeak": {"absent_core_evidence": True, "fit_seed_peak": True},
               "fitboth": {"fit_thresholds": True, "fit_seed_peak": True}}


def run_own(n: int, condition: str, args) -> dict:
    """Subject ``n`` of bench_fit.py's own cohort (2 mm truth, default thresholds, 3 scans) under ``condition``."""
    import bench_fit  # noqa: PLC0415  (same folder)

    settings = FitSettings(optimizer="cmaes", starts=1, fit_onset=True, members=0, evaluations=args.evaluations,
                           onset_age_factors=tuple(args.age_factors), **OWN_OPTIONS[condition])
    row = bench_fit.run_subject(n, settings)
    return {"subject": n, "condition": condition, "evaluations": args.evaluations,
            "age_factors": list(args.age_factors),
            **{key: row[key] for key in ("dw_true", "rho_true", "dw_fit", "rho_fit", "dice_fit", "fit_s")},
            "dw_err": row["dw_fit"] / row["dw_true"] - 1, "rho_err": row["rho_fit"] / row["rho_true"] - 1,
            "speed_err": math.sqrt(row["dw_fit"] * row["rho_fit"] / (row["dw_true"] * row["rho_true"])) - 1}


def own_table(rows: list[dict]) -> str:
    lines = ["| condition | subject | D_w true | D_w fit | ρ true | ρ fit | err D_w | err ρ | err speed | Dice | fit s |",
             "|" + "---|" * 11]
    for r in rows:
        lines.append(f"| {label(r)} | {r['subject']} | {r['dw_true']:.3f} | {r['dw_fit']:.3f} | "
                     f"{r['rho_true']:.4f} | {r['rho_fit']:.4f} | {r['dw_err']:+.0%} | {r['rho_err']:+.0%} | "
                     f"{r['speed_err']:+.0%} | {r['dice_fit']:.3f} | {r['fit_s']:.0f} |")
    for condition in dict.fromkeys(label(r) for r in rows):
        group = [r for r in rows if label(r) == condition]
        med = lambda key: float(np.median([abs(r[key]) for r in group]))  # noqa: E731
        lines.append(f"| **{condition} median** ({len(group)}) | | | | | | **{med('dw_err'):.0%}** | "
                     f"**{med('rho_err'):.0%}** | **{med('speed_err'):.0%}** | "
                     f"**{float(np.median([r['dice_fit'] for r in group])):.3f}** | "
                     f"**{float(np.median([r['fit_s'] for r in group])):.0f}** |")
    return "\n".join(lines) + "\n"


def table(rows: list[dict]) -> str:
    lines = ["| condition | subject | D_w true | D_w fit | ρ true | ρ fit | ℓ true mm | ℓ fit mm | FLAIR θ true/fit | "
             "T1Gd θ true/fit | peak fit | err D_w | err ρ | err speed | Dice | loss fit | loss truth | fit s |",
             "|" + "---|" * 18]
    for r in rows:
        lines.append(f"| {label(r)} | {r['subject']} | {r['dw_true']:.3f} | {r['dw_fit']:.3f} | "
                     f"{r['rho_true']:.4f} | {r['rho_fit']:.4f} | {r['width_mm']:.1f} | "
                     f"{math.sqrt(r['dw_fit'] / r['rho_fit']):.1f} | {r['flair_true']:.3f}/{r['flair_fit']:.3f} | "
                     f"{r['t1gd_true']:.3f}/{r['t1gd_fit']:.3f} | {r.get('peak_fit', 1.0):.2f} | {r['dw_err']:+.0%} | "
                     f"{r['rho_err']:+.0%} | {r['speed_err']:+.0%} | {r['dice']:.3f} | {r['loss']:.4f} | "
                     f"{r.get('loss_at_truth', float('nan')):.4f} | {r['fit_s']:.0f} |")
    summary = ["| condition | n | median D_w fit/true | median \\|err D_w\\| | median \\|err ρ\\| | "
               "median \\|err speed\\| | median Dice | fits with loss > loss at truth | median fit s |",
               "|" + "---|" * 9]
    for condition in dict.fromkeys(label(r) for r in rows):
        group = [r for r in rows if label(r) == condition]
        med = lambda key, f=abs: float(np.median([f(r[key]) for r in group]))  # noqa: E731
        summary.append(f"| {condition} | {len(group)} | {med('dw_err', lambda v: 1 + v):.2f}× | {med('dw_err'):.0%} | "
                       f"{med('rho_err'):.0%} | {med('speed_err'):.0%} | {med('dice', float):.3f} | "
                       f"{sum(r['loss'] > r.get('loss_at_truth', math.inf) for r in group)}/{len(group)} | "
                       f"{med('fit_s', float):.0f} |")
    return "\n".join(summary) + "\n\n" + "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=5)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--conditions", nargs="+", choices=CONDITIONS, default=list(CONDITIONS))
    parser.add_argument("--evaluations", type=int, default=600, help="CMA-ES losses per fit")
    parser.add_argument("--age-factors", type=float, nargs="+", default=[1.0], metavar="F",
                        help="FitSettings.onset_age_factors of every fit (default 1: the single-age start "
                             "of the study's first passes, whatever the library default; *agestarts use 1 4)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/hybridneuro_fit_bias"))
    parser.add_argument("--rows", type=Path, default=Path("/tmp/hybridneuro_fit_bias/rows.jsonl"),
                        help="results appended here as JSON lines (re-running skips rows already there)")
    parser.add_argument("--table", action="store_true", help="only print the table of the rows file")
    parser.add_argument("--own", nargs="+", type=int, default=None, metavar="N",
                        help="instead: these subjects of bench_fit.py's own cohort, --conditions among "
                             f"{list(OWN_OPTIONS)} (no-regression check of an option)")
    args = parser.parse_args()
    if args.own is not None:
        torch.set_num_threads(1)
        rows = [json.loads(line) for line in args.rows.read_text().splitlines()] if args.rows.exists() else []
        done = {done_key(r) for r in rows}
        for condition in args.conditions if not args.table else []:
            for n in args.own:
                if (n, condition, args.evaluations, tuple(args.age_factors)) not in done:
                    row = run_own(n, condition, args)
                    print(json.dumps(row), flush=True)
                    with args.rows.open("a") as out:
                        out.write(json.dumps(row) + "\n")
                    rows.append(row)
        print(own_table(sorted(rows, key=lambda r: (list(OWN_OPTIONS).index(r["condition"]), label(r), r["subject"]))))
        return
    torch.set_num_threads(1)
    args.cache.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in args.rows.read_text().splitlines()] if args.rows.exists() else []
    if not args.table:
        done = {done_key(r) for r in rows}
        for condition in args.conditions:
            for n in range(args.first, args.first + args.subjects):
                if (n, condition, args.evaluations, age_factors(condition, args)) in done:
                    continue
                row = run_condition(n, condition, args)
                print(json.dumps(row), flush=True)
                with args.rows.open("a") as out:
                    out.write(json.dumps(row) + "\n")
                rows.append(row)
    print(table(sorted(rows, key=lambda r: (CONDITIONS.index(r["condition"]), label(r), r["subject"]))))


if __name__ == "__main__":
    main()
