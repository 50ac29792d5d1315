"""Multi-contrast MRI from tissue probabilities and lesion densities: t1n, t1c, t2w, t2f.

    >>> import numpy as np
    >>> from HybridNeuroLib.synth.render import SIGNAL, render_modality
    >>> SIGNAL["t1n"]["wm"] > SIGNAL["t1n"]["gm"] > SIGNAL["t1n"]["csf"]      # T1: WM bright, CSF dark
    True
    >>> SIGNAL["t2w"]["csf"] > SIGNAL["t2w"]["gm"] > SIGNAL["t2w"]["wm"]      # T2: CSF bright
    True
    >>> ones, zeros = np.ones((2, 2, 2), np.float32), np.zeros((2, 2, 2), np.float32)
    >>> tissue = {"gm": zeros, "wm": ones, "csf": zeros}
    >>> clean = render_modality("t2f", tissue, zeros, zeros, edema_threshold=0.25, enhancing_threshold=0.65)
    >>> round(float(clean[0, 0, 0]), 4) == SIGNAL["t2f"]["wm"]             # pure WM, no lesion
    True

Signal model. Each voxel is a partial-volume mixture of compartments, each with one relative
signal per contrast (white-matter T1 ≈ 0.85): normal tissue (GM, WM, CSF weighted by their
probabilities; background outside the brain is 0), and the lesion compartments from the
total density c = u + n and the proliferating density u, with the same thresholds as the
truth labels, softened over ±0.02: edema (c above the FLAIR threshold, bright on T2/FLAIR,
dim on T1), enhancing tumour (u above the T1Gd threshold: bright on t1c only) and the
non-enhancing / necrotic core (c above the T1Gd threshold but u below: dark on t1c, bright
on T2). Orderings follow clinical MRI: T1 WM > GM > CSF; T2 CSF > GM > WM; FLAIR GM > WM >
CSF (CSF nulled), edema brightest. Then a smooth multiplicative bias field exp(b(x)) with b a
random quadratic polynomial, and Rician noise |s + σ(z₁ + iz₂)|. Stored ×1000 as int16.
"""

from __future__ import annotations

import numpy as np

MODALITIES = ("t1n", "t1c", "t2w", "t2f")
SIGNAL: dict[str, dict[str, float]] = {
    "t1n": {"csf": 0.25, "gm": 0.60, "wm": 0.85, "edema": 0.50, "enhancing": 0.55, "core": 0.30},
    "t1c": {"csf": 0.25, "gm": 0.62, "wm": 0.85, "edema": 0.52, "enhancing": 1.30, "core": 0.25},
    "t2w": {"csf": 1.30, "gm": 0.75, "wm": 0.55, "edema": 1.05, "enhancing": 0.85, "core": 1.20},
    "t2f": {"csf": 0.12, "gm": 0.75, "wm": 0.60, "edema": 1.25, "enhancing": 1.00, "core": 0.70},
}
SOFT_WIDTH = 0.02
SCALE = 1000.0


def _step(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x / SOFT_WIDTH))


def lesion_fractions(u: np.ndarray, n: np.ndarray, edema_threshold: float, enhancing_threshold: float) -> dict:
    """Soft compartment fractions: edema, enhancing, core (each ≥ 0, together ≤ 1)."""
    total = u + n
    visible, dense, enhancing = (_step(total - edema_threshold), _step(total - enhancing_threshold),
                                 _step(u - enhancing_threshold))  # u ≤ total, so enhancing ≤ dense ≤ visible
    return {"edema": visible - dense, "enhancing": enhancing, "core": dense - enhancing, "lesion": visible}


def render_modality(modality: str, tissue: dict[str, np.ndarray], u: np.ndarray, n: np.ndarray, *,
                    edema_threshold: float, enhancing_threshold: float) -> np.ndarray:
    """Noise-free relative signal (float32) of one contrast."""
    signal = SIGNAL[modality]
    fractions = lesion_fractions(u, n, edema_threshold, enhancing_threshold)
    normal = sum(tissue[key] * signal[key] for key in ("gm", "wm", "csf"))
    brain = np.clip(sum(tissue[key] for key in ("gm", "wm", "csf")), 0.0, 1.0)
    lesion = sum(fractions[key] * signal[key] for key in ("edema", "enhancing", "core"))
    return ((1.0 - fractions["lesion"]) * normal + brain * lesion).astype(np.float32)


def bias_field(shape_kji, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """exp(b) with b a random quadratic polynomial in normalised coordinates, max |b| = amplitude."""
    axes = np.meshgrid(*[np.linspace(-1.0, 1.0, n) for n in shape_kji], indexing="ij")
    terms = [*axes] + [a * b for i, a in enumerate(axes) for b in axes[i:]]
    log_field = sum(rng.standard_normal() * term for term in terms)
    peak = float(np.abs(log_field).max())
    return np.exp(log_field * (amplitude / peak if peak > 0 else 0.0)).astype(np.float32)


def acquire(clean: np.ndarray, *, noise_sigma: float, bias_amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """Bias field, Rician noise, scaling to int16 scanner units."""
    biased = clean * bias_field(clean.shape, bias_amplitude, rng)
    real = biased + noise_sigma * rng.standard_normal(clean.shape)
    imaginary = noise_sigma * rng.standard_normal(clean.shape)
    magnitude = np.sqrt(real ** 2 + imaginary ** 2)
    return np.clip(np.round(magnitude * SCALE), 0, np.iinfo(np.int16).max).astype(np.int16)
