"""Background CLI jobs: progress lines reach the caller, results appear only on success, cancel leaves nothing."""

import time

import pytest

from HybridNeuroLib.jobs import CliJob


def _staging_folders(parent):
    return [p for p in parent.iterdir() if ".partial-" in p.name]


def test_job_reports_progress_and_publishes_the_result(tmp_path):
    records, lines = [], []
    job = CliJob(["synth", "--seed", "5", "--voxel-mm", "4", "--days", "0", "30", "60"], out=tmp_path / "subject",
                 on_progress=records.append, on_line=lines.append)
    job.start()
    assert job.wait(timeout_s=300) == 0, job.error_message()
    assert job.succeeded and job.poll() == 0  # finished jobs keep answering with their exit code
    assert (tmp_path / "subject" / "study" / "study.json").is_file()
    assert not _staging_folders(tmp_path)
    fractions = [record["fraction"] for record in records]
    assert len(fractions) >= 3 and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(record["step"] == "synth" for record in records)
    assert any("study" in line for line in lines)  # ordinary output goes to on_line, not on_progress


def test_cancel_stops_the_process_tree_and_keeps_no_partial_result(tmp_path):
    job = CliJob(["synth", "--seed", "5", "--voxel-mm", "2"], out=tmp_path / "subject")
    job.start()
    deadline = time.monotonic() + 120
    while job.progress is None and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # wait until it is really working (first progress line)
    job.cancel()
    code = job.wait(timeout_s=60)
    assert code != 0 and job.cancelled and not job.succeeded
    assert not (tmp_path / "subject").exists()
    assert not _staging_folders(tmp_path)
    assert "cancelled" in job.error_message()
    assert job._process.poll() is not None  # the child has exited


def test_failure_reports_the_command_error_and_writes_nothing(tmp_path):
    job = CliJob(["simulate", "--tissue", str(tmp_path / "missing"), "--seed-ras", "0", "0", "0",
                  "--dw", "0.5", "--rho", "0.05", "--days", "30"], out=tmp_path / "growth")
    job.start()
    assert job.wait(timeout_s=120) == 2
    assert "missing" in job.error_message() and "hybridneuro simulate failed" in job.error_message()
    assert not (tmp_path / "growth").exists() and not _staging_folders(tmp_path)


def test_an_existing_output_folder_is_refused_before_starting(tmp_path):
    (tmp_path / "done").mkdir()
    with pytest.raises(FileExistsError, match="done"):
        CliJob(["demo"], out=tmp_path / "done")
