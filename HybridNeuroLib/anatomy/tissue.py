"""GM/WM/CSF probability maps for a patient without them: the atlas registered to the patient's T1.

    >>> from HybridNeuroLib.anatomy import load_atlas
    >>> from HybridNeuroLib.anatomy.tissue import tissue_from_atlas
    >>> patient_t1 = load_atlas(voxel_mm=4).t1                  # stands in for a patient scan
    >>> estimate = tissue_from_atlas(patient_t1, registration_voxel_mm=4, bspline_iterations=0)
    >>> sorted(estimate.tissue), estimate.tissue["wm"].GetSize() == patient_t1.GetSize()
    (['csf', 'gm', 'wm'], True)

Method: affine registration (Mattes mutual information, moments initialisation, 3-level
pyramid) of the atlas T1 to the patient T1, then a B-spline deformable refinement (control
grid every ~40 mm, L-BFGS-B) both at ``registration_voxel_mm``; the atlas probabilities are
resampled (linear) through the composite transform onto the patient grid. Lesion voxels
(``lesion_mask``) are set to white matter (p_wm = 1): the atlas is wrong there, and
glioma cells spread through white matter, the no-flux tissue model needs them inside
the domain.

Accuracy on a held-out synthetic deformation (the 2 mm atlas deformed by a random smooth
field of amplitude 5 mm, seed 11; ``Testing/test_anatomy_tissue.py``), argmax Dice of
GM / WM / CSF inside the brain and mean absolute probability error (MAE):

====================================  ===================  ======  =======
method                                Dice GM / WM / CSF   MAE     time
====================================  ===================  ======  =======
no registration (identity)            0.847 / 0.891 / 0.809  0.094  —
affine only, 3 mm                     0.863 / 0.898 / 0.820  0.083  3 s
affine + B-spline 20 it., 4 mm (CI)   0.886 / 0.918 / 0.842  0.086  ~12 s
affine + B-spline 30 it., 3 mm        0.930 / 0.952 / 0.904  0.052  ~42 s
====================================  ===================  ======  =======

(2 CPU cores.) The defaults (3 mm, 30 iterations) are the accurate setting. The CI row is
measured on the shipped uint8 atlas (WM 0.917 on the float source maps); the others on the
float source maps, which the shipped copy matches within 0.003.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from HybridNeuroLib.anatomy.atlas import load_atlas
from HybridNeuroLib.study.registration import SAMPLING_SEED


@dataclass(frozen=True, eq=False)
class TissueEstimate:
    """Tissue probabilities on the patient's grid and the atlas → patient transform (patient points → atlas)."""

    tissue: dict[str, sitk.Image]
    transform: sitk.Transform


def _method(iterations: int) -> sitk.ImageRegistrationMethod:
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(0.3, SAMPLING_SEED)
    method.SetInterpolator(sitk.sitkLinear)
    return method


def tissue_from_atlas(patient_t1: sitk.Image, *, lesion_mask: sitk.Image | None = None,
                      registration_voxel_mm: int = 3, affine_iterations: int = 100,
                      bspline_iterations: int = 30, control_spacing_mm: float = 40.0) -> TissueEstimate:
    """Atlas tissue maps warped onto ``patient_t1``'s grid (see the module docstring)."""
    atlas = load_atlas(voxel_mm=registration_voxel_mm)
    spacing = [float(registration_voxel_mm)] * 3
    size = [int(np.ceil(n * s / registration_voxel_mm)) for n, s in zip(patient_t1.GetSize(), patient_t1.GetSpacing())]
    coarse = sitk.Resample(sitk.Cast(patient_t1, sitk.sitkFloat32), size, sitk.Transform(), sitk.sitkLinear,
                           patient_t1.GetOrigin(), spacing, patient_t1.GetDirection(), 0.0, sitk.sitkFloat32)
    fixed = sitk.SmoothingRecursiveGaussian(coarse, 0.5 * registration_voxel_mm)
    moving = atlas.t1
    affine = _method(affine_iterations)
    affine.SetOptimizerAsRegularStepGradientDescent(1.0, 1e-4, affine_iterations, relaxationFactor=0.6)
    affine.SetOptimizerScalesFromPhysicalShift()
    affine.SetShrinkFactorsPerLevel([4, 2, 1])
    affine.SetSmoothingSigmasPerLevel([2, 1, 0])
    affine.SetInitialTransform(sitk.CenteredTransformInitializer(
        fixed, moving, sitk.AffineTransform(3), sitk.CenteredTransformInitializerFilter.MOMENTS), inPlace=False)
    transform = sitk.CompositeTransform(affine.Execute(fixed, moving))
    if bspline_iterations > 0:
        mesh = [max(1, int(round(n * s / control_spacing_mm))) for n, s in zip(fixed.GetSize(), fixed.GetSpacing())]
        bspline = _method(bspline_iterations)
        bspline.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=bspline_iterations)
        bspline.SetMovingInitialTransform(transform)
        bspline.SetInitialTransform(sitk.BSplineTransformInitializer(fixed, mesh), inPlace=True)
        transform.AddTransform(bspline.Execute(fixed, moving))
    tissue = {key: sitk.Resample(image, patient_t1, transform, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
              for key, image in atlas.tissue.items()}
    if lesion_mask is not None:
        inside = sitk.GetArrayViewFromImage(sitk.Resample(lesion_mask, patient_t1, sitk.Transform(),
                                                          sitk.sitkNearestNeighbor, 0)) > 0
        for key in tissue:
            values = sitk.GetArrayFromImage(tissue[key])
            values[inside] = 1.0 if key == "wm" else 0.0
            image = sitk.GetImageFromArray(values)
            image.CopyInformation(patient_t1)
            tissue[key] = image
    return TissueEstimate(tissue, transform)
