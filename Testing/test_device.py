"""The device choice: CUDA when torch can use it, the CPU with a message when it cannot, the user's choice honoured."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from HybridNeuroLib import device


@pytest.fixture
def gpu(monkeypatch):
    """A stand-in CUDA GPU of a chosen capability, seen by a torch build with kernels for sm_80 and sm_90."""
    def install(capability, arch_list=("sm_80", "sm_90"), kernel_runs=True):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=0: capability)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Test GPU")
        monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: list(arch_list))
        monkeypatch.setattr(device, "_probe_cuda", lambda name: None if kernel_runs else f"{name}: no kernel image")
        device._resolved.cache_clear()
    yield install
    device._resolved.cache_clear()


@pytest.fixture(autouse=True)
def no_device_environment(monkeypatch):
    monkeypatch.delenv(device.DEVICE_ENVIRONMENT, raising=False)
    device._resolved.cache_clear()
    yield
    device._resolved.cache_clear()


def test_a_supported_gpu_is_picked(gpu):
    gpu((9, 0))
    assert device.pick_device().type == "cuda"
    assert device.pick_device(force_cpu=True).type == "cpu"
    assert device.pick_device(preferred="cpu").type == "cpu"


def test_a_gpu_newer_than_the_torch_build_falls_back_to_the_cpu_with_a_message(gpu, capsys):
    gpu((12, 0))  # e.g. a new GPU with a torch built for sm_80/sm_90 only
    assert device.pick_device().type == "cpu"
    message = capsys.readouterr().err
    assert "computing on the CPU" in message and "compute capability 12.0" in message and "sm_90" in message
    assert device.pick_device().type == "cpu" and capsys.readouterr().err == ""  # said once
    assert "12.0" in device.device_status()["cuda"]


def test_a_gpu_whose_test_kernel_fails_falls_back_too(gpu, capsys):
    gpu((9, 0), kernel_runs=False)
    assert device.pick_device(preferred="cuda").type == "cpu"
    assert "no kernel image" in capsys.readouterr().err


def test_the_environment_variable_chooses_and_bad_values_are_refused(gpu, monkeypatch):
    gpu((8, 6))
    monkeypatch.setenv(device.DEVICE_ENVIRONMENT, "cpu")
    assert device.pick_device().type == "cpu"
    monkeypatch.setenv(device.DEVICE_ENVIRONMENT, "CUDA")
    assert device.pick_device().type == "cuda"
    monkeypatch.setenv(device.DEVICE_ENVIRONMENT, "gpu")
    with pytest.raises(ValueError, match="unknown device 'gpu'.*auto, cuda, mps, cpu"):
        device.pick_device()


def test_mps_is_used_only_when_available_and_asked_for(monkeypatch, capsys):
    monkeypatch.setattr(torch.backends.mps, "is_built", lambda: True)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert device.pick_device(preferred="mps").type == "cpu"
    assert "no Apple GPU" in capsys.readouterr().err
    device._resolved.cache_clear()
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert device.pick_device(preferred="mps").type == "mps"
    device._resolved.cache_clear()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device.pick_device().type == "cpu"  # auto never picks MPS
    assert capsys.readouterr().err == ""       # and no GPU asked for means nothing to report


def test_the_module_reports_every_choice_as_json():
    result = subprocess.run([sys.executable, "-m", "HybridNeuroLib.device"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert set(status) == {"cuda", "mps", "cpu"} and status["cpu"] == "available"
    assert status["cuda"] == ("available" if device._cuda_problem() is None else device._cuda_problem())
