"""The parts of the HybridNeuro Slicer module, one file per role.

    >>> from HybridNeuroModule.Logic import HybridNeuroLogic     # what ``HybridNeuro.py`` re-exports

- ``Dependencies``: first-use installer (torch from the PyTorch extension, the rest with pip).
- ``Models``: the segmentation model choice (shipped, MONAI bundle, train-seg folder) and its card.
- ``Results``: engine results into the scene (density overlay, lesion segmentation) and a
  demo lesion; Qt-free, so it also runs headless with ``slicer-core``.
- ``Logic``: the parameter node and ``HybridNeuroLogic``, usable from the Python console.
- ``Widget``: the module panel.
- ``SelfTest``: ``HybridNeuroTest``, run by ctest and by "Reload and Test".

This file imports nothing, so importing ``HybridNeuroModule.Results`` needs no Qt.
"""

PARTS: tuple[str, ...] = ("Dependencies", "Models", "Results", "Logic", "Widget", "SelfTest")
"""The parts in dependency order (each imports only parts before it), for reloading."""
