"""``hybridneuro treat``: treatment scenarios on a fitted patient — resection, radiotherapy, chemotherapy.

    $ hybridneuro treat fit --out treat                                   # the standard scenarios
    $ hybridneuro treat fit --out treat-rt --rt-start-day 130 --rt-dose-per-fraction-gy 2.67 --rt-fractions 15
    $ hybridneuro treat fit --out treat-all --resection-day 125 --rt-start-day 150 --chemo-start-day 150

Without treatment options it compares the standard scenarios, all starting at the last observed
day: untreated, radiotherapy 30 × 2 Gy (Monday–Friday, linear–quadratic), and that radiotherapy
plus a TMZ-like chemotherapy (kill rate 0.02/day for 210 days: 6 weeks concurrent and six 28-day
adjuvant cycles as one window). With options, it compares untreated with the one treatment they
describe (any combination; resection removes ``--resection-fraction`` of the cells inside the
forecast's visible lesion at ``--resection-day``). Writes ``scenarios.json`` (treatments, and per
scenario and day the whole and core volumes in mL and the tumour cells in mL at carrying capacity),
``scenarios.png`` (volume and cells against time, one line per scenario; each scenario's lesion
at the last day side by side) and ``<scenario>/seg_day<d>.nii.gz`` on the study's first-timepoint
grid at the days (default: the study's ``predict_days``). Needs a model with a mechanistic fit
(``physics``; for a hybrid, its mechanistic part is treated and its learned correction is not
applied, as ``scenarios.json`` says). Python: ``HybridNeuroLib.pipeline.run_scenarios`` / ``HybridNeuroLib.fit.scenarios``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from HybridNeuroLib.commands.predict import add_fit_input_options
from HybridNeuroLib.outputs import staged_output
from HybridNeuroLib.pipeline import (SCENARIO_FIGURE, SCENARIOS_NAME, ScenarioOptions, forecast_days, load_fit,
                                     run_scenarios)


def add_scenario_options(parser: argparse.ArgumentParser) -> None:
    """Treatment options (shared with ``run``); none given → the standard scenarios."""
    group = parser.add_argument_group("treatment (none given: untreated, RT 30×2 Gy, RT + TMZ-like chemo)")
    group.add_argument("--resection-day", type=float, metavar="D", help="resect the visible lesion on study day D")
    group.add_argument("--resection-fraction", type=float, default=1.0,
                       help="fraction of the cells removed inside the resected lesion")
    group.add_argument("--rt-start-day", type=float, metavar="D",
                       help="radiotherapy start, study day (default with other --rt-* options: last observed day)")
    group.add_argument("--rt-dose-per-fraction-gy", type=float, metavar="GY", help="dose per fraction (default 2)")
    group.add_argument("--rt-fractions", type=int, metavar="N",
                       help="number of fractions, Monday–Friday (default 30)")
    group.add_argument("--chemo-start-day", type=float, metavar="D",
                       help="chemotherapy start, study day (default with other --chemo-* options: last observed day)")
    group.add_argument("--chemo-end-day", type=float, metavar="D", help="chemotherapy end (default: start + 42)")
    group.add_argument("--chemo-kill-rate-per-day", type=float, metavar="K", help="added kill rate (default 0.02)")


def scenario_options(args: argparse.Namespace) -> ScenarioOptions | None:
    """The custom treatment the options describe, or None (the standard scenarios)."""
    rt = any(getattr(args, key) is not None for key in ("rt_start_day", "rt_dose_per_fraction_gy", "rt_fractions"))
    chemo = any(getattr(args, key) is not None
                for key in ("chemo_start_day", "chemo_end_day", "chemo_kill_rate_per_day"))
    if not (rt or chemo or args.resection_day is not None):
        return None
    defaults = ScenarioOptions()
    _check_treatment_values(args)
    return ScenarioOptions(
        resection_day=args.resection_day, resection_fraction=args.resection_fraction, rt=rt,
        rt_start_day=args.rt_start_day,
        rt_dose_per_fraction_gy=defaults.rt_dose_per_fraction_gy if args.rt_dose_per_fraction_gy is None
        else args.rt_dose_per_fraction_gy,
        rt_fractions=defaults.rt_fractions if args.rt_fractions is None else args.rt_fractions,
        chemo=chemo, chemo_start_day=args.chemo_start_day, chemo_end_day=args.chemo_end_day,
        chemo_kill_rate_per_day=defaults.chemo_kill_rate_per_day if args.chemo_kill_rate_per_day is None
        else args.chemo_kill_rate_per_day)


def _check_treatment_values(args: argparse.Namespace) -> None:
    """Each treatment option finite and in its range, named when it is not."""
    for key in ("resection_day", "rt_start_day", "chemo_start_day", "chemo_end_day"):
        value = getattr(args, key)
        if value is not None and not math.isfinite(value):
            raise ValueError(f"--{key.replace('_', '-')} must be a study day (a finite number), got {value}")
    if not 0.0 < args.resection_fraction <= 1.0:
        raise ValueError(f"--resection-fraction is the fraction of cells removed, in (0, 1]; got {args.resection_fraction}")
    if args.rt_fractions is not None and not 1 <= args.rt_fractions <= 100:
        raise ValueError(f"--rt-fractions must lie in 1–100, got {args.rt_fractions}")
    dose = args.rt_dose_per_fraction_gy
    if dose is not None and not (math.isfinite(dose) and 0.0 < dose <= 30.0):
        raise ValueError(f"--rt-dose-per-fraction-gy must lie in (0, 30] Gy, got {dose}")
    rate = args.chemo_kill_rate_per_day
    if rate is not None and not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
        raise ValueError(f"--chemo-kill-rate-per-day must lie in [0, 1] per day, got {rate}")


def register(subparsers) -> None:
    parser = subparsers.add_parser("treat", help="compare treatment scenarios on a fitted patient",
                                   description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_fit_input_options(parser)
    add_scenario_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model, study, study_folder = load_fit(args.fit, args.study, force=args.force)
    days = forecast_days(study, study_folder, args.days, allow_long_horizon=args.allow_long_horizon)
    options = scenario_options(args)
    with staged_output(args.out, inputs=[args.fit, study_folder], overwrite=args.overwrite,
                       command="treat") as staging:
        record, _, _ = run_scenarios(model, study, staging, days, options)
        record |= {"command": "treat", "forecast_model": model.name, "fit": str(Path(args.fit).resolve()),
                   "study": str(Path(study_folder).resolve())}
        (staging / SCENARIOS_NAME).write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
    out = args.out.resolve()
    for scenario in record["scenarios"]:
        last = scenario["outcomes"][-1]
        print(f"{scenario['name']}: day {last['day']:g}: whole lesion {last['whole_ml']:.2f} mL, "
              f"tumour cells {last['cells_ml']:.2f} mL")
    print(f"wrote {out / SCENARIOS_NAME}, {out / SCENARIO_FIGURE} and the label images")
    return 0
