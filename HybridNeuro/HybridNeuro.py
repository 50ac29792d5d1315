"""3D Slicer module of HybridNeuro: brain lesion progression with hybrid physics–neural models.

    >>> import HybridNeuro                                  # in Slicer's Python console
    >>> logic = HybridNeuro.HybridNeuroLogic()              # no widget needed
    >>> volumes = logic.loadSampleCase()
    >>> forecast = logic.predict([180], fitted=logic.fitModel(logic.segmentLesions(volumes)))

This file only registers the module. Its parts live in ``HybridNeuroModule`` (logic,
widget, dependency installer, self-test) and are re-exported here under the names
Slicer looks up: ``HybridNeuroWidget``, ``HybridNeuroLogic``, ``HybridNeuroTest``.
The engine, ``HybridNeuroLib``, is installed beside this file by the extension build.
"""

import importlib
import importlib.util
import sys
from pathlib import Path

from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.ScriptedLoadableModule import ScriptedLoadableModule


def _addSourceCheckoutToPath() -> None:
    """Developer mode: run the module straight from a source checkout.

    An installed extension has ``HybridNeuroLib`` beside this file; a checkout keeps it one
    folder up, at the repository root, which Slicer does not put on ``sys.path``.
    """
    if importlib.util.find_spec("HybridNeuroLib") is not None:
        return
    repositoryRoot = Path(__file__).resolve().parent.parent
    if (repositoryRoot / "HybridNeuroLib" / "__init__.py").is_file():
        sys.path.append(str(repositoryRoot))


def _reloadParts() -> None:
    """Developer mode's Reload re-executes this file only; re-import the parts it re-exports too."""
    from HybridNeuroModule import PARTS

    for part in PARTS:
        module = sys.modules.get(f"HybridNeuroModule.{part}")
        if module is not None:
            importlib.reload(module)


_addSourceCheckoutToPath()
_reloadParts()

from HybridNeuroLib.requirements import MINIMUM_PYTHON, MINIMUM_SLICER_VERSION  # noqa: E402
from HybridNeuroModule.Logic import HybridNeuroLogic, HybridNeuroParameterNode  # noqa: E402, F401
from HybridNeuroModule.SelfTest import HybridNeuroTest  # noqa: E402, F401
from HybridNeuroModule.Widget import HybridNeuroWidget  # noqa: E402, F401


class HybridNeuro(ScriptedLoadableModule):
    """Module metadata shown in Slicer's module list and help panel."""

    def __init__(self, parent) -> None:
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("HybridNeuro")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Neuroimaging")]
        self.parent.dependencies = []
        self.parent.contributors = ["HybridNeuro contributors (HybridNeuro project)"]  # = CMakeLists.txt
        self.parent.helpText = _(
            "Forecasts glioma growth with hybrid physics–neural models and shows the "
            "predicted tumor-cell density and lesion segmentations over the patient's scans. "
            "See the <a href=\"https://github.com/hybridneuro/SlicerHybridNeuro/blob/main/README.md\">README</a>.")
        if sys.version_info < MINIMUM_PYTHON:  # an older Slicer: say so instead of failing on the first click
            self.parent.helpText += _(" <b>This Slicer is too old: HybridNeuro needs Slicer {version} or newer "
                                      "(Python {python}).</b>").format(version=MINIMUM_SLICER_VERSION,
                                                                       python=".".join(map(str, MINIMUM_PYTHON)))
        self.parent.acknowledgementText = _(
            "Developed by the HybridNeuro contributors. Torch comes from the PyTorch extension; "
            "the engine uses MONAI, torchdiffeq and SimpleITK. Brain anatomy: the SRI24 atlas (Rohlfing et al., "
            "Hum. Brain Mapp. 2010; CC BY-SA 3.0).")
