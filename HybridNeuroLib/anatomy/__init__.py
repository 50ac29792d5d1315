"""Patient anatomy: the bundled SRI24 brain atlas and tissue probability maps for a patient.

    >>> from HybridNeuroLib.anatomy import load_atlas
    >>> atlas = load_atlas(voxel_mm=4)
    >>> atlas.t1.GetSpacing(), sorted(atlas.tissue)
    ((4.0, 4.0, 4.0), ['csf', 'gm', 'wm'])

``atlas`` loads the SRI24 atlas shipped with the engine (``anatomy/sri24/``, CC BY-SA 3.0;
nothing is downloaded), ``tissue`` estimates GM/WM/CSF maps for a patient by registering the
atlas to the patient's T1 (affine, then B-spline).
"""

from HybridNeuroLib.anatomy.atlas import Atlas, atlas_folder, load_atlas
from HybridNeuroLib.anatomy.tissue import TissueEstimate, tissue_from_atlas

__all__ = ["Atlas", "TissueEstimate", "atlas_folder", "load_atlas", "tissue_from_atlas"]
