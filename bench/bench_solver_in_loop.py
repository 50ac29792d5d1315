"""Solver-in-the-loop benchmark: corrected 4 mm solver vs coarse-only vs the fine 1 mm solver, held-out anatomies.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python bench/bench_solver_in_loop.py [--subjects 5]

For each held-out anatomy (``hybrid.cohort.evaluation_seeds``; random D_w, ρ, deep-white-matter
seed, as in training) the fine solver runs on the whole 1 mm brain and is restricted to 4 mm
(4×4×4 block means); coarse-only and corrected-coarse run on the whole 4 mm brain (block-mean
tissue, as in training) from the same seed, in the same steps. Errors on the coarse grid: mean
|u − u_fine| over the voxels where the fine or the coarse-only state is ≥ 0.01 (the same voxels
for both), and Dice of the visible lesion u ≥ 0.25. Times (problem set-up + rollout, best of 3,
one thread) are measured in this process, so the ratios compare like with like; the speedup uses
CPU time (``time.process_time``), which a shared, loaded machine distorts far less than wall time
(both are written). Peak memory
is the process's maximum RSS, read once before the first fine solve (torch, a 1 mm anatomy, the
coarse runs) and once at the end. (Against a 2 mm reference the corrected solver was only ~2×
faster: a 240-day 2 mm RKL2 solve is already cheap and per-step fixed costs dominate at 4 mm.)
Writes ``bench/results/solver_in_loop_cpu.md``.
"""

from __future__ import annotations

import argparse
import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch

from HybridNeuroLib.hybrid.cohort import evaluation_seeds
from HybridNeuroLib.hybrid.corrector import (COARSE_VOXEL_MM, FINE_VOXEL_MM, CorrectedSolver, coarse_problem,
                                             coarse_tissue, draw_case, fine_rollout, restrict_to_coarse)
from HybridNeuroLib.hybrid.solver_in_loop import shipped_corrector
from HybridNeuroLib.metrics import dice
from HybridNeuroLib.physics import GrowthParameters, GrowthProblem

DAYS = (120.0, 240.0)
RESULT = Path(__file__).resolve().parent / "results" / "solver_in_loop_cpu.md"
FINE, COARSE = f"{FINE_VOXEL_MM:g} mm", f"{COARSE_VOXEL_MM:g} mm"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def best_of(repeats: int, run):
    """(best CPU seconds, best wall seconds, result): CPU time is what a loaded shared machine distorts least."""
    cpu, wall, result = [], [], None
    for _ in range(repeats):
        started_cpu, started_wall = time.process_time(), time.perf_counter()
        result = run()
        cpu.append(time.process_time() - started_cpu)
        wall.append(time.perf_counter() - started_wall)
    return min(cpu), min(wall), result


def one_subject(seed: int, corrector) -> dict:
    fine, lesion_seed, dw, rho = draw_case(seed, 0, DAYS[-1])
    coarse = coarse_tissue(fine)

    def run_fine():
        problem = GrowthProblem(fine, GrowthParameters(dw, rho), device="cpu")
        with torch.inference_mode():
            return problem.solve(problem.initial_density(lesion_seed), dw, rho, DAYS)[0]

    def run_coarse(network):
        def run():
            problem = coarse_problem(coarse)
            with torch.inference_mode():
                states = CorrectedSolver(problem, network).rollout(problem.initial_density(lesion_seed), dw, rho, DAYS)
            return [problem.to_full_grid(state) for state in states]
        return run

    coarse_s, coarse_wall_s, coarse_states = best_of(3, run_coarse(None))
    corrected_s, corrected_wall_s, corrected_states = best_of(3, run_coarse(corrector))
    coarse_peak_mb = peak_rss_mb()
    fine_s, fine_wall_s, _ = best_of(3, run_fine)
    truth = [restrict_to_coarse(state) for state in fine_rollout(fine, lesion_seed, dw, rho, DAYS)]
    rows = {"seed": seed, "dw": dw, "rho": rho, "seed_radius_mm": lesion_seed.radius_mm,
            "fine_s": fine_s, "coarse_s": coarse_s, "corrected_s": corrected_s, "fine_wall_s": fine_wall_s,
            "coarse_wall_s": coarse_wall_s, "corrected_wall_s": corrected_wall_s, "coarse_peak_mb": coarse_peak_mb,
            "days": {}}
    for day, t, c, k in zip(DAYS, truth, coarse_states, corrected_states):
        region = (t >= 0.01) | (c >= 0.01)
        rows["days"][day] = {"mae_coarse": float(np.abs(c - t)[region].mean()),
                             "mae_corrected": float(np.abs(k - t)[region].mean()),
                             "dice_coarse": dice(c >= 0.25, t >= 0.25), "dice_corrected": dice(k >= 0.25, t >= 0.25),
                             "visible_ml": float((t >= 0.25).sum()) * COARSE_VOXEL_MM ** 3 / 1000}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    corrector = shipped_corrector()
    results = []
    for seed in evaluation_seeds(args.subjects):
        results.append(one_subject(seed, corrector))
        r = results[-1]
        print(f"seed {seed}: D_w {r['dw']:.3f} ρ {r['rho']:.4f}  CPU: fine {r['fine_s']:.3f} s  "
              f"coarse {r['coarse_s']:.3f} s  corrected {r['corrected_s']:.3f} s  " + "  ".join(
                  f"day {d:g}: MAE {v['mae_coarse']:.4f}→{v['mae_corrected']:.4f} Dice {v['dice_coarse']:.3f}→"
                  f"{v['dice_corrected']:.3f}" for d, v in r["days"].items()), flush=True)
    peak_mb = peak_rss_mb()
    lines = ["# Solver-in-the-loop (CPU, one thread)", "",
             f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
             "2 shared cores (other jobs running: timings are indicative, ratios are same-process).",
             f"Held-out anatomies: {len(results)} (`evaluation_seeds`), days {', '.join(f'{d:g}' for d in DAYS)}; "
             f"fine = {FINE}, coarse = {COARSE}, both the engine's RKL2 solver; corrected = coarse + shipped corrector "
             f"(trained against {FINE}).", "",
             "| seed | D_w mm²/day | ρ /day | day | visible mL (fine) | MAE coarse | MAE corrected | Dice coarse | "
             "Dice corrected |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for day, v in r["days"].items():
            lines.append(f"| {r['seed']} | {r['dw']:.3f} | {r['rho']:.4f} | {day:g} | {v['visible_ml']:.1f} | "
                         f"{v['mae_coarse']:.4f} | {v['mae_corrected']:.4f} | {v['dice_coarse']:.3f} | "
                         f"{v['dice_corrected']:.3f} |")
    lines += ["", "| day | mean MAE coarse | mean MAE corrected | mean Dice coarse | mean Dice corrected |",
              "|---|---|---|---|---|"]
    def mean(day, key):
        return float(np.mean([r["days"][day][key] for r in results]))

    for day in DAYS:
        lines.append(f"| {day:g} | " + " | ".join(f"{mean(day, key):.4f}" for key in
                                                   ("mae_coarse", "mae_corrected", "dice_coarse", "dice_corrected"))
                     + " |")
    lines += ["", "Mean MAE corrected / coarse-only: " + ", ".join(
        f"day {day:g}: {mean(day, 'mae_corrected') / mean(day, 'mae_coarse'):.2f}" for day in DAYS) + "."]
    fine_s, coarse_s, corrected_s, fine_wall, coarse_wall, corrected_wall = (
        np.sum([r[key] for r in results]) for key in ("fine_s", "coarse_s", "corrected_s", "fine_wall_s",
                                                      "coarse_wall_s", "corrected_wall_s"))
    lines += ["", f"CPU time over all subjects (set-up + {DAYS[-1]:g}-day rollout, best of 3, one thread): fine {FINE} "
              f"{fine_s:.2f} s, coarse-only {COARSE} {coarse_s:.2f} s, corrected {COARSE} {corrected_s:.2f} s "
              f"(wall: {fine_wall:.2f} / {coarse_wall:.2f} / {corrected_wall:.2f} s).",
              f"Speedup (CPU time) corrected vs fine: **{fine_s / corrected_s:.1f}×**, coarse-only vs fine "
              f"{fine_s / coarse_s:.1f}× (corrected per subject: "
              + ", ".join(f"{r['fine_s'] / r['corrected_s']:.1f}×" for r in results)
              + f"); corrector overhead vs coarse-only: {corrected_s / coarse_s:.2f}×.",
              f"Peak memory (process max RSS, includes torch and the {FINE} anatomy): "
              f"{results[0]['coarse_peak_mb']:.0f} MB before the first fine solve (anatomy, coarse-only and "
              f"corrected runs), {peak_mb:.0f} MB after the {FINE} solves."]
    RESULT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines[-12:]))
    print(f"wrote {RESULT}")


if __name__ == "__main__":
    main()
