"""Train or fine-tune a segmentation network on study folders (``hybridneuro train-seg``).

    >>> from HybridNeuroLib.segment.training import TrainConfig
    >>> TrainConfig(epochs=2).network_spec()["network"]["channels"]
    [8, 16, 32, 64]

Every timepoint with a ``seg`` image in the study folders is one case; whole studies (subjects)
are held out for validation, so no subject is on both sides. Cases are
preprocessed once (:mod:`HybridNeuroLib.segment.preprocess`) and cached (MONAI
``CacheDataset``); each step draws random patches of ``roi_size`` voxels centred on tumour
or background (2:1) with random flips. Loss: DiceCE on the three sigmoid channels (tumor
core, whole tumor, enhancing tumor). After every epoch the held-out cases are segmented by
sliding windows on the model grid and Dice is computed per BraTS label and for the whole
tumour. The output folder gets ``checkpoint.pt`` (state_dict, optimiser, epoch, history —
all ``torch.load(weights_only=True)``-loadable; ``resume=True`` continues from it) and, for
the best validation whole-tumour Dice so far, the model folder files ``model.pt`` +
``model.json`` that :func:`HybridNeuroLib.segment.load_model_folder` reads.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from HybridNeuroLib.metrics import dice

from HybridNeuroLib.segment.cases import Case, find_study_folders, study_cases  # noqa: F401 (API)
from HybridNeuroLib.segment.channels import channels_to_labels, labels_to_channels
from HybridNeuroLib.segment.model import SegmentationModel, build_network, model_spec

CHECKPOINT = "checkpoint.pt"


def collect_cases(root: str | Path, contrasts: Sequence[str]) -> list[Case]:
    """Every case under ``root``: labelled timepoints of study folders and BraTS-layout case folders."""
    from HybridNeuroLib.segment.brats import brats_cases, find_brats_cases

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"training data folder {root} does not exist")
    studies = sorted(path.parent for path in root.rglob("study.json"))
    brats = [folder for folder in find_brats_cases(root) if not any(s in folder.parents for s in studies)]
    if not studies and not brats:
        raise ValueError(f"no study folder (study.json) and no BraTS case folder (…-seg.nii.gz) under {root}")
    return (study_cases(studies, contrasts) if studies else []) + brats_cases(brats, contrasts)


@dataclass
class TrainConfig:
    """Training settings (model grid, network size, optimisation); saved in checkpoints and model.json."""

    contrasts: tuple[str, ...] = ("t1n", "t1c", "t2w", "t2f")
    spacing_mm: tuple[float, float, float] = (2.0, 2.0, 2.0)
    roi_size: tuple[int, int, int] = (48, 48, 48)
    channels: tuple[int, ...] = (8, 16, 32, 64)
    num_res_units: int = 1
    epochs: int = 15
    steps_per_epoch: int = 80
    batch_size: int = 2
    learning_rate: float = 3e-3
    validation_fraction: float = 0.2
    seed: int = 0

    def network_spec(self) -> dict:
        return {"architecture": "UNet",
                "network": {"spatial_dims": 3, "in_channels": len(self.contrasts), "out_channels": 3,
                            "channels": list(self.channels), "strides": [2] * (len(self.channels) - 1),
                            "num_res_units": int(self.num_res_units)}}

    def to_dict(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in values.items()})


def _prepared(case: Case, config: TrainConfig) -> dict:
    from HybridNeuroLib.segment.preprocess import preprocess, to_meta_tensor

    data = {"image": to_meta_tensor([case.images[key] for key in config.contrasts], what=case.name),
            "label": to_meta_tensor([case.seg], what=f"{case.name} seg")}
    return preprocess(data, config.spacing_mm, [f"{case.name} {key}" for key in config.contrasts])


def _patch_transforms(config: TrainConfig):
    from monai.transforms import Compose, RandCropByPosNegLabeld, RandFlipd, SpatialPadd

    keys = ["image", "label"]
    return Compose([SpatialPadd(keys=keys, spatial_size=config.roi_size),
                    RandCropByPosNegLabeld(keys=keys, label_key="label", spatial_size=config.roi_size,
                                           pos=2, neg=1, num_samples=1),
                    *[RandFlipd(keys=keys, prob=0.5, spatial_axis=axis) for axis in range(3)]])


def dice_scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Dice per BraTS label (1, 2, 3) and whole tumour; 1.0 where both are empty."""
    scores = {f"label{value}": dice(predicted == value, truth == value) for value in (1, 2, 3)}
    scores["whole_tumor"] = dice(predicted > 0, truth > 0)
    return scores


def validate(network: torch.nn.Module, prepared: list[dict], config: TrainConfig, device: torch.device) -> dict:
    """Mean Dice scores over prepared validation cases (on the model grid)."""
    from HybridNeuroLib.segment.inference import sliding_window_probabilities

    per_case = []
    for data in prepared:
        probabilities = sliding_window_probabilities(network, data["image"], config.roi_size, device=device)
        per_case.append(dice_scores(channels_to_labels(probabilities.numpy()),
                                    np.asarray(data["label"][0], dtype=np.uint8)))
    network.train()
    return {key: round(float(np.mean([scores[key] for scores in per_case])), 4) for key in per_case[0]}


def _save_atomic(obj, path: Path) -> None:
    temporary = path.with_name(path.name + ".partial")
    if isinstance(obj, (dict, list)) and path.suffix == ".json":
        temporary.write_text(json.dumps(obj, indent=2) + "\n")
    else:
        torch.save(obj, temporary)
    os.replace(temporary, path)


def train_segmentation(cases: list[Case], out: str | Path, config: TrainConfig, *, device: torch.device,
                       resume: bool = False, on_step: Callable[[int, int], None] | None = None,
                       say: Callable[[str], None] = lambda m: print(m, flush=True)) -> dict:
    """Train on ``cases`` into ``out``; returns the final record (best validation Dice, history)."""
    from monai.data import CacheDataset, DataLoader
    from monai.losses import DiceCELoss

    out = Path(out)
    studies = sorted({case.study for case in cases})
    if len(studies) < 2:
        raise ValueError(f"need labelled cases from at least 2 studies (one for validation), got {studies}")
    random.Random(config.seed).shuffle(studies)
    validation_studies = set(studies[:max(1, int(round(config.validation_fraction * len(studies))))])
    training = [case for case in cases if case.study not in validation_studies]
    held_out = [case for case in cases if case.study in validation_studies]
    torch.manual_seed(config.seed)
    network = build_network(config.network_spec()).to(device)
    optimiser = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    state = {"epoch": 0, "best_whole_tumor_dice": -1.0, "history": [], "initial": {}}
    checkpoint_path = out / CHECKPOINT
    if resume:
        if not checkpoint_path.is_file():
            raise FileNotFoundError(f"cannot resume: {checkpoint_path} does not exist")
        checkpoint = torch.load(checkpoint_path, map_location=device, weights_only=True)
        if {**checkpoint["config"], "epochs": config.epochs} != config.to_dict():  # only epochs may grow
            raise ValueError(f"cannot resume: {checkpoint_path} was made with other settings {checkpoint['config']}")
        network.load_state_dict(checkpoint["state_dict"])
        optimiser.load_state_dict(checkpoint["optimizer"])
        state = {key: checkpoint.get(key, state[key]) for key in state}
        say(f"resuming after epoch {state['epoch']}")
    elif checkpoint_path.exists():
        raise FileExistsError(f"{checkpoint_path} exists; resume it (--resume) or choose another output folder")
    prepared_train = [_prepared(case, config) for case in training]
    prepared_validation = [_prepared(case, config) for case in held_out]
    out.mkdir(parents=True, exist_ok=True)
    dataset = CacheDataset(prepared_train, transform=_patch_transforms(config), cache_rate=1.0, num_workers=0,
                           progress=False)
    loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, num_workers=0, drop_last=False)
    loss_function = DiceCELoss(sigmoid=True)
    if not state["initial"]:  # validation Dice before training (or fine-tuning): the baseline
        state["initial"] = validate(network, prepared_validation, config, device)
    network.train()
    total = config.epochs * config.steps_per_epoch
    for epoch in range(state["epoch"], config.epochs):
        step, losses = 0, []
        while step < config.steps_per_epoch:
            for batch in loader:
                target = torch.as_tensor(labels_to_channels(np.asarray(batch["label"][:, 0], dtype=np.uint8)),
                                         dtype=torch.float32).transpose(0, 1).to(device)
                optimiser.zero_grad()
                loss = loss_function(network(batch["image"].as_tensor().to(device)), target)
                loss.backward()
                optimiser.step()
                losses.append(loss.item())
                step += 1
                if on_step is not None:
                    on_step(epoch * config.steps_per_epoch + step, total)
                if step >= config.steps_per_epoch:
                    break
        scores = validate(network, prepared_validation, config, device)
        state["epoch"] = epoch + 1
        state["history"].append({"epoch": epoch + 1, "loss": round(float(np.mean(losses)), 5), **scores})
        say(f"epoch {epoch + 1}/{config.epochs}: loss {np.mean(losses):.4f}, validation Dice {scores}")
        if scores["whole_tumor"] > state["best_whole_tumor_dice"]:
            state["best_whole_tumor_dice"] = scores["whole_tumor"]
            model = SegmentationModel(network, config.contrasts, config.spacing_mm, config.roi_size)
            _save_atomic({k: v.detach().cpu() for k, v in network.state_dict().items()}, out / "model.pt")
            _save_atomic(model_spec(model, config.network_spec(), validation={"epoch": epoch + 1, **scores,
                                    "cases": [case.name for case in held_out]},
                                    initial=state["initial"],
                                    training={**config.to_dict(), "cases": len(training)}), out / "model.json")
        _save_atomic({"state_dict": network.state_dict(), "optimizer": optimiser.state_dict(),
                      "config": config.to_dict(), **state}, checkpoint_path)
    return state
