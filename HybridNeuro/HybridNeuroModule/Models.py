"""The segmentation model to use: the shipped one, a MONAI Model Zoo bundle folder, or a ``train-seg`` folder.

    >>> from HybridNeuroModule.Models import ModelChoice, modelCard
    >>> shipped = ModelChoice()                        # the default
    >>> shipped.syntheticOnly, shipped.segmentArguments()
    (True, {})
    >>> modelCard(shipped).splitlines()[0]
    '# synth-unet — the engine's default lesion segmentation model'
    >>> ModelChoice("bundle", "/data/brats_mri_segmentation").segmentArguments()
    {'bundleFolder': '/data/brats_mri_segmentation'}

Qt-free and torch-free: the panel shows the card of the chosen model and warns before the
synthetic-data model is used on real scans; :meth:`HybridNeuroLogic.segmentLesions` checks the
folder before starting any work. The file layouts are those the engine reads
(``HybridNeuroLib.segment.model`` and ``.bundle``, tested to agree).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import HybridNeuroLib

KINDS: dict[str, str] = {
    "shipped": "Shipped model (synthetic data only)",
    "bundle": "MONAI Model Zoo bundle folder",
    "trained": "Trained model folder (hybridneuro train-seg)",
}
SHIPPED_MODEL_FOLDER = Path(HybridNeuroLib.__file__).resolve().parent / "segment" / "models" / "synth-unet"
REQUIRED_FILES = {"bundle": ("configs/inference.json", "configs/metadata.json", "models/model.pt"),
                  "trained": ("model.json", "model.pt")}
SYNTHETIC_ATTRIBUTE = "HybridNeuro.synthetic"  # "1" on volumes of a synthetic subject (the sample case)
SYNTHETIC_WARNING = (
    "The shipped segmentation model was trained on synthetic subjects only and has never seen a real MRI scan: "
    "its lesions on {scans} are not meaningful. For real scans choose a MONAI Model Zoo bundle folder (e.g. "
    "brats_mri_segmentation) or a model trained on labelled real data (hybridneuro train-seg) under "
    "Segmentation model.")


@dataclass(frozen=True)
class ModelChoice:
    """``kind`` (a key of :data:`KINDS`) and, except for the shipped model, the model's folder."""

    kind: str = "shipped"
    folder: str = ""

    @property
    def syntheticOnly(self) -> bool:
        return self.kind == "shipped"

    @property
    def path(self) -> Path:
        return SHIPPED_MODEL_FOLDER if self.kind == "shipped" else Path(self.folder).expanduser()

    def problems(self) -> list[str]:
        """What keeps the choice from being used (unknown kind, no folder, missing files); empty if usable."""
        if self.kind not in KINDS:
            return [f"unknown segmentation model kind {self.kind!r}; choose one of {', '.join(KINDS)}"]
        if self.kind == "shipped":
            return []
        if not self.folder.strip():
            return [f"choose the folder of the {KINDS[self.kind].lower()}"]
        missing = [name for name in REQUIRED_FILES[self.kind] if not (self.path / name).is_file()]
        if missing:
            return [f"{self.path} is not a {KINDS[self.kind].lower()}: it lacks {', '.join(missing)}"]
        return []

    def segmentArguments(self) -> dict[str, str]:
        """Keyword arguments of :meth:`HybridNeuroLogic.segmentLesions` for this model."""
        return {"bundle": {"bundleFolder": self.folder}, "trained": {"modelFolder": self.folder}}.get(self.kind, {})


def modelCard(choice: ModelChoice) -> str:
    """What the panel shows about the model: its MODEL_CARD.md / README, else a summary of its metadata."""
    if choice.problems():
        return "\n".join(choice.problems())
    folder = choice.path
    for name in ("MODEL_CARD.md", "docs/README.md", "README.md"):
        if (folder / name).is_file():
            return (folder / name).read_text(encoding="utf-8", errors="replace")
    metadataFile = folder / ("configs/metadata.json" if choice.kind == "bundle" else "model.json")
    try:
        metadata = json.loads(metadataFile.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return f"{metadataFile}: cannot be read ({error})"
    fields = ("name", "version", "description", "task", "authors", "license", "copyright", "architecture",
              "contrasts", "spacing_mm", "outputs")
    lines = [f"{key}: {metadata[key]}" for key in fields if metadata.get(key) not in (None, "", [], {})]
    return "\n".join(lines) or f"{metadataFile.name} has no description"


def syntheticModelWarning(choice: ModelChoice, volumes) -> str | None:
    """The warning to show before the shipped model segments ``volumes`` that are not synthetic, else None."""
    if not choice.syntheticOnly:
        return None
    real = [node.GetName() for node in volumes if node.GetAttribute(SYNTHETIC_ATTRIBUTE) != "1"]
    if not real:
        return None
    shown = ", ".join(f"'{name}'" for name in real[:3]) + (f" and {len(real) - 3} more" if len(real) > 3 else "")
    return SYNTHETIC_WARNING.format(scans=shown)
