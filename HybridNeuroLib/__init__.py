"""HybridNeuro engine: hybrid physics–neural models of brain lesion progression.

    >>> import HybridNeuroLib
    >>> HybridNeuroLib.__version__
    '0.1.0'

Layers (one-way dependencies): the compute core (``geometry``, ``labels``,
``device``, ``physics``, ``cli`` …) imports torch/SimpleITK/numpy but never
slicer/qt/ctk/vtk; the MRML bridge ``HybridNeuroLib.mrml`` converts engine data to
and from MRML nodes and needs only Slicer's MRML libraries (real Slicer or the
``slicer-core`` package).
"""

__version__ = "0.1.0"
