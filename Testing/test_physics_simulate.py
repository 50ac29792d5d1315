"""The one-call API and the ``hybridneuro simulate`` command on a synthetic tissue folder."""

import argparse
import json

import numpy as np
import pytest
import SimpleITK as sitk

from HybridNeuroLib import cli
from HybridNeuroLib.commands import simulate as simulate_command
from HybridNeuroLib.geometry import ImageGeometry
from HybridNeuroLib.physics import GrowthParameters, Seed, TissueMaps, simulate
from physics_cases import phantom_brain

OBLIQUE = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])   # a rotated, anisotropic grid


def oblique_phantom() -> TissueMaps:
    tissue = phantom_brain(size_ijk=(30, 34, 14), spacing_mm=2.0)
    geometry = ImageGeometry((30, 34, 14), (2.0, 2.0, 5.0), (12.5, -30.25, 7.0), tuple(map(tuple, OBLIQUE)))
    return TissueMaps(gm=tissue.gm, wm=tissue.wm, csf=tissue.csf, geometry=geometry)


def centre_ras(tissue: TissueMaps) -> tuple[float, float, float]:
    ras = tissue.geometry.ijk_to_ras() @ np.array([15.0, 17.0, 7.0, 1.0])
    return tuple(float(x) for x in ras[:3])


def test_simulate_returns_images_on_the_tissue_grid_with_report():
    tissue = oblique_phantom()
    result = simulate(tissue, Seed(centre_ras(tissue), 6.0), GrowthParameters(0.3, 0.1), [20, 40], progress=False)
    assert result.days == (20.0, 40.0)
    for image in result.density + result.labels:
        assert ImageGeometry.from_image(image) == tissue.geometry
    early, late = (sitk.GetArrayFromImage(image) for image in result.density)
    assert late.sum() > early.sum() > 0 and late.max() <= 1.0 + 1e-6
    assert (late[~tissue.domain_mask(0.1)] == 0).all()
    labels = sitk.GetArrayFromImage(result.labels[1])
    assert set(np.unique(labels)) <= {0, 1, 2, 3} and (labels > 0).sum() > 0
    report = json.loads(json.dumps(result.report()))
    assert report["settings"]["parameters"]["dw_mm2_per_day"] == 0.3
    assert report["solver"]["rhs_evaluations"] == result.stats.rhs_evaluations > 0


def write_tissue(folder, tissue: TissueMaps):
    folder.mkdir()
    for name in ("gm", "wm", "csf"):
        sitk.WriteImage(tissue.geometry.image_from_array(getattr(tissue, name)), str(folder / f"{name}.nii.gz"))


def run_cli(argv):
    parser = argparse.ArgumentParser()
    simulate_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_writes_outputs_on_input_geometry_and_leaves_input_untouched(tmp_path):
    assert "simulate" in cli.COMMAND_MODULES
    tissue = oblique_phantom()
    tissue_dir, out = tmp_path / "tissue", tmp_path / "growth"
    write_tissue(tissue_dir, tissue)
    before = {path.name: path.read_bytes() for path in tissue_dir.iterdir()}
    x, y, z = centre_ras(tissue)
    argv = ["simulate", "--tissue", str(tissue_dir), "--seed-ras", str(x), str(y), str(z), "--seed-radius", "6",
            "--dw", "0.3", "--rho", "0.1", "--days", "30", "15", "--out", str(out), "--cpu"]
    assert run_cli(argv) == 0
    reference = sitk.ReadImage(str(tissue_dir / "wm.nii.gz"))
    for day in ("15", "30"):
        for stem in ("density", "seg"):
            image = sitk.ReadImage(str(out / f"{stem}_day{day}.nii.gz"))
            assert image.GetSize() == reference.GetSize()
            assert image.GetSpacing() == reference.GetSpacing()
            assert image.GetOrigin() == reference.GetOrigin()
            assert image.GetDirection() == reference.GetDirection()
    report = json.loads((out / "simulation.json").read_text())
    assert report["settings"]["parameters"] == {"dw_mm2_per_day": 0.3, "rho_per_day": 0.1, "wm_to_gm_ratio": 10.0,
                                                "tissue_threshold": 0.1}
    assert report["settings"]["initial"]["centre_ras_mm"] == [x, y, z]
    assert report["settings"]["days"] == [15.0, 30.0]
    assert report["solver"]["method"] == "rkl2" and report["solver"]["steps"] > 0 and report["wall_time_s"] > 0
    assert {path.name: path.read_bytes() for path in tissue_dir.iterdir()} == before

    with pytest.raises(FileExistsError, match="--overwrite"):
        run_cli(argv)
    assert run_cli(argv + ["--overwrite"]) == 0
    with pytest.raises(ValueError, match="inside the input folder"):
        run_cli(argv[:-4] + ["--out", str(tissue_dir / "out"), "--cpu"])
    with pytest.raises(ValueError, match="dw_mm2_per_day must be"):
        run_cli([a if a != "0.3" else "-1" for a in argv] + ["--overwrite"])
