"""The series hybrid's encoder: observed lesion masks + tissue → Fisher–Kolmogorov parameters and seed.

    >>> import torch
    >>> from HybridNeuroLib.hybrid.encoder import CHANNELS, CROP_VOXELS, SCALARS, SeriesEncoder, normalise_log
    >>> net = SeriesEncoder()
    >>> out = net(torch.zeros(2, len(CHANNELS), *(CROP_VOXELS,) * 3), torch.zeros(2, len(SCALARS)))
    >>> tuple(out.shape)                                 # log D_w, log ρ (normalised), seed offset k, j, i
    (2, 5)
    >>> normalise_log(0.02, (0.02, 1.5)), normalise_log(1.5, (0.02, 1.5))
    (-1.0, 1.0)

An amortised inverse problem: instead of descending through the solver per patient, a small
3D CNN reads a fixed crop and outputs the parameters at once (milliseconds). Its input
(:func:`encode`) is a 24³ crop at 4 mm (96 mm) centred on the first lesion's centroid, resampled
in world space along the tissue grid's axes: the whole-tumour and core fractions of up to three
timepoints (slots: first, middle, last) and the wm/gm/csf maps; scalars = day gap since the first
timepoint / 100 and a presence flag for slots 2 and 3. Outputs: log D_w and log ρ normalised to
[-1, 1] over the literature bounds (``FitSettings``), and the seed centre's offset from the crop
centre in mm along the crop's array axes (k, j, i) / 20.

Training data (:func:`simulate_training_set`) comes from the engine's own FK solver
(:func:`HybridNeuroLib.physics.simulate`) on 2 mm training anatomies
(``subject_anatomy`` with seeds from :func:`HybridNeuroLib.hybrid.cohort.training_seeds`), a
3 mm seed in deep white matter, D_w and ρ from ``sample_parameters``' ranges, onset such that the
first scan sees a lesion of about the drawn detection radius (as ``bench/bench_fit.py``), labels
at the default thresholds; each simulation is solved on a 128 mm box around its seed and observed
every 15 days for 240 days, so one solve yields many 2- and 3-timepoint schedules. Training
(:func:`train_encoder`) augments with the 48 flips/permutations of the crop axes (the scalar FK
model is symmetric under them on an isotropic grid). Everything is deterministic on CPU for a
given seed; simulations are cached under ``synth.sample.cache_root()``.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import SimpleITK as sitk
import torch
from torch import nn

from HybridNeuroLib import __version__
from HybridNeuroLib.fit.observations import _label_masks, check_growth, resample_array
from HybridNeuroLib.fit.settings import FitSettings
from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.physics import GrowthParameters, Seed, TissueMaps, simulate
from HybridNeuroLib.physics.initial import lesion_seed

CROP_VOXELS, CROP_SPACING_MM = 24, 4.0
SLOTS = 3
CHANNELS = tuple(f"{kind}{slot}" for slot in range(SLOTS) for kind in ("whole", "core")) + ("wm", "gm", "csf")
SCALARS = ("gap1_per_100_days", "present1", "gap2_per_100_days", "present2")
OFFSET_SCALE_MM = 20.0
OBSERVED_OFFSETS_DAYS = tuple(float(d) for d in range(0, 241, 15))   # simulated scans after the first
SIMULATION_BOX_MM = 128.0
SIMULATIONS_PER_SUBJECT = 16
SEED_RADIUS_MM = 3.0


def normalise_log(value: float, bounds: tuple[float, float]) -> float:
    low, high = math.log(bounds[0]), math.log(bounds[1])
    return 2.0 * (math.log(value) - low) / (high - low) - 1.0


def denormalise_log(value: float, bounds: tuple[float, float]) -> float:
    low, high = math.log(bounds[0]), math.log(bounds[1])
    return math.exp(low + (min(max(value, -1.0), 1.0) + 1.0) * (high - low) / 2.0)


class SeriesEncoder(nn.Module):
    """Strided 3D CNN (24³ → 3³, position kept for the seed) then an MLP that also reads the day gaps."""

    def __init__(self, channels: int = len(CHANNELS), scalars: int = len(SCALARS), width: int = 16):
        super().__init__()
        act = nn.GELU
        # sized for CPU training (~10 ms per sample forward + backward on one thread)
        self.features = nn.Sequential(
            nn.Conv3d(channels, width, 2, stride=2), act(),                        # 12³
            nn.Conv3d(width, 2 * width, 3, stride=2, padding=1), act(),           # 6³
            nn.Conv3d(2 * width, 2 * width, 3, padding=1), act(),
            nn.Conv3d(2 * width, 4 * width, 3, stride=2, padding=1), act())       # 3³
        self.head = nn.Sequential(nn.Linear(4 * width * 27 + scalars, 128), act(), nn.Linear(128, 5))

    def forward(self, volume: torch.Tensor, scalars: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.features(volume).flatten(1), scalars], dim=1))


# -- input encoding (the same code for training and inference) ----------------------------
def crop_geometry(direction_lps: tuple, centre_ras_mm: Sequence[float]) -> ImageGeometry:
    """The 24³, 4 mm crop with the given axes whose centre (index 11.5) is at ``centre_ras_mm``."""
    half = (CROP_VOXELS - 1) / 2.0
    ras = np.diag([-1.0, -1.0, 1.0])
    direction = np.asarray(direction_lps, float)
    origin_lps = ras @ np.asarray(centre_ras_mm, float) - direction @ np.full(3, half * CROP_SPACING_MM)
    return ImageGeometry((CROP_VOXELS,) * 3, (CROP_SPACING_MM,) * 3, tuple(float(v) for v in origin_lps),
                         direction_lps)


def tissue_channels(tissue: TissueMaps, crop: ImageGeometry) -> np.ndarray:
    return np.stack([np.clip(resample_array(tissue.geometry.image_from_array(getattr(tissue, name)), crop), 0, 1)
                     for name in ("wm", "gm", "csf")])


def mask_channels(day: float, labels: sitk.Image, crop: ImageGeometry) -> np.ndarray:
    """Whole-tumour and core fractions of one timepoint on the crop (checked like the fit's inputs)."""
    return np.stack([np.clip(resample_array(mask, crop), 0, 1) for mask in _label_masks(day, labels)])


def slot_indices(count: int) -> list[int]:
    """Which timepoints fill the three slots: all of up to three, else first, middle, last."""
    return list(range(count)) if count <= SLOTS else [0, count // 2, count - 1]


def assemble(masks: Sequence[np.ndarray], gaps_days: Sequence[float], tissue_crop: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """(volume [9, 24, 24, 24], scalars [4]) from per-slot masks [2, …], gaps since the first day, tissue."""
    volume = np.zeros((len(CHANNELS), *(CROP_VOXELS,) * 3), np.float32)
    scalars = np.zeros(len(SCALARS), np.float32)
    for slot, (mask, gap) in enumerate(zip(masks, gaps_days)):
        volume[2 * slot:2 * slot + 2] = mask
        if slot:
            scalars[2 * (slot - 1):2 * slot] = (gap / 100.0, 1.0)
    volume[2 * SLOTS:] = tissue_crop
    return volume, scalars


@dataclass(frozen=True, eq=False)
class EncodedCase:
    volume: np.ndarray
    scalars: np.ndarray
    crop: ImageGeometry
    first_seed: Seed          # the fit's default seed on the first lesion (centroid, visible-volume radius)
    first_day: float


def encode(tissue: TissueMaps, labels_by_day: Sequence[tuple[float, sitk.Image]],
           visible_from: float = FitSettings().thresholds.edema_flair) -> EncodedCase:
    """The encoder's input for one patient (see the module docstring)."""
    pairs = sorted(((float(day), image) for day, image in labels_by_day), key=lambda pair: pair[0])
    if len(pairs) < 2 or len({day for day, _ in pairs}) != len(pairs):
        raise ValueError(f"encoder: needs at least 2 timepoints on distinct days with lesion labels, got days "
                         f"{[day for day, _ in pairs]}; add a follow-up scan or use the 'physics' model")
    chosen = [pairs[n] for n in slot_indices(len(pairs))]
    first = lesion_seed(_label_masks(chosen[0][0], chosen[0][1])[0], visible_from)  # checks the labels first
    crop = crop_geometry(tissue.geometry.direction_lps, first.centre_ras_mm)
    masks = [mask_channels(day, image, crop) for day, image in chosen]
    volumes = [(day, float(m[0].sum())) for (day, _), m in zip(chosen, masks)]
    check_growth(volumes, FitSettings().shrink_tolerance)
    volume, scalars = assemble(masks, [day - chosen[0][0] for day, _ in chosen], tissue_channels(tissue, crop))
    return EncodedCase(volume, scalars, crop, first, chosen[0][0])


def offset_to_ras(crop: ImageGeometry, offset_kji_mm: Sequence[float]) -> tuple[float, float, float]:
    half = (CROP_VOXELS - 1) / 2.0
    ijk = half + np.asarray(offset_kji_mm, float)[::-1] / CROP_SPACING_MM
    return tuple(float(v) for v in (crop.ijk_to_ras() @ np.append(ijk, 1.0))[:3])


def ras_to_offset(crop: ImageGeometry, point_ras_mm: Sequence[float]) -> np.ndarray:
    half = (CROP_VOXELS - 1) / 2.0
    return ((crop.ras_to_ijk(point_ras_mm) - half) * CROP_SPACING_MM)[::-1].copy()


# -- simulated training data ------------------------------------------------------------
def _box(tissue: TissueMaps, centre_kji: Sequence[int], size_mm: float) -> TissueMaps:
    half = np.ceil(size_mm / 2 / np.asarray(tissue.geometry.spacing_mm[::-1])).astype(int)
    low = np.maximum(np.asarray(centre_kji) - half, 0)
    high = np.minimum(np.asarray(centre_kji) + half + 1, tissue.geometry.shape_kji)
    geometry = tissue.geometry
    origin = np.asarray(geometry.origin_lps_mm) + geometry.direction_lps_matrix @ (
        np.asarray(geometry.spacing_mm) * low[::-1])
    box = ImageGeometry(tuple(int(n) for n in (high - low)[::-1]), geometry.spacing_mm,
                        tuple(float(v) for v in origin), geometry.direction_lps)
    slices = tuple(slice(int(a), int(b)) for a, b in zip(low, high))
    return TissueMaps(geometry=box, **{name: np.ascontiguousarray(getattr(tissue, name)[slices])
                                       for name in ("gm", "wm", "csf")})


def simulate_case(tissue: TissueMaps, rng: np.random.Generator, offsets_days: Sequence[float] = OBSERVED_OFFSETS_DAYS
                  ) -> dict | None:
    """One FK simulation on ``tissue`` (random deep-WM seed, parameters, onset) encoded at every offset day.

    Returns arrays (uint8 fractions ×255 per offset, tissue crop, target, volumes), or None when
    the first scan shows no lesion.
    """
    from HybridNeuroLib.synth.generator import _seed_voxel
    from HybridNeuroLib.synth.parameters import sample_parameters

    maps = {name: getattr(tissue, name) for name in ("gm", "wm", "csf")}
    geometry = tissue.geometry
    seed_kji = _seed_voxel(maps, tuple(reversed(geometry.spacing_mm)), rng)
    jitter = rng.uniform(-0.5, 0.5, 3)
    centre = tuple(float(v) for v in (geometry.ijk_to_ras() @ np.append(np.asarray(seed_kji[::-1]) + jitter, 1.0))[:3])
    p = sample_parameters(rng)
    speed = 2.0 * math.sqrt(p.dw_mm2_per_day * p.rho_per_day)
    onset = max(p.detection_radius_mm - 4.0, 1.0) / speed * float(rng.uniform(0.85, 1.15))
    box = _box(tissue, seed_kji, SIMULATION_BOX_MM)
    run = simulate(box, Seed(centre, SEED_RADIUS_MM), GrowthParameters(p.dw_mm2_per_day, p.rho_per_day),
                   [onset + d for d in offsets_days], progress=False)
    first = sitk.GetArrayViewFromImage(run.labels[0])
    if not (first > 0).any():
        return None
    seed = lesion_seed(run.labels[0], FitSettings().thresholds.edema_flair)
    crop = crop_geometry(geometry.direction_lps, seed.centre_ras_mm)
    masks, volumes = [], []
    for day, labels in zip(offsets_days, run.labels):
        array = sitk.GetArrayViewFromImage(labels)
        volumes.append(float((array > 0).sum()) * box.geometry.voxel_volume_mm3 / 1000.0)
        masks.append(mask_channels(day, labels, crop) if volumes[-1] > 0 else np.zeros((2,) + (CROP_VOXELS,) * 3))
    bounds = FitSettings()
    target = np.array([normalise_log(p.dw_mm2_per_day, bounds.dw_bounds_mm2_per_day),
                       normalise_log(p.rho_per_day, bounds.rho_bounds_per_day),
                       *(ras_to_offset(crop, centre) / OFFSET_SCALE_MM)], np.float32)
    return {"masks": np.round(np.stack(masks) * 255).astype(np.uint8),
            "tissue": np.round(tissue_channels(tissue, crop) * 255).astype(np.uint8),
            "target": target, "volumes_ml": np.asarray(volumes, np.float32),
            "truth": np.array([p.dw_mm2_per_day, p.rho_per_day, *centre], np.float64)}


def simulate_training_set(subject_seeds: Sequence[int], *, per_subject: int = SIMULATIONS_PER_SUBJECT,
                          cache: bool = True, log: Callable[[str], None] = lambda message: None) -> dict:
    """Stacked :func:`simulate_case` arrays over ``per_subject`` simulations on each subject's anatomy."""
    from HybridNeuroLib.synth.generator import subject_anatomy
    from HybridNeuroLib.synth.sample import cache_root

    key = hashlib.sha1(json.dumps([__version__, OBSERVED_OFFSETS_DAYS, SIMULATION_BOX_MM, CROP_VOXELS,
                                   CROP_SPACING_MM, per_subject]).encode()).hexdigest()[:10]
    folder = cache_root() / f"series-training-{key}"
    parts = []
    for n, subject in enumerate(subject_seeds):
        path = folder / f"subject-{subject}.npz"
        arrays = None
        if cache and path.is_file():
            try:
                with np.load(path) as stored:
                    arrays = {name: stored[name] for name in stored.files}
            except (OSError, ValueError):
                arrays = None
        if arrays is None:
            started = time.perf_counter()
            geometry, maps = subject_anatomy(2, 4.0, np.random.default_rng([subject, 1]))
            tissue = TissueMaps(geometry=geometry, **maps)
            rng = np.random.default_rng([subject, 2])
            cases = [c for c in (simulate_case(tissue, rng) for _ in range(per_subject)) if c is not None]
            arrays = {name: np.stack([c[name] for c in cases]) for name in cases[0]}
            arrays["subject"] = np.full(len(cases), n, np.int64)
            if cache:
                folder.mkdir(parents=True, exist_ok=True)
                staging = path.with_suffix(".tmp.npz")
                np.savez_compressed(staging, **arrays)
                staging.replace(path)
            log(f"subject {n + 1}/{len(subject_seeds)}: {len(cases)} simulations in "
                f"{time.perf_counter() - started:.0f} s")
        arrays["subject"] = np.full(len(arrays["target"]), n, np.int64)
        parts.append(arrays)
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


# -- training ---------------------------------------------------------------------------
def draw_schedule(volumes_ml: np.ndarray, rng: np.random.Generator) -> list[int] | None:
    """Indices into the offset days: 2 or 3 scans, gaps 30–120 days, each visible and not shrinking."""
    offsets = OBSERVED_OFFSETS_DAYS
    chosen = [0]
    for _ in range(int(rng.integers(1, SLOTS))):
        gaps = [n for n in range(len(offsets)) if 30 <= offsets[n] - offsets[chosen[-1]] <= 120]
        if not gaps:
            break
        chosen.append(int(rng.choice(gaps)))
    volumes = [float(volumes_ml[n]) for n in chosen]
    if len(chosen) < 2 or min(volumes) <= 0:
        return None
    if any(b < FitSettings().shrink_tolerance * a for a, b in zip(volumes, volumes[1:])):
        return None
    return chosen


def _symmetry(volume: torch.Tensor, offset: torch.Tensor, rng: np.random.Generator):
    """A random flip/permutation of the three spatial axes of ``volume`` [C, k, j, i] and ``offset`` [3]."""
    order = rng.permutation(3)
    volume, offset = volume.permute(0, *(1 + order)), offset[order]
    flips = [a for a in range(3) if rng.random() < 0.5]
    if flips:
        volume = volume.flip([1 + a for a in flips])
        offset = offset.clone()
        offset[flips] = -offset[flips]
    return volume, offset


def make_batch(data: dict, indices: Sequence[int], rng: np.random.Generator, augment: bool = True):
    volumes, scalars, targets = [], [], []
    for index in indices:
        schedule = None
        for _ in range(200):  # the pool (:func:`usable`) holds simulations with valid schedules
            schedule = draw_schedule(data["volumes_ml"][index], rng)
            if schedule is not None:
                break
        if schedule is None:
            raise ValueError(f"simulation {index}: no valid 2-scan schedule (lesion invisible or shrinking)")
        masks = [data["masks"][index, n].astype(np.float32) / 255.0 for n in schedule]
        volume, scalar = assemble(masks, [OBSERVED_OFFSETS_DAYS[n] for n in schedule],
                                  data["tissue"][index].astype(np.float32) / 255.0)
        volume, target = torch.from_numpy(volume), torch.from_numpy(data["target"][index].copy())
        if augment:
            volume, offset = _symmetry(volume, target[2:], rng)
            target = torch.cat([target[:2], offset])
        volumes.append(volume)
        scalars.append(torch.from_numpy(scalar))
        targets.append(target)
    return torch.stack(volumes), torch.stack(scalars), torch.stack(targets)


def usable(data: dict) -> np.ndarray:
    """Simulations with at least one valid 2-scan schedule."""
    rng = np.random.default_rng(0)
    return np.array([any(draw_schedule(v, rng) is not None for _ in range(20)) for v in data["volumes_ml"]])


def train_encoder(data: dict, *, seed: int = 0, steps: int = 3000, batch: int = 16, learning_rate: float = 2e-3,
                  validation: dict | None = None, log: Callable[[str], None] = lambda message: None
                  ) -> tuple[SeriesEncoder, dict]:
    """Adam with cosine decay on the MSE of the normalised targets; returns the net and a report."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = SeriesEncoder()
    optimizer = torch.optim.Adam(net.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    pool = np.flatnonzero(usable(data))
    started, running = time.perf_counter(), []
    for step in range(steps):
        volume, scalars, target = make_batch(data, rng.choice(pool, batch), rng)
        loss = ((net(volume, scalars) - target) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        running.append(loss.item())
        if (step + 1) % 250 == 0:
            log(f"step {step + 1}/{steps}: training loss {np.mean(running[-250:]):.4f} "
                f"({time.perf_counter() - started:.0f} s)")
    report = {"steps": steps, "batch": batch, "learning_rate": learning_rate, "seed": seed,
              "simulations": int(len(pool)), "final_training_loss": round(float(np.mean(running[-250:])), 5),
              "train_s": round(time.perf_counter() - started, 1)}
    if validation is not None:
        report["validation"] = validation_errors(net, validation)
    net.eval()
    return net, report


def validation_errors(net: SeriesEncoder, data: dict, seed: int = 1) -> dict:
    """Median relative errors (D_w, ρ, front speed) and median seed error (mm) on simulations, one schedule each."""
    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(usable(data))
    with torch.no_grad():
        volume, scalars, target = make_batch(data, pool, rng, augment=False)
        out = net(volume, scalars)
    bounds = FitSettings()
    dw = [denormalise_log(float(v), bounds.dw_bounds_mm2_per_day) for v in out[:, 0]]
    rho = [denormalise_log(float(v), bounds.rho_bounds_per_day) for v in out[:, 1]]
    truth_dw, truth_rho = data["truth"][pool, 0], data["truth"][pool, 1]
    error = lambda a, b: float(np.median(np.abs(np.asarray(a) / b - 1)))  # noqa: E731
    speed = 2 * np.sqrt(np.asarray(dw) * np.asarray(rho))
    seed_mm = torch.linalg.norm((out[:, 2:] - target[:, 2:]) * OFFSET_SCALE_MM, dim=1)
    return {"cases": int(len(pool)), "dw_median_relative_error": round(error(dw, truth_dw), 4),
            "rho_median_relative_error": round(error(rho, truth_rho), 4),
            "speed_median_relative_error": round(error(speed, 2 * np.sqrt(truth_dw * truth_rho)), 4),
            "seed_median_error_mm": round(float(seed_mm.median()), 2)}
