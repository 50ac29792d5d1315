"""Progress lines (the contract with the Slicer module) and the CLI entry point."""

import subprocess
import sys

import pytest

from HybridNeuroLib import __version__
from HybridNeuroLib.cli import main
from HybridNeuroLib.progress import Progress, format_progress_line, parse_progress_line


def test_progress_lines_round_trip():
    record = parse_progress_line(format_progress_line("simulate", 3, 4))
    assert record == {"step": "simulate", "done": 3, "total": 4, "fraction": 0.75}


@pytest.mark.parametrize("line", ["simulating day 3", "HYBRIDNEURO-PROGRESS {not json",
                                  'HYBRIDNEURO-PROGRESS ["simulate"]', 'HYBRIDNEURO-PROGRESS {"done": 1}'])
def test_other_lines_are_not_progress(line):
    assert parse_progress_line(line) is None


def test_progress_reports_to_callback_and_machine_lines(capsys):
    seen = []
    with Progress("fit", total=200, enabled=False, machine_lines=True,
                  callback=lambda step, fraction: seen.append((step, fraction))) as progress:
        for _ in range(200):
            progress.advance()
    assert seen[-1] == ("fit", 1.0) and len(seen) == 200
    lines = [parse_progress_line(line) for line in capsys.readouterr().out.splitlines()]
    assert all(lines) and 50 <= len(lines) <= 101  # throttled to about one line per percent
    fractions = [line["fraction"] for line in lines]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_cli_version_and_help_from_installed_entry_point():
    result = subprocess.run([sys.executable, "-m", "HybridNeuroLib.cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and __version__ in result.stdout
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0


def test_cli_without_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err
