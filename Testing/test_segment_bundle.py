"""A Model Zoo-layout bundle built here round-trips through the loader; broken bundles give clear errors."""

import json

import pytest
import torch

from HybridNeuroLib.segment import load_bundle, segment_timepoint
from HybridNeuroLib.segment.model import load_model_folder
from segment_cases import blob_case, one_thread  # noqa: F401 (autouse fixture)

NETWORK_DEF = {"_target_": "SegResNet", "spatial_dims": 3, "in_channels": 4, "out_channels": 3,
               "init_filters": 8, "blocks_down": [1, 1], "blocks_up": [1]}
METADATA = {"name": "tiny BraTS test bundle", "network_data_format": {
    "inputs": {"image": {"num_channels": 4, "channel_def": {"0": "T1c", "1": "T1", "2": "T2", "3": "FLAIR"}}},
    "outputs": {"pred": {"num_channels": 3,
                         "channel_def": {"0": "Tumor core", "1": "Whole tumor", "2": "Enhancing tumor"}}}}}


def make_bundle(folder, weights=None):
    from monai.networks.nets import SegResNet

    (folder / "configs").mkdir(parents=True)
    (folder / "models").mkdir()
    (folder / "configs/inference.json").write_text(json.dumps(
        {"network_def": NETWORK_DEF, "inferer": {"_target_": "SlidingWindowInferer", "roi_size": [16, 16, 16]}}))
    (folder / "configs/metadata.json").write_text(json.dumps(METADATA))
    torch.manual_seed(0)
    network = SegResNet(**{k: v for k, v in NETWORK_DEF.items() if k != "_target_"})
    torch.save(weights if weights is not None else network.state_dict(), folder / "models/model.pt")
    return network


def test_bundle_round_trip(tmp_path):
    original = make_bundle(tmp_path / "bundle")
    model = load_bundle(tmp_path / "bundle", spacing_mm=(2.0, 2.0, 2.0))
    assert model.contrasts == ("t1c", "t1n", "t2w", "t2f")  # Zoo names mapped to BraTS 2023 keys, in order
    assert model.roi_size == (16, 16, 16) and model.spacing_mm == (2.0, 2.0, 2.0)
    for name, tensor in original.state_dict().items():
        assert torch.equal(model.network.state_dict()[name], tensor), name
    x = torch.randn(1, 4, 16, 16, 16)
    with torch.no_grad():
        assert torch.allclose(model.network(x), original.eval()(x))
    images, _ = blob_case(3)
    labels = segment_timepoint(images, model, force_cpu=True)
    assert labels.GetSize() == images["t1c"].GetSize()


def test_missing_files_are_all_listed(tmp_path):
    (tmp_path / "half" / "configs").mkdir(parents=True)
    (tmp_path / "half" / "configs/inference.json").write_text("{}")
    with pytest.raises(FileNotFoundError) as error:
        load_bundle(tmp_path / "half")
    assert "is missing configs/metadata.json, models/model.pt;" in str(error.value)


def test_corrupt_wrong_or_pickled_weights_are_refused(tmp_path):
    make_bundle(tmp_path / "corrupt")
    (tmp_path / "corrupt/models/model.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"cannot read weights .*model\.pt"):
        load_bundle(tmp_path / "corrupt")
    make_bundle(tmp_path / "wrong", weights={"conv.weight": torch.zeros(2)})
    with pytest.raises(ValueError, match="do not fit the network"):
        load_bundle(tmp_path / "wrong")
    make_bundle(tmp_path / "pickled", weights=torch.nn.Conv3d(1, 1, 1))  # a whole pickled object: code
    with pytest.raises(ValueError, match="cannot read weights"):
        load_bundle(tmp_path / "pickled")


def test_unknown_contrast_names_and_outputs_are_refused(tmp_path):
    make_bundle(tmp_path / "b")
    metadata = json.loads(json.dumps(METADATA))
    metadata["network_data_format"]["inputs"]["image"]["channel_def"]["3"] = "DWI"
    (tmp_path / "b/configs/metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match="'DWI' is not a known MRI contrast"):
        load_bundle(tmp_path / "b")
    metadata = json.loads(json.dumps(METADATA))
    metadata["network_data_format"]["outputs"]["pred"]["channel_def"] = {"0": "background", "1": "a", "2": "b"}
    (tmp_path / "b/configs/metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match="Zoo BraTS convention"):
        load_bundle(tmp_path / "b")


def test_model_folder_errors_name_the_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.json, model.pt"):
        load_model_folder(tmp_path)


def test_channel_count_mismatch_between_metadata_and_network_is_refused(tmp_path):
    make_bundle(tmp_path / "b")
    metadata = json.loads(json.dumps(METADATA))
    del metadata["network_data_format"]["inputs"]["image"]["channel_def"]["3"]
    (tmp_path / "b/configs/metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match="lists 3 input channels .* network takes 4"):
        load_bundle(tmp_path / "b")
