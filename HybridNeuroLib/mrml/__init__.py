"""The MRML bridge: engine data (SimpleITK images, label arrays) ⇄ MRML nodes.

    >>> from HybridNeuroLib.mrml import create_headless_scene, image_to_volume, volume_to_image

Needs only Slicer's MRML libraries (the Slicer application or the ``slicer-core``
package), never Qt. Every function validates its inputs before touching the scene, so
a refused call (:class:`BridgeError`, naming the node and the problem) leaves the scene
as it was, and no function modifies the nodes it reads.
"""

from HybridNeuroLib.mrml.bundle import load_scene_bundle, save_scene_bundle
from HybridNeuroLib.mrml.display import add_density_overlay, show_density_overlay
from HybridNeuroLib.mrml.scene import HeadlessSlicer, create_headless_scene, module_logic
from HybridNeuroLib.mrml.segmentations import labels_to_segmentation, segmentation_to_labels
from HybridNeuroLib.mrml.sequences import add_time_series
from HybridNeuroLib.mrml.volumes import BridgeError, image_to_volume, volume_array, volume_geometry, volume_to_image

__all__ = [
    "BridgeError", "HeadlessSlicer", "add_density_overlay", "add_time_series", "create_headless_scene",
    "image_to_volume", "labels_to_segmentation", "load_scene_bundle", "module_logic", "save_scene_bundle",
    "segmentation_to_labels", "show_density_overlay", "volume_array", "volume_geometry", "volume_to_image",
]
