"""Slicer scene bundles (``.mrb``): a whole scene in one file that opens in 3D Slicer.

    >>> import os, tempfile, SimpleITK as sitk
    >>> from HybridNeuroLib.mrml import create_headless_scene, image_to_volume
    >>> from HybridNeuroLib.mrml.bundle import load_scene_bundle, save_scene_bundle
    >>> scene = create_headless_scene().scene
    >>> _ = image_to_volume(sitk.Image(4, 4, 4, sitk.sitkFloat32), scene, "T1")
    >>> path = save_scene_bundle(scene, os.path.join(tempfile.mkdtemp(), "demo.mrb"))
    >>> load_scene_bundle(path).scene.GetFirstNodeByName("T1").GetClassName()
    'vtkMRMLScalarVolumeNode'
"""

from __future__ import annotations

import os
from pathlib import Path

import slicer

from HybridNeuroLib.mrml.scene import HeadlessSlicer, create_headless_scene


def save_scene_bundle(scene: "slicer.vtkMRMLScene", path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``scene`` with all its data to the bundle ``path`` (refuses to replace a file unless ``overwrite``)."""
    path = Path(path)
    if path.suffix != ".mrb":
        raise ValueError(f"scene bundle path must end in .mrb: {path}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; choose another name or allow overwriting")
    path.parent.mkdir(parents=True, exist_ok=True)
    for i in range(scene.GetNumberOfNodes()):
        node = scene.GetNthNode(i)
        # data nodes need a storage node to be written; built-in colour tables do not
        if node.IsA("vtkMRMLStorableNode") and not node.IsA("vtkMRMLColorNode") and node.GetStorageNode() is None:
            node.AddDefaultStorageNode()
    if not scene.WriteToMRB(str(path)):
        raise OSError(f"could not write the scene bundle {path}")
    return path


def load_scene_bundle(path: str | os.PathLike) -> HeadlessSlicer:
    """Read a bundle into a new headless scene (what File > Open does in Slicer)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"scene bundle {path} does not exist")
    context = create_headless_scene()
    if not context.scene.ReadFromMRB(str(path)):
        raise OSError(f"could not read the scene bundle {path}")
    return context
