"""The one checked image reader: every image any command reads comes through :func:`read_image`.

    >>> import tempfile, pathlib, numpy as np, SimpleITK as sitk
    >>> from HybridNeuroLib.study.images import ImageReadError, read_image
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "wm.nii.gz"
    >>> array = np.full((4, 5, 6), 0.5, np.float32); array[1, 2, 3] = np.nan
    >>> sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
    >>> np.isnan(sitk.GetArrayFromImage(sitk.ReadImage(str(path)))).any()   # ITK reads the NaN as 0
    np.False_
    >>> try:
    ...     read_image(path, what="tissue map")
    ... except ImageReadError as error:
    ...     print(error.reason)
    holds 1 NaN and 0 infinite voxel value(s) (first at voxel i, j, k = 3, 2, 1); fix or re-export the image

What a read image is guaranteed to be: a complete file (a truncated NIfTI, which ITK would
zero-fill, is refused; so is a truncated or corrupt gzip stream, an empty file, a file that is not
an image), a 3D scalar volume with at least 2 voxels per axis, and finite voxel values. For
``.nii``/``.nii.gz`` finiteness is checked on the file's raw voxel data, because ITK's NIfTI reader
turns NaN and infinite voxels into 0; NRRD/MetaImage keep them, so the ITK array is checked.

Cost: a ``.nii.gz`` is decompressed once more than ITK needs (the completeness and NaN checks
share that pass); for 240×240×155 float32 this adds ≈ 0.1 s to ITK's ≈ 0.1 s, and the NaN scan
itself ≈ 3 ms. Errors are :class:`ImageReadError` (a ``ValueError``) or ``FileNotFoundError``,
naming the file and what to do; :func:`blank_image_warning` flags a blank/constant image.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from HybridNeuroLib.study.nifti import nifti_problem

NIFTI_SUFFIXES = (".nii", ".nii.gz")
PROBABILITY_TOLERANCE = 1e-4   # resampling overshoot of stored float maps; rejects other units (0–255, %)


class ImageReadError(ValueError):
    """An image file that cannot be used: ``path``, the ``reason`` and what the image is (``what``)."""

    def __init__(self, path: Path | str, reason: str, what: str = "image"):
        self.path, self.reason, self.what = Path(path), reason, what
        super().__init__(f"{what} {self.path}: {reason}")


# -- the reader ------------------------------------------------------------------------------
def _itk_reason(error: RuntimeError) -> str:
    """ITK's own explanation, without SimpleITK's source location, object address or a stale errno."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    lines = [re.sub(r"\(0x[0-9a-fA-F]+\)", "", line).removeprefix("ITK ERROR: ") for line in lines
             if not line.startswith(("Exception thrown in SimpleITK", "Reason: "))]
    detail = lines[-1] if lines else "ITK error"
    return f"unreadable or corrupt image ({detail[:200]})"


def read_image(path: Path | str, *, what: str = "image", pixel_type: int = sitk.sitkUnknown) -> sitk.Image:
    """The checked 3D scalar image at ``path`` (cast to ``pixel_type`` if given), else a named error.

    ``what`` names the image's role in messages, e.g. ``"tissue map"`` → ``tissue map /x/wm.nii.gz: …``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist" if not path.exists()
                                else f"{what} {path} is not a file")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "the file is empty (0 bytes); re-export or re-copy it", what)
    try:
        reason = nifti_problem(path) if path.name.lower().endswith(NIFTI_SUFFIXES) else None
    except OSError as error:  # permission denied, I/O error of the disk or network share
        raise ImageReadError(path, f"cannot be read ({error.strerror or error})", what) from None
    if reason is not None:
        raise ImageReadError(path, reason, what)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise ImageReadError(path, _itk_reason(error), what) from None
    size = image.GetSize()
    if image.GetDimension() != 3 or min(size) < 2:
        raise ImageReadError(path, f"is {image.GetDimension()}D with size {size}; a 3D volume "
                                   "(at least 2 voxels along each axis) is needed", what)
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ImageReadError(path, f"has {image.GetNumberOfComponentsPerPixel()} components per voxel; "
                                   "a scalar image is needed", what)
    values = sitk.GetArrayViewFromImage(image)
    if values.dtype.kind in "fc" and not np.isfinite(values).all():
        nan = int(np.isnan(values).sum())
        raise ImageReadError(path, f"holds {nan} NaN and {int((~np.isfinite(values)).sum()) - nan} infinite voxel "
                                   "value(s); fix or re-export the image", what)
    return image if pixel_type == sitk.sitkUnknown else sitk.Cast(image, pixel_type)


# -- value checks shared by the readers of each role ---------------------------------------------
def probability_problem(values: np.ndarray) -> str | None:
    """Why an array is not a probability map (values outside [0, 1] beyond resampling overshoot), or None."""
    low, high = float(np.min(values)), float(np.max(values))
    if low < -PROBABILITY_TOLERANCE or high > 1.0 + PROBABILITY_TOLERANCE:
        return f"probabilities must lie in [0, 1], got values in [{low:.4g}, {high:.4g}]"
    return None


def blank_image_warning(image: sitk.Image, where: str) -> str | None:
    """A warning when ``image`` is blank (every voxel the same value), else None.

    >>> import numpy as np, SimpleITK as sitk
    >>> blank_image_warning(sitk.GetImageFromArray(np.zeros((3, 3, 3), np.float32)), "tp0/t1n.nii.gz")[:40]
    'tp0/t1n.nii.gz is blank (every voxel is '

    Meant for inputs whose content is used indirectly, e.g. a T1 from which tissue maps are
    derived by atlas registration: a blank T1 gives tissue maps that fit no patient.
    """
    values = sitk.GetArrayViewFromImage(image)
    low, high = float(np.min(values)), float(np.max(values))
    if high - low > 1e-6 * max(1.0, abs(high), abs(low)):
        return None
    return (f"{where} is blank (every voxel is {low:g}): anything derived from it (e.g. tissue maps by atlas "
            "registration) is meaningless; check the file or supply the derived data yourself")


__all__ = ["ImageReadError", "blank_image_warning", "probability_problem", "read_image"]
