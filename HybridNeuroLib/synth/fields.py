"""Random smooth fields and warps on a voxel grid (numpy arrays ``[k, j, i]``, distances in mm).

    >>> import numpy as np
    >>> from HybridNeuroLib.synth.fields import smooth_noise, random_displacement, warp
    >>> rng = np.random.default_rng(0)
    >>> field = smooth_noise((20, 20, 20), (2.0, 2.0, 2.0), correlation_mm=8.0, rng=rng)
    >>> round(float(field.std()), 6)                      # normalised to unit standard deviation
    1.0
    >>> displacement = random_displacement((20, 20, 20), (2.0, 2.0, 2.0), amplitude_mm=3.0, rng=rng)
    >>> displacement.shape, round(float(np.abs(displacement).max()), 6)
    ((3, 20, 20, 20), 3.0)
    >>> warp(np.ones((20, 20, 20)), displacement, (2.0, 2.0, 2.0)).shape
    (20, 20, 20)

Displacements are stored per array axis (k, j, i) in mm, and warps *pull*: the output at x
is the input at x + d(x), interpolated (order 1 by default). All randomness comes from the
numpy ``Generator`` passed in, so a seed reproduces the field exactly.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def smooth_noise(shape_kji, spacing_kji_mm, correlation_mm: float, rng: np.random.Generator) -> np.ndarray:
    """White noise smoothed by a Gaussian of σ = ``correlation_mm``, scaled to mean 0 and std 1 (float32)."""
    noise = rng.standard_normal(tuple(shape_kji))
    sigma = [correlation_mm / h for h in spacing_kji_mm]
    field = ndimage.gaussian_filter(noise, sigma, mode="reflect")
    field -= field.mean()
    return (field / max(float(field.std()), 1e-12)).astype(np.float32)


def random_displacement(shape_kji, spacing_kji_mm, amplitude_mm: float, rng: np.random.Generator,
                        control_spacing_mm: float = 40.0) -> np.ndarray:
    """A smooth random displacement ``[3, k, j, i]`` in mm whose largest component is ``amplitude_mm``.

    Random values on a coarse control grid (every ``control_spacing_mm``) interpolated with
    cubic splines: large-scale, diffeomorphic-looking shape changes like those between brains.
    """
    coarse = [max(3, int(round(n * h / control_spacing_mm)) + 1) for n, h in zip(shape_kji, spacing_kji_mm)]
    components = []
    for _ in range(3):
        values = rng.standard_normal(coarse)
        zoom = [n / c for n, c in zip(shape_kji, coarse)]
        components.append(ndimage.zoom(values, zoom, order=3, mode="nearest")[: shape_kji[0], : shape_kji[1],
                                                                              : shape_kji[2]])
    displacement = np.stack(components)
    peak = float(np.abs(displacement).max())
    return (displacement * (amplitude_mm / peak if peak > 0 else 0.0)).astype(np.float32)


def warp(array: np.ndarray, displacement_mm: np.ndarray, spacing_kji_mm, order: int = 1) -> np.ndarray:
    """``array`` pulled along ``displacement_mm``: out(x) = array(x + d(x)); edges clamp to the border."""
    grid = np.indices(array.shape, dtype=np.float32)
    coordinates = [grid[a] + displacement_mm[a] / spacing_kji_mm[a] for a in range(3)]
    return ndimage.map_coordinates(array, coordinates, order=order, mode="nearest").astype(array.dtype)
