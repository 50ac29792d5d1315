"""Benchmark of lesion segmentation with the shipped default model on a 240×240×155, 1 mm, four-contrast case.

    $ .venv/bin/python bench/bench_segment.py            # prints a markdown table, writes bench/results/segment_cpu.md
    $ .venv/bin/python bench/bench_segment.py --cpu      # CPU even where CUDA is available
    $ .venv/bin/python bench/bench_segment.py --threads 1   # what bench/results/segment_cpu.md used

Case: a synthetic subject (``generate_subject(seed=7, voxel_mm=2)``, day 120) resampled
(linear) onto the SRI24/BraTS grid, 240×240×155 voxels at 1 mm, contrasts t1n, t1c, t2w, t2f.
Rows: ``segment_timepoint`` (preprocessing to the model's 2 mm grid, Gaussian sliding windows,
resampling back, labels) and a bare ``monai.inferers.sliding_window_inference`` call with the
same network, window, overlap and blending on the same preprocessed tensor, in the same run.
Each is run ``--repeats`` times after one warm-up; the median wall time is reported. Peak
memory: process maximum resident set size (``resource.getrusage``), and on CUDA
``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from monai.inferers import sliding_window_inference

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from HybridNeuroLib.device import pick_device  # noqa: E402
from HybridNeuroLib.segment import default_model, segment_timepoint  # noqa: E402
from HybridNeuroLib.segment.inference import WINDOW_OVERLAP, model_input  # noqa: E402
from HybridNeuroLib.study import read_study  # noqa: E402
from HybridNeuroLib.synth import generate_subject  # noqa: E402

BRATS_SIZE = (240, 240, 155)


def brats_grid_case(folder: Path) -> tuple[dict[str, sitk.Image], sitk.Image]:
    subject = generate_subject(7, folder, days=(0, 120), predict_days=(), voxel_mm=2, include_tissue=False)
    tp = read_study(subject.study_folder).timepoints[-1]
    source = tp.reference_image
    reference = sitk.Image(BRATS_SIZE, sitk.sitkFloat32)
    reference.SetDirection(source.GetDirection())
    centre = source.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in source.GetSize()])
    offset = np.asarray(source.GetDirection()).reshape(3, 3) @ ((np.asarray(BRATS_SIZE) - 1) / 2)
    reference.SetOrigin(tuple(np.asarray(centre) - offset))
    images = {key: sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
              for key, image in tp.images.items()}
    seg = sitk.Resample(tp.seg, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return images, seg


def timed(function, repeats: int) -> tuple[float, object]:
    function()  # warm-up
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = parser.parse_args()
    device = pick_device(force_cpu=args.cpu)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        images, seg = brats_grid_case(Path(folder) / "case")
    model = default_model()
    rss_before = max_rss_mib()
    prepared = model_input(images, model)
    inputs = prepared.as_tensor().unsqueeze(0).to(device)
    network = model.network.to(device).eval()

    def bare():
        with torch.inference_mode():
            return sliding_window_inference(inputs, roi_size=model.roi_size, sw_batch_size=1, predictor=network,
                                            overlap=WINDOW_OVERLAP, mode="gaussian")

    bare_s, _ = timed(bare, args.repeats)
    rss_bare = max_rss_mib()
    ours_s, labels = timed(lambda: segment_timepoint(images, model, device=device), args.repeats)
    rss_ours = max_rss_mib()
    found, truth = sitk.GetArrayFromImage(labels) > 0, sitk.GetArrayFromImage(seg) > 0
    dice = 2 * (found & truth).sum() / max(1, found.sum() + truth.sum())
    gpu = (f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB CUDA" if device.type == "cuda" else "")
    lines = [
        f"# Lesion segmentation benchmark ({device.type.upper()})", "",
        "| run | wall time (s) | peak memory | ratio to bare |", "|---|---:|---|---:|",
        f"| bare `sliding_window_inference` (model grid {tuple(prepared.shape[1:])}) | {bare_s:.2f} | "
        f"{rss_bare:.0f} MiB max RSS {gpu} | 1.00 |",
        f"| `segment_timepoint` (240×240×155 in → labels on the input grid) | {ours_s:.2f} | "
        f"{rss_ours:.0f} MiB max RSS {gpu} | {ours_s / bare_s:.2f} |", "",
        f"- Model: shipped `{model.name}` (UNet {model.info['network']['channels']}, "
        f"{sum(p.numel() for p in model.network.parameters())} parameters, {model.spacing_mm[0]:g} mm grid, "
        f"window {model.roi_size}, overlap {WINDOW_OVERLAP}, Gaussian blending); torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; median of {args.repeats} runs after a warm-up.",
        f"- Overhead of ours over bare: {100 * (ours_s / bare_s - 1):.0f}% (preprocessing 1 mm → "
        f"{model.spacing_mm[0]:g} mm, crop, normalisation, resampling back, labels); goal ≤ 10%.",
        f"- Max RSS before inference {rss_before:.0f} MiB. Whole-tumour Dice vs truth on this case: {dice:.3f}.",
        f"- Machine load average at the end (other jobs share these 2 cores): {os.getloadavg()[0]:.1f}.",
        "- The model is tiny (about 3 s of windows), so resampling the 1 mm input to 2 mm and the",
        "  probabilities back to 1 mm weighs heavily; with a full-size network the same fixed cost is a",
        "  small fraction. No GPU was available in this session: GPU numbers are not measured.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"segment_{device.type}.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
