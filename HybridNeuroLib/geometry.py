"""Voxel-grid geometry and the one LPS ⇄ RAS conversion used everywhere.

    >>> import SimpleITK as sitk
    >>> from HybridNeuroLib.geometry import ImageGeometry
    >>> image = sitk.Image(4, 5, 6, sitk.sitkFloat32)
    >>> image.SetSpacing((1.0, 1.0, 3.0))
    >>> image.SetOrigin((10.0, 20.0, 30.0))            # LPS: 10 mm left, 20 mm posterior
    >>> geometry = ImageGeometry.from_image(image)
    >>> geometry.origin_ras_mm.tolist()                 # the same point in RAS
    [-10.0, -20.0, 30.0]
    >>> geometry.ras_to_ijk((-10.0, -20.0, 36.0)).tolist()  # 6 mm superior = slice 2
    [0.0, 0.0, 2.0]

Engine images are SimpleITK images, whose world frame is LPS (DICOM/ITK convention);
MRML nodes use RAS. The two frames differ by negating the first two axes, an exact
operation in floating point, so geometry survives round trips bit for bit.

Numpy arrays taken from images (``sitk.GetArrayFromImage``, ``slicer.util.arrayFromVolume``)
are indexed ``[k, j, i]`` (slowest axis first); ``size`` here is ``(i, j, k)`` as in ITK.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
"""Change of world frame; it is its own inverse."""


@dataclass(frozen=True)
class ImageGeometry:
    """A voxel grid placed in the LPS world, in millimetres.

    ``size`` is (i, j, k) voxels, ``spacing_mm`` the voxel size along i, j, k,
    ``origin_lps_mm`` the world position of voxel (0, 0, 0), ``direction_lps`` the
    3×3 matrix whose columns are the world directions of the i, j, k axes.
    """

    size: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    origin_lps_mm: tuple[float, float, float]
    direction_lps: tuple[tuple[float, float, float], ...]

    @classmethod
    def from_image(cls, image: sitk.Image) -> ImageGeometry:
        if image.GetDimension() != 3:
            raise ValueError(f"expected a 3D image, got {image.GetDimension()}D")
        direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
        return cls(
            size=tuple(int(n) for n in image.GetSize()),
            spacing_mm=tuple(float(s) for s in image.GetSpacing()),
            origin_lps_mm=tuple(float(o) for o in image.GetOrigin()),
            direction_lps=tuple(tuple(float(v) for v in row) for row in direction),
        )

    @classmethod
    def from_ras(
        cls,
        size: tuple[int, int, int],
        spacing_mm: tuple[float, float, float],
        origin_ras_mm: tuple[float, float, float],
        direction_ras: np.ndarray,
    ) -> ImageGeometry:
        """Build from RAS quantities (as MRML stores them)."""
        direction_lps = LPS_TO_RAS @ np.asarray(direction_ras, dtype=float).reshape(3, 3)
        origin_lps = LPS_TO_RAS @ np.asarray(origin_ras_mm, dtype=float)
        return cls(
            size=tuple(int(n) for n in size),
            spacing_mm=tuple(float(s) for s in spacing_mm),
            origin_lps_mm=tuple(float(o) for o in origin_lps),
            direction_lps=tuple(tuple(float(v) for v in row) for row in direction_lps),
        )

    def to_dict(self) -> dict:
        """JSON form (recorded in a fit's ``params.json``); :meth:`from_dict` reads it back."""
        return {"size": list(self.size), "spacing_mm": list(self.spacing_mm),
                "origin_lps_mm": list(self.origin_lps_mm), "direction_lps": [list(row) for row in self.direction_lps]}

    @classmethod
    def from_dict(cls, record: dict) -> ImageGeometry:
        """Inverse of :meth:`to_dict`; ``ValueError`` for a malformed record."""
        try:
            direction = np.asarray(record["direction_lps"], dtype=float).reshape(3, 3)
            return cls(size=tuple(int(n) for n in record["size"]),
                       spacing_mm=tuple(float(v) for v in record["spacing_mm"]),
                       origin_lps_mm=tuple(float(v) for v in record["origin_lps_mm"]),
                       direction_lps=tuple(tuple(float(v) for v in row) for row in direction))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not an image grid record: {error}") from None

    def matches(self, other: ImageGeometry, tolerance_mm: float = 1e-3) -> bool:
        """Same size, and spacing/origin within ``tolerance_mm``, direction within 1e-5."""
        return (self.size == other.size
                and np.allclose(self.spacing_mm, other.spacing_mm, rtol=0, atol=tolerance_mm)
                and np.allclose(self.origin_lps_mm, other.origin_lps_mm, rtol=0, atol=tolerance_mm)
                and np.allclose(self.direction_lps, other.direction_lps, rtol=0, atol=1e-5))

    # -- derived quantities -------------------------------------------------
    @property
    def shape_kji(self) -> tuple[int, int, int]:
        """Shape of the numpy array of this grid (slowest axis first)."""
        return self.size[2], self.size[1], self.size[0]

    @property
    def direction_lps_matrix(self) -> np.ndarray:
        return np.asarray(self.direction_lps, dtype=float)

    @property
    def origin_ras_mm(self) -> np.ndarray:
        return LPS_TO_RAS @ np.asarray(self.origin_lps_mm, dtype=float)

    @property
    def direction_ras_matrix(self) -> np.ndarray:
        return LPS_TO_RAS @ self.direction_lps_matrix

    @property
    def voxel_volume_mm3(self) -> float:
        return float(np.prod(self.spacing_mm))

    def ijk_to_lps(self) -> np.ndarray:
        """4×4 homogeneous matrix from continuous voxel index (i, j, k) to LPS mm."""
        matrix = np.eye(4)
        matrix[:3, :3] = self.direction_lps_matrix @ np.diag(self.spacing_mm)
        matrix[:3, 3] = self.origin_lps_mm
        return matrix

    def ijk_to_ras(self) -> np.ndarray:
        """4×4 homogeneous matrix from continuous voxel index (i, j, k) to RAS mm."""
        matrix = np.eye(4)
        matrix[:3, :3] = self.direction_ras_matrix @ np.diag(self.spacing_mm)
        matrix[:3, 3] = self.origin_ras_mm
        return matrix

    def ras_to_ijk(self, point_ras_mm) -> np.ndarray:
        """Continuous voxel index (i, j, k) of a RAS point in mm."""
        point = np.append(np.asarray(point_ras_mm, dtype=float), 1.0)
        return np.linalg.solve(self.ijk_to_ras(), point)[:3] + 0.0  # + 0.0 turns -0.0 into 0.0

    # -- checks and application ---------------------------------------------
    def validate(self, what: str) -> None:
        """Raise ``ValueError`` naming ``what`` if the geometry is not a usable 3D grid."""
        values = (*self.spacing_mm, *self.origin_lps_mm, *np.ravel(self.direction_lps))
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"{what}: geometry contains NaN or infinite values "
                             f"(spacing {self.spacing_mm}, origin {self.origin_lps_mm}); "
                             "fix the image header before using it")
        if min(self.size) < 1:
            raise ValueError(f"{what}: the image is empty (size {self.size})")
        if min(self.spacing_mm) <= 0:
            raise ValueError(f"{what}: voxel spacing must be positive, got {self.spacing_mm} mm")
        if abs(abs(np.linalg.det(self.direction_lps_matrix)) - 1.0) > 1e-4:
            raise ValueError(f"{what}: axis directions are not orthonormal "
                             f"(det = {np.linalg.det(self.direction_lps_matrix):.4g})")

    def apply_to(self, image: sitk.Image) -> sitk.Image:
        """Set spacing, origin and direction of ``image`` (whose size must match) and return it."""
        if tuple(image.GetSize()) != self.size:
            raise ValueError(f"image size {image.GetSize()} does not match grid size {self.size}")
        image.SetSpacing(self.spacing_mm)
        image.SetOrigin(self.origin_lps_mm)
        image.SetDirection(tuple(np.ravel(self.direction_lps)))
        return image

    def image_from_array(self, array_kji: np.ndarray) -> sitk.Image:
        """A SimpleITK image on this grid holding ``array_kji`` (shape ``shape_kji``)."""
        if tuple(array_kji.shape) != self.shape_kji:
            raise ValueError(f"array shape {array_kji.shape} does not match grid shape {self.shape_kji} (k, j, i)")
        return self.apply_to(sitk.GetImageFromArray(array_kji))
