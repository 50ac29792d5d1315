"""The sample case is generated once into the cache and then reused."""

from __future__ import annotations

import HybridNeuroLib.synth.generator as generator
from HybridNeuroLib.study import read_study
from HybridNeuroLib.synth import sample_case


def test_sample_case_is_generated_on_demand_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("HYBRIDNEURO_CACHE", str(tmp_path))
    calls = []
    real = generator.generate_subject

    def small(seed, out_dir, **options):  # the real sample grid (2 mm) takes ~20 s; 4 mm here
        calls.append((seed, options["days"]))
        return real(seed, out_dir, **{**options, "voxel_mm": 4})

    monkeypatch.setattr(generator, "generate_subject", small)
    first = sample_case()
    assert first.name == "study" and first.parent.parent == tmp_path
    assert read_study(first).days_observed == (0.0, 60.0, 120.0)
    assert (first.parent / "truth" / "day-240" / "labels.nii.gz").is_file()
    assert sample_case() == first and len(calls) == 1          # cached: not generated again
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".sample-")]  # no staging left behind
