"""The CUDA paths against the CPU, and the GPU benchmark rows: run it once on a machine with a CUDA GPU.

    $ .venv/bin/python bench/gpu_check.py            # writes bench/results/gpu_check_<device>.md
    $ .venv/bin/python bench/gpu_check.py --smoke    # tiny sizes, a minute on a CPU (no GPU: CPU against CPU)

Each check runs the same computation on the CPU and on the device (``pick_device()``: CUDA when
torch can use it) in this process and reports the difference and both times:

- ``simulate``: FK forward on SRI24 (4 mm; 2 mm without ``--smoke``), max |Δu| and label Dice;
- ``fit``: the physics model (``make_model("physics", device=…)``, Adam, a few iterations) on a
  lesion simulated on that anatomy: relative differences of D_w and ρ;
- ``predict``: its forecast: max |Δu|;
- ``segment``: the shipped segmentation model on the sample case's first timepoint: Dice of the
  whole lesion between the two devices;
- ``hybrids`` (not with ``--smoke``): every registered forecasting model fitted with tiny settings
  at 4 mm; which device each one can use (most hybrids run on the CPU only: said in the table).

Without ``--smoke`` and on a GPU it also times the benchmark rows of issue 15: the 1 mm SRI24
forward solve of 200 days and the 2 mm fit. Peak memory: ``torch.cuda.max_memory_allocated``
on CUDA, the process's maximum RSS on the CPU. On a machine without CUDA both columns are the
CPU, so the differences must be 0 and the ratios show only warm-up and noise (the first of two
identical runs pays for caches and thread pools), not speed.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from HybridNeuroLib.anatomy.atlas import load_atlas  # noqa: E402
from HybridNeuroLib.device import pick_device  # noqa: E402
from HybridNeuroLib.fit import FitSettings  # noqa: E402
from HybridNeuroLib.hybrid import make_model, model_names  # noqa: E402
from HybridNeuroLib.metrics import dice  # noqa: E402
from HybridNeuroLib.physics import GrowthParameters, Seed, TissueMaps, simulate  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
DW, RHO = 0.3, 0.05


def timed(function):
    """(result, wall seconds), synchronising CUDA so that GPU time is counted."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    result = function()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return result, time.perf_counter() - started


def peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def anatomy(voxel_mm: int) -> TissueMaps:
    atlas = load_atlas(voxel_mm)
    return TissueMaps.from_images(atlas.tissue["gm"], atlas.tissue["wm"], atlas.tissue["csf"])


def deep_white_matter_seed(tissue: TissueMaps, radius_mm: float = 5.0) -> Seed:
    wm = tissue.wm
    candidates = np.argwhere(wm >= 0.9)
    centre = candidates[np.argmin(np.linalg.norm(candidates - candidates.mean(axis=0), axis=1))]
    ras = tissue.geometry.ijk_to_ras() @ np.array([*centre[::-1], 1.0])
    return Seed(tuple(float(v) for v in ras[:3]), radius_mm)


def check_simulate(tissue: TissueMaps, seed: Seed, device: torch.device, days: float) -> dict:
    parameters = GrowthParameters(DW, RHO)
    runs, times = {}, {}
    for key, where in (("cpu", "cpu"), ("device", device)):
        runs[key], times[key] = timed(lambda: simulate(tissue, seed, parameters, [days], device=where, progress=False))
    u_cpu, u_dev = (sitk.GetArrayViewFromImage(runs[k].density[0]) for k in ("cpu", "device"))
    labels = [sitk.GetArrayViewFromImage(runs[k].labels[0]) > 0 for k in ("cpu", "device")]
    return {"check": f"simulate {days:g} days", "difference": f"max abs Δu {np.abs(u_cpu - u_dev).max():.2e}, "
            f"label Dice {dice(*labels):.4f}", "cpu_s": times["cpu"], "device_s": times["device"]}


def observed_lesions(tissue: TissueMaps, seed: Seed, days=(0.0, 40.0, 80.0)) -> list[tuple[float, sitk.Image]]:
    run = simulate(tissue, seed, GrowthParameters(DW, RHO), [30.0 + d for d in days], progress=False)
    return list(zip(days, run.labels))


def check_fit_predict(tissue: TissueMaps, labels, device: torch.device, iterations: int) -> list[dict]:
    settings = FitSettings(voxel_mm=float(tissue.geometry.spacing_mm[0]), starts=1, iterations=iterations,
                           members=0, seed=0)
    fitted, times = {}, {}
    for key, where in (("cpu", "cpu"), ("device", device)):
        model = make_model("physics", settings=settings, device=where)
        fitted[key], times[key] = timed(lambda: model.fit(tissue, labels, progress=False))
    a, b = (fitted[k].result.best for k in ("cpu", "device"))
    rows = [{"check": f"fit (physics, Adam {iterations} iterations)",
             "difference": f"D_w {abs(a.dw_mm2_per_day / b.dw_mm2_per_day - 1):.2%}, "
                           f"ρ {abs(a.rho_per_day / b.rho_per_day - 1):.2%}",
             "cpu_s": times["cpu"], "device_s": times["device"]}]
    forecasts, predict_times = {}, {}
    for key, model in fitted.items():
        forecasts[key], predict_times[key] = timed(lambda: model.predict([160.0]))
    u = [sitk.GetArrayViewFromImage(forecasts[k].density[0]) for k in ("cpu", "device")]
    rows.append({"check": "predict day 160", "difference": f"max abs Δu {np.abs(u[0] - u[1]).max():.2e}",
                 "cpu_s": predict_times["cpu"], "device_s": predict_times["device"]})
    return rows


def check_segment(device: torch.device) -> dict:
    from HybridNeuroLib.segment.inference import segment_timepoint
    from HybridNeuroLib.segment.model import default_model
    from HybridNeuroLib.study import read_study
    from HybridNeuroLib.synth.sample import sample_case

    images = read_study(sample_case()).timepoints[0].images
    model = default_model()
    labels, times = {}, {}
    for key, where in (("cpu", "cpu"), ("device", device)):
        labels[key], times[key] = timed(lambda: segment_timepoint(images, model, device=where,
                                                                  say=lambda message: None))
    a, b = (sitk.GetArrayViewFromImage(labels[k]) > 0 for k in ("cpu", "device"))
    return {"check": "segment (shipped model, sample tp0)", "difference": f"whole-lesion Dice {dice(a, b):.4f}",
            "cpu_s": times["cpu"], "device_s": times["device"]}


def check_hybrids(tissue: TissueMaps, labels) -> list[dict]:
    rows = []
    tiny = FitSettings(voxel_mm=float(tissue.geometry.spacing_mm[0]), starts=1, iterations=3, members=0)
    for name in model_names():
        try:
            model = make_model(name, settings=tiny)
        except TypeError:
            model = make_model(name)
        takes_device = "device" in type(model).__init__.__code__.co_varnames
        _, seconds = timed(lambda: model.fit(tissue, labels, progress=False))
        forecast = model.predict([160.0])
        finite = bool(np.isfinite(sitk.GetArrayViewFromImage(forecast.density[0])).all())
        rows.append({"check": f"hybrid {name}", "difference": f"forecast finite: {finite}; device option: "
                     f"{'yes' if takes_device else 'no (CPU only)'}", "cpu_s": seconds, "device_s": float("nan")})
    return rows


def benchmark_rows(device: torch.device) -> list[dict]:
    """Issue 15's GPU rows: forward 1 mm full brain 200 days; the fit at 2 mm."""
    tissue = anatomy(1)
    seed = deep_white_matter_seed(tissue)
    rows = [check_simulate(tissue, seed, device, 200.0) | {"check": "forward 1 mm SRI24, 200 days"}]
    coarse = anatomy(2)
    rows += check_fit_predict(coarse, observed_lesions(coarse, deep_white_matter_seed(coarse)), device, 60)[:1]
    rows[-1]["check"] = "fit 2 mm (Adam 60 iterations)"
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (a test of the script, CPU is fine)")
    parser.add_argument("--out", type=Path, default=None, help="markdown file (default bench/results/...)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    device = pick_device()
    torch.ones(1, device=device).sum().item()  # start the CUDA context before anything is timed
    voxel_mm = 4 if args.smoke else 2
    tissue = anatomy(voxel_mm)
    seed = deep_white_matter_seed(tissue)
    labels = observed_lesions(tissue, seed)
    rows = [check_simulate(tissue, seed, device, 60.0 if args.smoke else 120.0)]
    rows += check_fit_predict(tissue, labels, device, 4 if args.smoke else 30)
    rows.append(check_segment(device))
    if not args.smoke:  # minutes per hybrid on a CPU
        coarse = anatomy(4)
        rows += check_hybrids(coarse, observed_lesions(coarse, deep_white_matter_seed(coarse)))
    if device.type == "cuda" and not args.smoke:
        rows += benchmark_rows(device)
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "no CUDA GPU: CPU against CPU"
    lines = [f"# CUDA paths against the CPU ({name})", "",
             f"`bench/gpu_check.py{' --smoke' if args.smoke else ''}`, torch {torch.__version__}, device {device}, "
             f"peak memory {peak_memory_mib(device):.0f} MiB.", "",
             "| check | CPU vs device | CPU s | device s | ratio |", "|---|---|---|---|---|"]
    for row in rows:
        measured = row["device_s"] == row["device_s"]  # NaN: not run on the device
        ratio = f"{row['cpu_s'] / row['device_s']:.1f}×" if measured and row["device_s"] > 0 else "–"
        device_s = f"{row['device_s']:.2f}" if measured else "–"
        lines.append(f"| {row['check']} | {row['difference']} | {row['cpu_s']:.2f} | {device_s} | {ratio} |")
    text = "\n".join(lines) + "\n"
    out = args.out or RESULTS / f"gpu_check_{device.type}{'_smoke' if args.smoke else ''}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
