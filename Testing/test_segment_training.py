"""train-seg: a tiny UNet trained a few steps on blob cases improves validation Dice; checkpoints resume."""

import torch

from HybridNeuroLib.cli import main
from HybridNeuroLib.segment import load_model_folder, segment_timepoint
from HybridNeuroLib.segment.training import CHECKPOINT, TrainConfig, find_study_folders, study_cases, \
    train_segmentation
from segment_cases import CONTRASTS, blob_case, one_thread, write_blob_studies  # noqa: F401 (autouse fixture)

TINY = dict(contrasts=CONTRASTS, spacing_mm=(2.0, 2.0, 2.0), roi_size=(16, 16, 16), channels=(8, 16),
            num_res_units=0, steps_per_epoch=12, batch_size=2, learning_rate=1e-2, validation_fraction=0.34)


def test_training_improves_dice_and_checkpoints_resume(tmp_path):
    cases = study_cases(find_study_folders(write_blob_studies(tmp_path / "data", 6)[0].parent), CONTRASTS)
    assert len(cases) == 6
    state = train_segmentation(cases, tmp_path / "model", TrainConfig(epochs=3, **TINY), device=torch.device("cpu"),
                               say=lambda message: None)
    assert state["epoch"] == 3 and len(state["history"]) == 3
    before, after = state["initial"]["whole_tumor"], state["best_whole_tumor_dice"]
    assert after > before + 0.3, (before, state["history"])
    checkpoint = torch.load(tmp_path / "model" / CHECKPOINT, weights_only=True)  # no pickled code
    assert checkpoint["epoch"] == 3 and "optimizer" in checkpoint

    resumed = train_segmentation(cases, tmp_path / "model", TrainConfig(epochs=4, **TINY),
                                 device=torch.device("cpu"), resume=True, say=lambda message: None)
    assert resumed["epoch"] == 4 and resumed["history"][:3] == state["history"]

    model = load_model_folder(tmp_path / "model")  # the best epoch, as a model folder
    assert model.info["validation"]["whole_tumor"] == resumed["best_whole_tumor_dice"]
    images, seg = blob_case(99)
    assert segment_timepoint(images, model).GetSize() == seg.GetSize()


def test_train_seg_command_refuses_bad_settings_and_existing_checkpoints(tmp_path, capsys):
    data = write_blob_studies(tmp_path / "data", 2)[0].parent
    assert main(["train-seg", str(data), "--out", str(tmp_path / "m"), "--epochs", "0"]) == 2
    assert "--epochs must be at least 1" in capsys.readouterr().err
    assert main(["train-seg", str(tmp_path / "nothing"), "--out", str(tmp_path / "m")]) == 2
    assert "does not exist" in capsys.readouterr().err
    args = ["train-seg", str(data), "--out", str(tmp_path / "m"), "--epochs", "1", "--steps-per-epoch", "2",
            "--roi", "16", "--channels", "4", "8", "--threads", "1"]
    assert main(args) == 0
    assert (tmp_path / "m" / "model.pt").is_file() and (tmp_path / "m" / "model.json").is_file()
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().err
