"""The table that tests the hybrid claim: forecasts of held-out synthetic patients, every model, same cases.

    $ .venv/bin/python bench/bench_hybrid.py                       # 20 subjects, every model → results/hybrid_cpu.md
    $ .venv/bin/python bench/bench_hybrid.py --subjects 3 --models physics neural-ode
    $ .venv/bin/python bench/bench_hybrid.py --resume              # keep finished (model, subject) rows

Cases: :func:`HybridNeuroLib.hybrid.cohort.synthetic_case` with
:func:`~HybridNeuroLib.hybrid.cohort.evaluation_seeds` (disjoint from every training seed), SRI24
anatomy at 2 mm with a random deformation; truth = anisotropic Fisher–Kolmogorov along
white-matter sheets, spatially varying ρ, a necrotic second species (no treatment, see the
cohort module); observed days 0, 60, 120; forecast days 180 and 240. Every model sees the
tissue maps and the observed BraTS labels only.

Rows: "no growth" (last observed lesion carried forward), "15 mm margin" (last observed whole
tumour grown by 15 mm inside the brain — the radiotherapy convention, as a forecast), then
every registered model through ``make_model(name).fit(...).predict(...)`` with its defaults
(physics, parallel and parallel-series without their uncertainty ensembles, ``members=0``, as only
the best fit is scored); the row "physics-cmaes-onset" is the physics model with the opt-in
fit (CMA-ES, tumour age fitted) that met the parameter-recovery goal on plain-FK subjects, and
"parallel-cmaes-onset" the parallel hybrid on that fit (its shipped network, trained on the default fit).
Columns: future whole-tumour (WT) and tumour-core (TC = labels 1, 3) Dice, WT HD95 (mm, MONAI),
WT volume error (|predicted − true| / true), fit wall time — medians over subjects and both
future days. The claim is tested with paired bootstrap 95 % intervals (10 000 resamples over
subjects) of the WT-Dice difference between each model and physics-only (default fit, and
the CMA-ES + onset fit), and data-only (``neural-ode``). Peak RSS of the process is recorded. Rows are appended
to ``<out>.jsonl`` after every (model, subject), so an interrupted run resumes with ``--resume``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from HybridNeuroLib.fit import FitSettings  # noqa: E402
from HybridNeuroLib.hybrid import make_model, model_names  # noqa: E402
from HybridNeuroLib.hybrid.cohort import SyntheticCase, evaluation_seeds, synthetic_case  # noqa: E402
from HybridNeuroLib.metrics import dice, hd95_mm  # noqa: E402

OBSERVED_DAYS, FUTURE_DAYS, MARGIN_MM = (0.0, 60.0, 120.0), (180.0, 240.0), 15.0
BASELINES = ("no-growth", "margin-15mm")
HYBRIDS = ("series", "parallel", "parallel-series", "neural-ode-physics", "solver-in-the-loop")
DATA_ONLY = "neural-ode"
# only the best fit is scored: no uncertainty ensembles (the same saving for every physics-based model)
MODEL_OPTIONS = {name: {"settings": FitSettings(members=0)} for name in ("physics", "parallel", "parallel-series")}
# extra rows: a registered model with other options (row name → model name, options)
BEST_FIT = FitSettings(optimizer="cmaes", fit_onset=True, starts=1, members=0)
VARIANTS = {"physics-cmaes-onset": ("physics", {"settings": BEST_FIT}),
            "parallel-cmaes-onset": ("parallel", {"settings": BEST_FIT})}


def baseline_forecast(name: str, case: SyntheticCase) -> list[np.ndarray]:
    """Label arrays at the future days: the last observed labels, or its whole tumour grown by 15 mm."""
    last = sitk.GetArrayFromImage(case.observed[-1][1])
    if name == "no-growth":
        return [last for _ in case.future]
    spacing_kji = case.tissue.geometry.spacing_mm[::-1]
    grown = (ndimage.distance_transform_edt(last == 0, sampling=spacing_kji) <= MARGIN_MM) & case.tissue.domain_mask(0.1)
    labels = np.where(grown, 2, 0).astype(np.uint8)
    labels[last > 0] = last[last > 0]   # the core stays where it was seen
    return [labels for _ in case.future]


def scores(predicted: list[np.ndarray], case: SyntheticCase) -> dict:
    """Per future day: WT/TC Dice, WT HD95 (mm), WT relative volume error."""
    spacing_kji = case.tissue.geometry.spacing_mm[::-1]
    rows = []
    for labels, (day, truth_image) in zip(predicted, case.future):
        truth = sitk.GetArrayViewFromImage(truth_image)
        wt, wt_true = labels > 0, truth > 0
        tc, tc_true = np.isin(labels, (1, 3)), np.isin(truth, (1, 3))
        rows.append({"day": day, "wt_dice": dice(wt, wt_true), "tc_dice": dice(tc, tc_true),
                     "wt_hd95_mm": hd95_mm(wt, wt_true, spacing_kji),
                     "wt_volume_error": abs(int(wt.sum()) - int(wt_true.sum())) / max(int(wt_true.sum()), 1)})
    return {"days": rows}


def run_one(name: str, case: SyntheticCase) -> dict:
    started = time.perf_counter()
    if name in BASELINES:
        predicted = baseline_forecast(name, case)
    else:
        model_name, options = VARIANTS.get(name, (name, MODEL_OPTIONS.get(name, {})))
        model = make_model(model_name, **options)
        model.fit(case.tissue, case.observed, progress=False)
        forecast = model.predict([day for day, _ in case.future], grid=case.tissue.geometry)
        predicted = [sitk.GetArrayFromImage(image) for image in forecast.labels]
    return {"model": name, "subject": case.seed, "fit_s": time.perf_counter() - started,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, **scores(predicted, case)}


def subject_mean(row: dict, key: str) -> float:
    return float(np.mean([day[key] for day in row["days"]]))


def paired_bootstrap(a: list[float], b: list[float], resamples: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of a − b over subjects and its bootstrap 95 % interval."""
    difference = np.asarray(a) - np.asarray(b)
    rng = np.random.default_rng(seed)
    means = difference[rng.integers(0, len(difference), (resamples, len(difference)))].mean(axis=1)
    return float(difference.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def table(rows: list[dict], failures: list[dict], subjects: list[int], peak_rss_mib: float) -> str:
    models = [m for m in (*BASELINES, *model_names(), *VARIANTS) if any(r["model"] == m for r in rows)]
    by = {(r["model"], r["subject"]): r for r in rows}
    complete = [s for s in subjects if all((m, s) in by for m in models)]
    median = lambda m, key: float(np.median([day[key] for s in complete for day in by[(m, s)]["days"]]))  # noqa: E731
    lines = [f"# Hybrid models vs physics-only vs data-only (CPU, {torch.get_num_threads()} threads)", "",
             f"`bench/bench_hybrid.py`: {len(complete)} held-out synthetic subjects with every model "
             f"(evaluation seeds), 2 mm SRI24 anatomy, truth = anisotropic FK + heterogeneous ρ + necrosis; "
             f"observed days {[f'{d:g}' for d in OBSERVED_DAYS]}, forecast {[f'{d:g}' for d in FUTURE_DAYS]}. "
             f"Medians over subjects × future days. Peak RSS {peak_rss_mib:.0f} MiB.", "",
             "| model | WT Dice | TC Dice | WT HD95 mm | WT volume error | fit s |", "|---|---|---|---|---|---|"]
    for m in models:
        fit_s = float(np.median([by[(m, s)]["fit_s"] for s in complete]))
        lines.append(f"| {m} | {median(m, 'wt_dice'):.3f} | {median(m, 'tc_dice'):.3f} | "
                     f"{median(m, 'wt_hd95_mm'):.1f} | {median(m, 'wt_volume_error'):.0%} | {fit_s:.1f} |")
    lines += ["", "Paired differences of subject-mean future WT Dice, mean [bootstrap 95 % interval]; "
              "**bold** where the interval excludes 0 in the model's favour:", "",
              "| model | vs physics (default fit) | vs physics (CMA-ES + onset fit) | vs data-only (neural-ode) |",
              "|---|---|---|---|"]
    wt = {m: [subject_mean(by[(m, s)], "wt_dice") for s in complete] for m in models}
    for m in models:
        if m in (*BASELINES, "physics", "physics-cmaes-onset"):
            continue
        cells = []
        for reference in ("physics", "physics-cmaes-onset", DATA_ONLY):
            if reference not in wt or reference == m:
                cells.append("—")
                continue
            mean, low, high = paired_bootstrap(wt[m], wt[reference])
            text = f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]"
            cells.append(f"**{text}**" if low > 0 else text)
        lines.append(f"| {m} | {' | '.join(cells)} |")
    for failure in failures:
        lines.append(f"\nFailed: {failure['model']} on subject {failure['subject']}: {failure['error']}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=20)
    parser.add_argument("--models", nargs="+", default=[*BASELINES, *model_names(), *VARIANTS],
                        choices=[*BASELINES, *model_names(), *VARIANTS])
    parser.add_argument("--resume", action="store_true", help="keep finished rows from <out>.jsonl")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results") / "hybrid_cpu.md")
    args = parser.parse_args()
    rows_file = args.out.with_suffix(".jsonl")
    rows = [json.loads(line) for line in rows_file.read_text().splitlines()] if args.resume and rows_file.exists() else []
    if not args.resume:
        rows_file.parent.mkdir(parents=True, exist_ok=True)
        rows_file.write_text("")
    done = {(r["model"], r["subject"]) for r in rows}
    subjects = evaluation_seeds(args.subjects)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for n, seed in enumerate(subjects):
        case = synthetic_case(seed, observed_days=OBSERVED_DAYS, future_days=FUTURE_DAYS)
        for name in args.models:
            if (name, seed) in done:
                continue
            try:
                row = run_one(name, case)
            except Exception as error:  # a model that fails on a case is reported, not hidden
                traceback.print_exc()
                failures.append({"model": name, "subject": seed, "error": f"{type(error).__name__}: {error}"})
                continue
            rows.append(row)
            with rows_file.open("a") as out:
                out.write(json.dumps(row) + "\n")
            print(f"subject {n + 1}/{len(subjects)} {name}: WT Dice "
                  f"{subject_mean(row, 'wt_dice'):.3f}, {row['fit_s']:.1f} s", flush=True)
        peak = max([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0]
                   + [r.get("peak_rss_mib", 0.0) for r in rows])   # rows of resumed runs carry their own
        args.out.write_text(table(rows, failures, subjects[:n + 1], peak))
    print(args.out.read_text())


if __name__ == "__main__":
    main()
