"""Images of one timepoint → the network's input grid with MONAI transforms, and back to SimpleITK.

    >>> import SimpleITK as sitk, numpy as np
    >>> from HybridNeuroLib.segment.preprocess import to_meta_tensor, preprocess, meta_tensor_geometry
    >>> image = sitk.GetImageFromArray(np.ones((10, 12, 14), np.float32))      # k, j, i
    >>> image.SetSpacing((1.0, 1.0, 2.0))
    >>> tensor = to_meta_tensor([image, image], what="t1c, t2f")
    >>> tuple(tensor.shape)                                                     # channels, i, j, k (RAS)
    (2, 14, 12, 10)
    >>> out = preprocess({"image": tensor}, spacing_mm=(2.0, 2.0, 2.0))["image"]
    >>> tuple(out.shape), meta_tensor_geometry(out).spacing_mm
    ((2, 8, 6, 10), (2.0, 2.0, 2.0))

Orientation to RAS is done exactly by SimpleITK (``DICOMOrient``, a permutation/flip of the
voxel axes) when the MetaTensor is built, because MONAI's ``Orientation`` needs nibabel, which
the engine does not depend on. MONAI transforms (``preprocess_transforms``) then resample to
the model spacing (bilinear images, nearest labels), crop to the foreground (nonzero voxels,
8 mm margin) and z-score normalise each channel over its nonzero voxels. Training and inference
use the same transforms. The MetaTensor affine is RAS (MONAI convention); SimpleITK images are LPS.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import SimpleITK as sitk
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, CropForegroundd, NormalizeIntensityd, Spacingd

from HybridNeuroLib.geometry import ImageGeometry

CROP_MARGIN_MM = 8.0


def to_meta_tensor(images: Sequence[sitk.Image], *, what: str = "image") -> MetaTensor:
    """Channel-first float32 MetaTensor (C, i, j, k) with the RAS affine of the images' common grid."""
    ImageGeometry.from_image(images[0]).validate(what)
    images = [sitk.DICOMOrient(image, "RAS") for image in images]
    geometry = ImageGeometry.from_image(images[0])
    arrays = []
    for image in images:
        if ImageGeometry.from_image(image).size != geometry.size or not np.allclose(
                ImageGeometry.from_image(image).ijk_to_lps(), geometry.ijk_to_lps(), atol=1e-3):
            raise ValueError(f"{what}: the images are not on one voxel grid; register the timepoint first")
        if image.GetNumberOfComponentsPerPixel() != 1:
            raise ValueError(f"{what}: expected scalar images, got {image.GetNumberOfComponentsPerPixel()} components")
        arrays.append(np.transpose(sitk.GetArrayFromImage(image).astype(np.float32), (2, 1, 0)))
    data = np.stack(arrays)
    if not np.isfinite(data).all():
        raise ValueError(f"{what}: the images contain NaN or infinite values")
    return MetaTensor(torch.from_numpy(data), affine=torch.as_tensor(geometry.ijk_to_ras()))  # np.stack copied


def foreground_box(images: Sequence[sitk.Image], margin_mm: float = CROP_MARGIN_MM, *, what: str = "image"
                   ) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(index, size) in i, j, k of the box holding every image's nonzero voxels grown by ``margin_mm``.

    Cropping the native-resolution input to this box *before* any resampling is the largest
    saving of the pipeline: a BraTS volume is about half background (measured on the
    240×240×155 benchmark case: the preprocessing and resampling back took longer than the
    network's sliding windows before this crop).
    """
    sizes = {image.GetSize() for image in images}
    if len(sizes) != 1:
        raise ValueError(f"{what}: the images are not on one voxel grid (sizes {sorted(sizes)}); "
                         "register the timepoint first")
    nonzero = np.zeros(images[0].GetSize()[::-1], bool)
    for image in images:
        nonzero |= sitk.GetArrayViewFromImage(image) != 0
    if not nonzero.any():
        raise ValueError(f"{what}: the image is empty (all voxels are zero); is this a brain scan?")
    margin = np.ceil(margin_mm / np.asarray(images[0].GetSpacing())).astype(int)  # i, j, k
    low, high = [], []
    for axis_kji in range(3):
        present = np.flatnonzero(nonzero.any(axis=tuple(a for a in range(3) if a != axis_kji)))
        low.append(present[0])
        high.append(present[-1] + 1)
    low = np.maximum(np.asarray(low[::-1]) - margin, 0)
    high = np.minimum(np.asarray(high[::-1]) + margin, np.asarray(images[0].GetSize()))
    return tuple(int(v) for v in low), tuple(int(v) for v in high - low)


def meta_tensor_geometry(tensor: MetaTensor) -> ImageGeometry:
    """The voxel grid (LPS) of a channel-first MetaTensor from its RAS affine."""
    affine = np.asarray(tensor.affine, dtype=float)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    return ImageGeometry.from_ras(tuple(tensor.shape[1:4]), tuple(spacing), tuple(affine[:3, 3]),
                                  affine[:3, :3] / spacing)


def meta_tensor_to_images(tensor: MetaTensor) -> list[sitk.Image]:
    """One float32 SimpleITK image per channel, on the tensor's grid."""
    geometry = meta_tensor_geometry(tensor)
    data = tensor.detach().cpu().numpy().astype(np.float32)
    return [geometry.image_from_array(np.ascontiguousarray(np.transpose(channel, (2, 1, 0)))) for channel in data]


def preprocess_transforms(spacing_mm: Sequence[float], keys: Sequence[str] = ("image",)) -> Compose:
    """Dictionary transforms on ``image`` (and ``label`` when in ``keys``): spacing, crop, normalise."""
    keys = list(keys)
    modes = ["bilinear" if key == "image" else "nearest" for key in keys]
    margin_voxels = [int(np.ceil(CROP_MARGIN_MM / s)) for s in spacing_mm]
    return Compose([
        Spacingd(keys=keys, pixdim=tuple(float(s) for s in spacing_mm), mode=modes),
        CropForegroundd(keys=keys, source_key="image", margin=margin_voxels, allow_smaller=True),
        NormalizeIntensityd(keys="image", nonzero=True, channel_wise=True),
    ])


def preprocess(data: dict, spacing_mm: Sequence[float]) -> dict:
    """Apply :func:`preprocess_transforms` to ``data`` (keys ``image`` and optionally ``label``)."""
    image = data["image"]
    if not bool((image != 0).any()):
        raise ValueError("the image is empty (all voxels are zero); is this a brain scan?")
    return preprocess_transforms(spacing_mm, [key for key in ("image", "label") if key in data])(data)
