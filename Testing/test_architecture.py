"""Layering rules: the compute core never imports Slicer, Qt, CTK or VTK."""

import ast
import subprocess
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[1] / "HybridNeuroLib"
BRIDGE = ENGINE / "mrml"
FORBIDDEN = {"slicer", "qt", "ctk", "vtk", "PythonQt", "SlicerQt"}


def imported_top_level_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def core_files() -> list[Path]:
    return [p for p in ENGINE.rglob("*.py") if BRIDGE not in p.parents and "__pycache__" not in p.parts]


def test_core_sources_import_no_gui_or_mrml_library():
    offenders = {str(p.relative_to(ENGINE)): sorted(imported_top_level_modules(p) & FORBIDDEN) for p in core_files()}
    offenders = {path: names for path, names in offenders.items() if names}
    assert not offenders, f"compute-core files import Slicer/Qt/VTK: {offenders}"
    assert len(core_files()) >= 5  # the scan really looked at the engine


def test_core_modules_load_without_slicer_at_runtime():
    """Importing every core module (and the CLI) pulls in no slicer/vtk module, even indirectly."""
    modules = sorted(".".join(("HybridNeuroLib", *p.relative_to(ENGINE).with_suffix("").parts)).removesuffix(".__init__")
                     for p in core_files())
    code = ("import importlib, sys\n"
            f"for name in {modules!r}: importlib.import_module(name)\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(FORBIDDEN)!r}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ENGINE.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"loaded: {result.stdout}"


def test_the_bridge_is_the_only_engine_package_using_slicer():
    bridge_users = [p for p in BRIDGE.rglob("*.py") if "slicer" in imported_top_level_modules(p)]
    assert bridge_users, "the bridge should use slicer's MRML classes"
