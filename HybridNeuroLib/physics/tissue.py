"""Patient tissue for growth models: GM/WM/CSF probability maps, the diffusivity field, the domain.

    >>> import numpy as np
    >>> from HybridNeuroLib.geometry import ImageGeometry
    >>> from HybridNeuroLib.physics.tissue import TissueMaps
    >>> grid = ImageGeometry((8, 6, 4), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), tuple(map(tuple, np.eye(3))))
    >>> wm = np.zeros(grid.shape_kji, np.float32); wm[1:3, 1:5, 2:6] = 1.0
    >>> tissue = TissueMaps(gm=np.zeros_like(wm), wm=wm, csf=1.0 - wm, geometry=grid)
    >>> int(tissue.domain_mask(tissue_threshold=0.1).sum())
    32
    >>> tissue.relative_diffusivity(wm_to_gm_ratio=10.0).max()
    np.float32(1.0)
    >>> crop = tissue.bounding_crop(tissue_threshold=0.1, margin_voxels=1)
    >>> crop.cropped_shape, crop.paste(crop.crop(wm)).sum() == wm.sum()
    ((4, 6, 6), np.True_)

The glioma diffusivity is D(x) = D_w·(p_wm + p_gm/r) (Swanson's white/grey contrast,
r ≈ 10): :meth:`TissueMaps.relative_diffusivity` returns the dimensionless factor
p_wm + p_gm/r so that a model multiplies it by D_w in mm²/day (and D_w stays one
differentiable scalar). Tumour cells live only in the *domain*, voxels with
p_wm + p_gm ≥ tissue threshold; outside it (CSF, skull, background) the factor is 0,
which the finite-volume operator turns into exact no-flux walls.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.study.format import IMAGE_SUFFIXES, TISSUE_KEYS
from HybridNeuroLib.study.images import probability_problem, read_image


def _check_probability(name: str, array: np.ndarray) -> None:
    if not np.all(np.isfinite(array)):
        raise ValueError(f"tissue map '{name}': contains NaN or infinite values; allowed range is [0, 1]")
    problem = probability_problem(array)
    if problem:
        raise ValueError(f"tissue map '{name}': {problem}")


@dataclass(frozen=True, eq=False)
class Crop:
    """A box of a full grid: ``crop`` cuts arrays to it, ``paste`` puts them back (zeros elsewhere)."""

    slices: tuple[slice, slice, slice]
    full_shape: tuple[int, int, int]

    @property
    def cropped_shape(self) -> tuple[int, int, int]:
        return tuple(s.stop - s.start for s in self.slices)

    @property
    def offset_kji(self) -> tuple[int, int, int]:
        return tuple(s.start for s in self.slices)

    def crop(self, array):
        return array[self.slices]

    def paste(self, cropped: np.ndarray, fill: float = 0.0) -> np.ndarray:
        full = np.full(self.full_shape, fill, dtype=cropped.dtype)
        full[self.slices] = cropped
        return full


@dataclass(frozen=True, eq=False)
class TissueMaps:
    """Grey matter, white matter and CSF probabilities (numpy ``[k, j, i]``) on one grid."""

    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    geometry: ImageGeometry

    def __post_init__(self) -> None:
        self.geometry.validate("tissue maps")
        for name in TISSUE_KEYS:
            array = np.asarray(getattr(self, name), dtype=np.float32)
            if array.shape != self.geometry.shape_kji:
                raise ValueError(f"tissue map '{name}': array shape {array.shape} differs from the grid "
                                 f"shape {self.geometry.shape_kji} (k, j, i); all maps must share one grid")
            _check_probability(name, array)
            object.__setattr__(self, name, np.clip(array, 0.0, 1.0))

    @classmethod
    def from_images(cls, gm: sitk.Image, wm: sitk.Image, csf: sitk.Image, *,
                    names: dict[str, str] | None = None) -> TissueMaps:
        """Maps from three SimpleITK images, which must share size, spacing, origin and direction.

        ``names`` (key → e.g. the file path) says in messages which map is meant.
        """
        images = {"gm": gm, "wm": wm, "csf": csf}
        names = {key: f"'{key}'" for key in images} | (names or {})
        geometry = ImageGeometry.from_image(gm)
        for name, image in images.items():
            other = ImageGeometry.from_image(image)
            if other.size != geometry.size or not np.allclose(
                    np.r_[other.spacing_mm, other.origin_lps_mm, np.ravel(other.direction_lps)],
                    np.r_[geometry.spacing_mm, geometry.origin_lps_mm, np.ravel(geometry.direction_lps)],
                    rtol=0.0, atol=1e-5):
                raise ValueError(f"tissue map {names[name]}: geometry {other} differs from the grey-matter "
                                 f"map's {geometry}; resample the maps onto one grid first")
        arrays = {name: sitk.GetArrayFromImage(image).astype(np.float32) for name, image in images.items()}
        for name, array in arrays.items():
            problem = probability_problem(array)
            if problem:
                raise ValueError(f"tissue map {names[name]}: {problem}")
        return cls(geometry=geometry, **arrays)

    @classmethod
    def read(cls, folder: str | Path) -> TissueMaps:
        """Read ``gm``, ``wm`` and ``csf`` images (``.nii.gz``, ``.nrrd`` …) from ``folder``.

        Each file goes through the checked reader (:func:`HybridNeuroLib.study.images.read_image`):
        a truncated, corrupt or NaN-holding map is refused by file name, never zero-filled.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"tissue folder {folder} does not exist")
        images, names = {}, {}
        for name in TISSUE_KEYS:
            paths = [folder / f"{name}{suffix}" for suffix in IMAGE_SUFFIXES if (folder / f"{name}{suffix}").exists()]
            if not paths:
                raise FileNotFoundError(f"tissue folder {folder}: no '{name}' image "
                                        f"(expected {name}.nii.gz or {name}.nrrd)")
            if len(paths) > 1:
                raise ValueError(f"tissue folder {folder}: several '{name}' images "
                                 f"({', '.join(p.name for p in paths)}); keep one")
            images[name] = read_image(paths[0], what="tissue map", pixel_type=sitk.sitkFloat32)
            names[name] = str(paths[0])
        return cls.from_images(**images, names=names)

    # -- derived fields ---------------------------------------------------------
    def domain_mask(self, tissue_threshold: float) -> np.ndarray:
        """Voxels where tumour cells may live: p_wm + p_gm ≥ ``tissue_threshold``."""
        if not 0.0 < tissue_threshold <= 1.0:
            raise ValueError(f"tissue_threshold must lie in (0, 1], got {tissue_threshold}")
        return (self.wm + self.gm) >= tissue_threshold

    def relative_diffusivity(self, wm_to_gm_ratio: float, tissue_threshold: float = 0.1) -> np.ndarray:
        """p_wm + p_gm/r inside the domain, 0 outside (dimensionless; multiply by D_w)."""
        if not (np.isfinite(wm_to_gm_ratio) and wm_to_gm_ratio >= 1.0):
            raise ValueError(f"wm_to_gm_ratio must be a finite number ≥ 1, got {wm_to_gm_ratio}")
        factor = self.wm + self.gm / np.float32(wm_to_gm_ratio)
        return np.where(self.domain_mask(tissue_threshold), factor, np.float32(0.0)).astype(np.float32)

    def bounding_crop(self, tissue_threshold: float = 0.1, margin_voxels: int = 1) -> Crop:
        """The domain's bounding box grown by ``margin_voxels`` (clipped to the grid)."""
        mask = self.domain_mask(tissue_threshold)
        if not mask.any():
            raise ValueError(f"tissue maps: no voxel has p_wm + p_gm ≥ tissue_threshold = {tissue_threshold}; "
                             "the maps are empty or the threshold is too high (allowed (0, 1])")
        index = np.argwhere(mask)
        low = np.maximum(index.min(axis=0) - margin_voxels, 0)
        high = np.minimum(index.max(axis=0) + 1 + margin_voxels, mask.shape)
        return Crop(tuple(slice(int(a), int(b)) for a, b in zip(low, high)), tuple(mask.shape))
