"""A real MRML scene outside the Slicer application (``slicer-core``), set up like Slicer's.

    >>> from HybridNeuroLib.mrml.scene import create_headless_scene
    >>> context = create_headless_scene()
    >>> context.scene.GetNodeByID("vtkMRMLColorTableNodeGrey") is not None
    True

Inside 3D Slicer, ``slicer.mrmlScene`` and the module logics already exist; this is for
the CLI (writing ``.mrb`` scene bundles) and the headless tests. It reproduces what the
application does at start-up: one application logic, with the colour, volumes,
segmentations and sequences logics attached, their Python references kept (a collected
colour logic removes the default colour nodes), the segmentation converter rules
registered, and ``slicer.mrmlScene`` pointing at the scene so ``slicer.util`` works.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field

import slicer

_HEADLESS_LOGICS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


@dataclass
class HeadlessSlicer:
    """A scene plus the logics that must live as long as it does."""

    scene: "slicer.vtkMRMLScene"
    application_logic: "slicer.vtkSlicerApplicationLogic"
    logics: dict[str, object] = field(default_factory=dict)


@contextlib.contextmanager
def rollback_on_error(scene: "slicer.vtkMRMLScene"):
    """Remove every node added inside the block if the block raises: a failed step leaves the scene as it was."""
    before = {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}
    try:
        yield
    except BaseException:
        added = [scene.GetNthNode(i) for i in range(scene.GetNumberOfNodes())]
        for node in reversed([n for n in added if n.GetID() not in before]):
            if node.GetScene() is scene:
                scene.RemoveNode(node)
        raise


COLOR_SHARE_FOLDER = "share"  # <cache>/share/ColorFiles: an empty default-colour folder (no files to load)


@functools.cache
def _cache_directory() -> str:
    """One private cache folder per process, removed when the process exits.

    It holds the sentinel that marks it as Slicer's cache, and the empty ``share/ColorFiles``
    folder the colour logic looks in (without one it prints a red "HomeDirectory is not set").
    """
    directory = tempfile.mkdtemp(prefix="hybridneuro-mrml-cache-")
    open(os.path.join(directory, ".slicer-cache"), "w").close()
    os.makedirs(os.path.join(directory, COLOR_SHARE_FOLDER, "ColorFiles"))
    atexit.register(shutil.rmtree, directory, True)
    return directory


def register_segmentation_converters() -> None:
    """Register the labelmap ⇄ closed-surface rules (Slicer's segmentations module does this)."""
    factory = slicer.vtkSegmentationConverterFactory.GetInstance()
    registered = {type(rule).__name__ for rule in factory.GetConverterRules()}
    for rule in (slicer.vtkBinaryLabelmapToClosedSurfaceConversionRule,
                 slicer.vtkClosedSurfaceToBinaryLabelmapConversionRule):
        if rule.__name__ not in registered:
            factory.RegisterConverterRule(rule())


def create_headless_scene() -> HeadlessSlicer:
    """A new scene with default colour nodes and the logics the bridge relies on."""
    scene = slicer.vtkMRMLScene()
    slicer.mrmlScene = scene
    # reading a scene bundle (.mrb) unpacks it into the cache manager's directory
    cache = slicer.vtkCacheManager()
    cache.SetRemoteCacheDirectory(_cache_directory())
    data_io = slicer.vtkDataIOManager()
    data_io.SetCacheManager(cache)
    scene.SetCacheManager(cache)
    scene.SetDataIOManager(data_io)
    application_logic = slicer.vtkSlicerApplicationLogic()
    application_logic.SetHomeDirectory(_cache_directory())
    application_logic.SetShareDirectory(COLOR_SHARE_FOLDER)
    application_logic.SetMRMLScene(scene)
    register_segmentation_converters()
    logics: dict[str, object] = {}
    for name, logic_class in (("Colors", slicer.vtkSlicerColorLogic),
                              ("Volumes", slicer.vtkSlicerVolumesLogic),
                              ("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic),
                              ("Sequences", slicer.vtkSlicerSequencesLogic)):
        logic = logic_class()
        logic.SetMRMLApplicationLogic(application_logic)
        logic.SetMRMLScene(scene)
        application_logic.SetModuleLogic(name, logic)
        logics[name] = logic
    logics["DataIO"], logics["Cache"] = data_io, cache
    context = HeadlessSlicer(scene=scene, application_logic=application_logic, logics=logics)
    _HEADLESS_LOGICS[scene] = context
    return context


def module_logic(scene: "slicer.vtkMRMLScene", name: str):
    """The ``name`` module logic ("Sequences", "Segmentations", …) serving ``scene``.

    Inside Slicer it is the application's; headless, the one :func:`create_headless_scene` made.
    """
    context = _HEADLESS_LOGICS.get(scene)
    if context is not None:
        return context.logics[name]
    application = getattr(slicer, "app", None)
    if application is not None:
        return application.applicationLogic().GetModuleLogic(name)
    raise RuntimeError(f"no {name} logic for this scene: create it with create_headless_scene() "
                       "or run inside 3D Slicer")
