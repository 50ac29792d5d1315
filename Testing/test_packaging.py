"""The Slicer extension's build files list everything it needs; its catalog entry is valid.

    $ .venv/bin/python -m pytest Testing/test_packaging.py -q

No Slicer SDK is available here, so the CMake files are read as text by a small parser of
CMake's command syntax and evaluated the way the Slicer/CTK macros use them:
``slicerMacroBuildScriptedModule`` copies each listed path relative to the module folder,
``ctkMacroCompilePythonScript`` copies each listed path relative to its ``SOURCE_DIR`` to
``DESTINATION_DIR/<same relative path>``. Anything not listed is not installed, which
shows up only when a user runs the installed extension.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULE_DIR = ROOT / "HybridNeuro"
ENGINE_DIR = ROOT / "HybridNeuroLib"
ICON = MODULE_DIR / "Resources" / "Icons" / "HybridNeuro.png"

# Keys allowed by slicer-extension-catalog-entry-schema v1.0.1 ("additionalProperties": false).
CATALOG_KEYS = {"$schema", "category", "scm_url", "scm_revision", "scm_type", "build_dependencies",
                "build_subdirectory", "enabled", "tier"}


# -- a small reader of CMake's command syntax ---------------------------------------
@dataclass
class Command:
    name: str
    args: list[str]  # raw arguments; quoted ones keep no quotes


def parse_cmake(text: str) -> list[Command]:
    """The commands of a CMake file: ``name(arg arg "quoted arg" ...)``, comments dropped."""
    commands, i, n = [], 0, len(text)
    while i < n:
        if text[i] == "#":
            i = text.find("\n", i)
            i = n if i < 0 else i
            continue
        match = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\s*\(").match(text, i)
        if not match:
            i += 1
            continue
        name, i = match.group().rstrip("( \t\n").strip(), match.end()
        args, token, depth = [], None, 0
        while True:
            char = text[i]
            if char == '"':
                end = i + 1
                while text[end] != '"':
                    end += 2 if text[end] == "\\" else 1
                args.append(text[i + 1:end])
                i = end + 1
            elif char == "#":
                i = text.find("\n", i)
            elif char.isspace() or (char == ")" and depth == 0):
                if token is not None:
                    args.append(token)
                    token = None
                i += 1
                if char == ")":
                    break
            else:
                depth += {"(": 1, ")": -1}.get(char, 0)
                token = (token or "") + char
                i += 1
        commands.append(Command(name.lower(), args))
    return commands


def evaluate(commands: list[Command], variables: dict[str, str]) -> list[Command]:
    """Apply ``set()`` in order and expand ``${VAR}`` in every argument; lists split on ';'."""
    def expand(arg: str) -> list[str]:
        previous = None
        while previous != arg:
            previous, arg = arg, re.sub(r"\$\{(\w+)\}", lambda m: variables.get(m.group(1), ""), arg)
        return [item for item in arg.split(";") if item]

    expanded = []
    for command in commands:
        args = [item for arg in command.args for item in expand(arg)]
        if command.name == "set" and args:
            variables[args[0]] = ";".join(args[1:])
        expanded.append(Command(command.name, args))
    return expanded


def keyword_args(args: list[str], keywords: set[str]) -> dict[str, list[str]]:
    """Group macro arguments by keyword, as cmake_parse_arguments does."""
    groups: dict[str, list[str]] = {}
    current = None
    for arg in args:
        if arg in keywords:
            current = arg
            groups.setdefault(arg, [])
        elif current is not None:
            groups[current].append(arg)
    return groups


def read_cmake(path: Path, **variables: str) -> list[Command]:
    return evaluate(parse_cmake(path.read_text(encoding="utf-8")), dict(variables))


# -- what the build files install -------------------------------------------------
@dataclass
class Installed:
    scripts: set[Path]  # absolute source paths
    resources: set[Path]
    engine_call: dict[str, list[str]]


@pytest.fixture(scope="module")
def installed() -> Installed:
    commands = read_cmake(MODULE_DIR / "CMakeLists.txt", CMAKE_CURRENT_SOURCE_DIR=str(MODULE_DIR),
                          Slicer_QTSCRIPTEDMODULES_LIB_DIR="lib/Slicer-X.Y/qt-scripted-modules",
                          Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR="./lib/Slicer-X.Y/qt-scripted-modules",
                          CMAKE_BINARY_DIR="/build")
    module_calls = [c for c in commands if c.name == "slicermacrobuildscriptedmodule"]
    assert len(module_calls) == 1, "HybridNeuro/CMakeLists.txt must call slicerMacroBuildScriptedModule once"
    module = keyword_args(module_calls[0].args, {"NAME", "SCRIPTS", "RESOURCES", "WITH_GENERIC_TESTS"})
    assert module["NAME"] == ["HybridNeuro"]
    assert "WITH_GENERIC_TESTS" in module

    engine_calls = [keyword_args(c.args, {"TARGET_NAME", "SCRIPTS", "RESOURCES", "SOURCE_DIR", "DESTINATION_DIR",
                                          "INSTALL_DIR", "NO_INSTALL_SUBDIR", "GLOBAL_TARGET"})
                    for c in commands if c.name == "ctkmacrocompilepythonscript"]
    assert len(engine_calls) == 1, "HybridNeuroLib must be installed by one ctkMacroCompilePythonScript call"
    engine = engine_calls[0]
    source_dir = Path(engine["SOURCE_DIR"][0]).resolve()

    scripts = {(MODULE_DIR / s).resolve() for s in module["SCRIPTS"]}
    scripts |= {(source_dir / s).resolve() for s in engine["SCRIPTS"]}
    resources = {(MODULE_DIR / r).resolve() for r in module.get("RESOURCES", [])}
    resources |= {(source_dir / r).resolve() for r in engine.get("RESOURCES", [])}
    return Installed(scripts, resources, engine)


def relative(paths) -> list[str]:
    return sorted(str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p) for p in paths)


def test_every_python_file_of_module_and_engine_is_listed(installed):
    on_disk = {p.resolve() for folder in (MODULE_DIR, ENGINE_DIR) for p in folder.rglob("*.py")
               if "__pycache__" not in p.parts}
    missing = on_disk - installed.scripts
    assert not missing, ("not listed in HybridNeuro/CMakeLists.txt, so not installed with the extension "
                         f"(add them to MODULE_PYTHON_SCRIPTS or ENGINE_PYTHON_SCRIPTS): {relative(missing)}")


def test_every_resource_is_listed(installed):
    on_disk = {p.resolve() for p in (MODULE_DIR / "Resources").rglob("*") if p.is_file()}
    missing = on_disk - installed.resources
    assert not missing, f"not listed in MODULE_PYTHON_RESOURCES: {relative(missing)}"


def test_every_engine_data_file_is_listed(installed):
    # files the engine reads at run time (tables, templates…) must travel with it too
    on_disk = {p.resolve() for p in ENGINE_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts
               and p.suffix not in {".py", ".pyc"}}
    missing = on_disk - installed.resources
    assert not missing, f"not listed in ENGINE_PYTHON_RESOURCES: {relative(missing)}"


def test_nothing_listed_is_missing_on_disk(installed):
    absent = {p for p in installed.scripts | installed.resources if not p.is_file()}
    assert not absent, f"listed in HybridNeuro/CMakeLists.txt but not on disk: {relative(absent)}"


def test_engine_lands_beside_the_module_keeping_its_package_folders(installed):
    engine = installed.engine_call
    assert Path(engine["SOURCE_DIR"][0]).resolve() == ENGINE_DIR.resolve()
    # ctkMacroCompilePythonScript copies SOURCE_DIR/<path> to DESTINATION_DIR/<path>:
    # paths must stay inside the package (no "..", not absolute) ...
    for path in engine["SCRIPTS"] + engine.get("RESOURCES", []):
        assert not PurePosixPath(path).is_absolute() and ".." not in PurePosixPath(path).parts, path
    # ... and the package folder must sit in the scripted-modules folder, beside HybridNeuro.py,
    # in the build tree (ctest) and in the install tree (users).
    assert engine["DESTINATION_DIR"] == ["/build/lib/Slicer-X.Y/qt-scripted-modules/HybridNeuroLib"]
    assert engine["INSTALL_DIR"] == ["./lib/Slicer-X.Y/qt-scripted-modules/HybridNeuroLib"]
    # without it, install(DIRECTORY) would nest the folder: .../HybridNeuroLib/HybridNeuroLib/
    assert "NO_INSTALL_SUBDIR" in engine


def test_module_self_test_is_registered_with_ctest():
    commands = read_cmake(MODULE_DIR / "CMakeLists.txt")
    inside_testing, registered = False, False
    for command in commands:
        if command.name == "if":
            inside_testing = command.args == ["BUILD_TESTING"]
        elif command.name == "endif":
            inside_testing = False
        elif command.name == "slicer_add_python_unittest":
            registered |= inside_testing and command.args == ["SCRIPT", "HybridNeuro.py"]
    assert registered, "expected slicer_add_python_unittest(SCRIPT HybridNeuro.py) inside if(BUILD_TESTING)"


# -- extension-level CMake ---------------------------------------------------------
@pytest.fixture(scope="module")
def top_level() -> tuple[list[Command], dict[str, str]]:
    variables: dict[str, str] = {}
    return evaluate(parse_cmake((ROOT / "CMakeLists.txt").read_text(encoding="utf-8")), variables), variables


def test_top_level_cmake_follows_the_extension_template(top_level):
    commands, _ = top_level
    calls = [(c.name, c.args) for c in commands if c.name != "set"]
    assert calls[:2] == [("cmake_minimum_required", ["VERSION", "3.16.3...3.19.7", "FATAL_ERROR"]),
                         ("project", ["HybridNeuro"])]
    # the Slicer extension sequence, in this order (other commands may come between)
    text = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    steps = [r"find_package\(Slicer REQUIRED\)", r"include\(\$\{Slicer_USE_FILE\}\)",
             r"add_subdirectory\(HybridNeuro\)", r"include\(\$\{Slicer_EXTENSION_GENERATE_CONFIG\}\)",
             r"include\(\$\{Slicer_EXTENSION_CPACK\}\)"]
    positions = [re.search(rf"^{step}", text, flags=re.MULTILINE) for step in steps]
    assert all(positions), [step for step, found in zip(steps, positions) if not found]
    assert [m.start() for m in positions] == sorted(m.start() for m in positions), "steps out of order"


def test_extension_metadata(top_level):
    _, variables = top_level
    for key in ("HOMEPAGE", "CATEGORY", "CONTRIBUTORS", "DESCRIPTION", "ICONURL", "SCREENSHOTURLS"):
        assert variables.get(f"EXTENSION_{key}"), f"EXTENSION_{key} is empty"
    assert variables["EXTENSION_DEPENDS"].split(";") == ["PyTorch"]
    # the icon URL must point at the icon in this repository (raw file on the main branch)
    assert variables["EXTENSION_ICONURL"].endswith("/main/" + ICON.relative_to(ROOT).as_posix())
    assert variables["EXTENSION_ICONURL"].startswith("https://raw.githubusercontent.com/")
    # and every screenshot URL at an image that exists in the repository
    for url in variables["EXTENSION_SCREENSHOTURLS"].split():
        assert (ROOT / url.split("/main/", 1)[1]).is_file(), url
    assert ICON.is_file()


def test_catalog_entry(top_level):
    _, variables = top_level
    entry = json.loads((ROOT / "HybridNeuro.json").read_text(encoding="utf-8"))
    assert set(entry) <= CATALOG_KEYS, f"keys the catalog schema rejects: {sorted(set(entry) - CATALOG_KEYS)}"
    assert re.fullmatch(r"https://raw\.githubusercontent\.com/Slicer/Slicer/main/Schemas/"
                        r"slicer-extension-catalog-entry-schema-v1\.0\.\d+\.json#?", entry["$schema"])
    assert entry["build_dependencies"] == ["PyTorch"]
    assert entry["build_dependencies"] == variables["EXTENSION_DEPENDS"].split(";")
    assert entry["category"] == variables["EXTENSION_CATEGORY"]
    assert entry["scm_url"].startswith("https://github.com/")
    assert entry["scm_revision"] == "main"
    assert isinstance(entry["tier"], int) and 1 <= entry["tier"] <= 5
    # the ExtensionsIndex names the entry after the extension (the CMake project), which must
    # not start with "Slicer"
    project = next(c.args[0] for c in top_level[0] if c.name == "project")
    assert project == "HybridNeuro" and not project.startswith("Slicer")


def test_module_ui_is_well_formed_qt_designer_xml():
    root = ElementTree.parse(MODULE_DIR / "Resources" / "UI" / "HybridNeuro.ui").getroot()
    assert root.tag == "ui"
    top = root.find("widget")
    assert top is not None and top.get("class") == "qMRMLWidget" and top.get("name") == "HybridNeuro"


def test_icon_is_a_128_pixel_png():
    data = ICON.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (128, 128)


# -- the reader itself ----------------------------------------------------------------
def test_cmake_reader_handles_quotes_comments_and_lists():
    commands = evaluate(parse_cmake('set(A x.py) # set(B no)\nset(L ${A} "b c.py;d.py" "(e)")\n'
                                    'foo(${L} "#not a comment")\n'), {})
    assert [c.name for c in commands] == ["set", "set", "foo"]
    assert commands[2].args == ["x.py", "b c.py", "d.py", "(e)", "#not a comment"]


def test_every_engine_dependency_is_installed_inside_slicer_too():
    """A package pinned for the CLI but missing from the Slicer list fails only inside Slicer, at import."""
    import tomllib

    from packaging.requirements import Requirement

    from HybridNeuroLib.requirements import SLICER_REQUIREMENTS

    pinned = {Requirement(r).name.lower() for r in
              tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    provided_by_slicer = {"torch", "simpleitk", "numpy"}   # PyTorch extension; Slicer's own
    assert pinned - provided_by_slicer == {Requirement(r).name.lower() for r in SLICER_REQUIREMENTS}


# -- honest metadata: what the index shows must be true and must resolve ------------------------
def test_urls_point_at_files_of_this_repository(top_level):
    _, variables = top_level
    entry = json.loads((ROOT / "HybridNeuro.json").read_text(encoding="utf-8"))
    repository = entry["scm_url"].removesuffix(".git")
    assert variables["EXTENSION_HOMEPAGE"].startswith(repository + "/blob/main/")
    raw = repository.replace("https://github.com/", "https://raw.githubusercontent.com/") + "/main/"
    for url in [variables["EXTENSION_HOMEPAGE"].replace(repository + "/blob/main/", raw),
                variables["EXTENSION_ICONURL"], *variables["EXTENSION_SCREENSHOTURLS"].split()]:
        assert url.startswith(raw), url
        assert (ROOT / url.removeprefix(raw).split("#")[0]).is_file(), f"{url}: no such file in the repository"


def test_description_and_contributors_claim_only_what_exists(top_level):
    _, variables = top_level
    description = variables["EXTENSION_DESCRIPTION"].lower()
    for disease, package in (("stroke", "stroke"), ("alzheimer", "alzheimer")):
        if not (ENGINE_DIR / package).is_dir():  # a disease is advertised once its engine package exists
            assert disease not in description, f"the description advertises {disease}, which is not built yet"
    assert "glioma" in description and "not for clinical use" in description
    contributors = [c.strip() for c in variables["EXTENSION_CONTRIBUTORS"].split(",")]
    assert contributors and all(re.fullmatch(r"[^()]+ \([^()]+\)", c) for c in contributors), contributors
    module = (MODULE_DIR / "HybridNeuro.py").read_text(encoding="utf-8")
    assert f'self.parent.contributors = {contributors!r}'.replace("'", '"') in module


def test_minimum_slicer_version_agrees_everywhere(top_level):
    import tomllib

    from packaging.specifiers import SpecifierSet

    from HybridNeuroLib.requirements import MINIMUM_PYTHON, MINIMUM_SLICER_VERSION

    commands, variables = top_level
    assert variables["HYBRIDNEURO_MINIMUM_SLICER_VERSION"] == MINIMUM_SLICER_VERSION
    text = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    assert re.search(r"if\(Slicer_VERSION VERSION_LESS HYBRIDNEURO_MINIMUM_SLICER_VERSION\)\s*message\(FATAL_ERROR", text)
    assert text.index("find_package(Slicer REQUIRED)") < text.index("if(Slicer_VERSION VERSION_LESS")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    stated = set(re.findall(r"Slicer (\d+\.\d+) or newer", readme))
    assert stated == {MINIMUM_SLICER_VERSION}, f"README states {stated or 'no'} minimum Slicer version"
    requires = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    assert ".".join(map(str, MINIMUM_PYTHON)) in requires and "3.10" not in requires  # engine and pyproject agree
    # Slicer 5.10 ships Python 3.12, which must satisfy the engine's minimum
    assert "3.12" in requires and (3, 12) >= MINIMUM_PYTHON


def test_the_engine_does_not_run_on_the_python_of_older_slicers():
    """Why the minimum is not lower: Slicer ≤ 5.8 ships Python 3.9, and the engine uses 3.10 syntax."""
    import ast

    too_new = []
    for path in sorted(ENGINE_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance" and len(node.args) == 2
                    and isinstance(node.args[1], ast.BinOp) and isinstance(node.args[1].op, ast.BitOr)):
                too_new.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    # if this list becomes empty, check whether an older Slicer (Python 3.9) could be supported
    assert too_new, "no Python >= 3.10 construct found: the minimum Slicer version may be too strict"
