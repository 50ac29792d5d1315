"""The Slicer module's code, its .ui file and its parameter node agree; its logic runs headless.

    $ .venv/bin/python -m pytest Testing/test_module_ui.py -q

The module cannot be imported here (no Qt, no ``slicer.app``), so its source is read with
``ast``: a widget name the code uses but the .ui lacks, or a ``SlicerParameterName`` that
names no parameter, fails only when a user opens the module in Slicer. The Qt-free part
(``HybridNeuroModule.Results``, the logic behind "Create demo overlay") runs for real on a
``slicer-core`` scene, and the dependency installer runs against stand-ins of Slicer's
installers.
"""

from __future__ import annotations

import ast
import importlib.machinery
import py_compile
import sys
import types
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULE_DIR = ROOT / "HybridNeuro"
UI_FILE = MODULE_DIR / "Resources" / "UI" / "HybridNeuro.ui"
MODULE_SOURCES = sorted([MODULE_DIR / "HybridNeuro.py", *(MODULE_DIR / "HybridNeuroModule").glob("*.py")])

# Packages installed on first use: importing them when Slicer loads the module would fail
# (or install them) at start-up.
FIRST_USE_PACKAGES = {"torch", "monai", "torchdiffeq", "einops", "PyTorchUtils"}


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@pytest.fixture(scope="module")
def ui() -> ElementTree.Element:
    return ElementTree.parse(UI_FILE).getroot()


def ui_widget_names(ui: ElementTree.Element) -> set[str]:
    return {widget.get("name") for widget in ui.iter("widget")}


def ui_parameter_bindings(ui: ElementTree.Element) -> dict[str, str]:
    """Widget name → the parameter its SlicerParameterName property names."""
    bindings = {}
    for widget in ui.iter("widget"):
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bindings[widget.get("name")] = prop.findtext("string")
    return bindings


def names_used_by_code() -> dict[str, list[str]]:
    """Widget names the module code looks up → where: ``self.ui.<name>`` and ``findChild(..., "<name>")``."""
    used: dict[str, list[str]] = {}
    for path in MODULE_SOURCES:
        for node in ast.walk(parse(path)):
            name = None
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                    and node.value.attr == "ui" and isinstance(node.value.value, ast.Name)
                    and node.value.value.id == "self"):
                name = node.attr
            elif isinstance(node, ast.Call):
                function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                strings = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                if function == "findChild" and strings:
                    name = strings[-1]
            if name is not None:
                used.setdefault(name, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return used


def parameter_fields() -> dict[str, list[str]]:
    """Fields of every ``@parameterNodeWrapper`` class in the module code, by class name."""
    classes = {}
    for path in MODULE_SOURCES:
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.ClassDef) and any(
                    (isinstance(d, ast.Name) and d.id == "parameterNodeWrapper")
                    or (isinstance(d, ast.Attribute) and d.attr == "parameterNodeWrapper")
                    for d in node.decorator_list):
                classes[node.name] = [s.target.id for s in node.body
                                      if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)]
    return classes


# -- code ⇄ .ui ⇄ parameter node ---------------------------------------------------
def test_every_widget_the_code_uses_exists_in_the_ui(ui):
    used = names_used_by_code()
    assert used, "no self.ui.<name> found: the reader of the module code is broken"
    missing = {name: where for name, where in used.items() if name not in ui_widget_names(ui)}
    assert not missing, f"widgets used by the code but absent from {UI_FILE.name}: {missing}"


def test_every_bound_widget_names_a_parameter(ui):
    classes = parameter_fields()
    assert list(classes) == ["HybridNeuroParameterNode"]
    fields = set(classes["HybridNeuroParameterNode"])
    bindings = ui_parameter_bindings(ui)
    assert bindings, "no widget is bound to the parameter node"
    # "pack.member" binds a member of a parameterPack field: its first part must be a field
    unknown = {widget: name for widget, name in bindings.items() if name.split(".")[0] not in fields}
    assert not unknown, f"SlicerParameterName values that are not fields of HybridNeuroParameterNode {sorted(fields)}: {unknown}"


def test_node_selectors_receive_the_scene(ui):
    # a qMRML widget not connected to the top widget's mrmlSceneChanged signal lists no nodes
    top = ui.find("widget")
    connected = {c.findtext("receiver") for c in ui.iter("connection")
                 if c.findtext("sender") == top.get("name") and c.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)"
                 and c.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"}
    selectors = {w.get("name") for w in top.iter("widget") if w is not top and w.get("class").startswith("qMRML")}
    assert selectors and selectors <= connected, f"not connected to mrmlSceneChanged: {sorted(selectors - connected)}"


def test_ui_file_the_code_loads_exists():
    loaded = [arg.value for path in MODULE_SOURCES for node in ast.walk(parse(path))
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "resourcePath"
              for arg in node.args if isinstance(arg, ast.Constant) and str(arg.value).endswith(".ui")]
    assert loaded == ["UI/HybridNeuro.ui"]
    assert (MODULE_DIR / "Resources" / loaded[0]).is_file()


def test_module_file_exposes_what_slicer_looks_up():
    # Slicer finds <Module>, <Module>Widget, <Module>Logic and <Module>Test by name in HybridNeuro.py
    tree = parse(MODULE_DIR / "HybridNeuro.py")
    bound = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.ImportFrom):
            bound |= {alias.asname or alias.name for alias in node.names}
    assert {"HybridNeuro", "HybridNeuroWidget", "HybridNeuroLogic", "HybridNeuroTest"} <= bound
    module_class = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "HybridNeuro")
    assert [ast.unparse(b) for b in module_class.bases] == ["ScriptedLoadableModule"]


def source_of(module: str) -> Path | None:
    """The file of one of our modules (``HybridNeuroLib…`` or ``HybridNeuroModule…``), else None."""
    parts = module.split(".")
    base = {"HybridNeuroLib": ROOT, "HybridNeuroModule": MODULE_DIR}.get(parts[0])
    if base is None:
        return None
    path = base.joinpath(*parts)
    return next((p for p in (path.with_suffix(".py"), path / "__init__.py") if p.is_file()), None)


def load_time_imports(path: Path, package: str) -> set[str]:
    """Modules imported by the module-level statements of ``path`` (function bodies run later)."""
    names = set()
    for node in parse(path).body:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}  # "from pkg import submodule"
    # importing a.b.c runs a/__init__.py and a/b/__init__.py too
    return {".".join(name.split(".")[:i + 1]) for name in names for i in range(len(name.split(".")))}


def test_loading_the_module_imports_no_first_use_package():
    # Slicer imports HybridNeuro.py at start-up; follow our own imports from there
    seen, pending, reached = set(), [("HybridNeuro", MODULE_DIR / "HybridNeuro.py")], set()
    while pending:
        name, path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for imported in load_time_imports(path, package):
            reached.add(imported)
            source = source_of(imported)
            if source is not None:
                pending.append((imported, source))
    assert "HybridNeuroModule.Widget" in reached and "HybridNeuroLib.labels" in reached  # the walk works
    offenders = sorted(name for name in reached if name.split(".")[0] in FIRST_USE_PACKAGES)
    assert not offenders, f"imported when Slicer loads the module, before the user agreed to install: {offenders}"


@pytest.mark.parametrize("path", MODULE_SOURCES, ids=lambda p: p.name)
def test_module_code_compiles(path, tmp_path):
    py_compile.compile(str(path), cfile=str(tmp_path / "out.pyc"), doraise=True)


# -- the logic behind "Create demo overlay", on a real MRML scene ----------------------
@pytest.fixture
def results(monkeypatch):
    monkeypatch.syspath_prepend(str(MODULE_DIR))
    from HybridNeuroModule import Results

    return Results


def test_demo_density_is_centred_and_scaled_in_millimetres(results):
    from conftest import make_oblique_image
    from HybridNeuroLib.geometry import ImageGeometry

    geometry = ImageGeometry.from_image(make_oblique_image())  # 11×9×7 voxels of 0.9×1.1×3.0 mm
    density = results.gaussianDensity(geometry, radiusMm=2.7)
    assert density.shape == geometry.shape_kji and density.dtype == np.float32
    assert density[3, 4, 5] == pytest.approx(1.0)                               # the centre voxel
    assert density[3, 4, 8] == pytest.approx(results.EDEMA_THRESHOLD, rel=1e-5)  # 3 × 0.9 mm = the radius
    assert density[3, 4, 2] == pytest.approx(results.EDEMA_THRESHOLD, rel=1e-5)
    assert density[4, 4, 5] < results.EDEMA_THRESHOLD                           # 3.0 mm: outside
    with pytest.raises(ValueError, match="positive"):
        results.gaussianDensity(geometry, radiusMm=0.0)


def test_density_labels_follow_the_brats_convention():
    from HybridNeuroLib.labels import density_to_labels

    density = np.array([0.0, 0.24, 0.25, 0.64, 0.65, 0.94, 0.95, 1.0], np.float32)
    # 0 background, 2 edema (SNFH), 3 enhancing tumor (ET), 1 necrotic core (NETC)
    assert density_to_labels(density).tolist() == [0, 0, 2, 2, 3, 3, 1, 1]


def test_demo_overlay_adds_density_and_segmentation_and_leaves_the_input_alone(results, mrml):
    import SimpleITK as sitk

    from conftest import make_oblique_image
    from HybridNeuroLib.labels import BRATS_LABELS, density_to_labels
    from HybridNeuroLib.mrml import image_to_volume, segmentation_to_labels, volume_array, volume_geometry

    scene = mrml.scene
    source = make_oblique_image(shape_kji=(15, 21, 25))
    source.SetSpacing((1.0, 1.5, 2.0))
    scan = image_to_volume(source, scene, "T1")
    voxels_before, geometry_before = volume_array(scan), volume_geometry(scan)
    modified_before = scan.GetMTime(), scan.GetImageData().GetMTime()
    volumes_before = scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")

    density, lesion = results.createDemoOverlay(scan, lesionRadiusMm=8.0)

    assert scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode") == volumes_before + 1
    assert scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == 1
    assert (density.GetName(), lesion.GetName()) == ("T1 demo density", "T1 demo lesion")
    assert volume_geometry(density) == geometry_before
    values = volume_array(density)
    assert values[7, 10, 12] == pytest.approx(1.0) and values.min() >= 0.0
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")):
        composite = scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
        assert (composite.GetBackgroundVolumeID(), composite.GetForegroundVolumeID()) == (scan.GetID(), density.GetID())

    segmentation = lesion.GetSegmentation()
    names = [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]
    assert names == [label.name for label in BRATS_LABELS]
    labels = sitk.GetArrayFromImage(segmentation_to_labels(lesion, scan))
    np.testing.assert_array_equal(labels, density_to_labels(values))
    assert set(np.unique(labels).tolist()) == {0, 1, 2, 3}

    # the input is only read
    np.testing.assert_array_equal(volume_array(scan), voxels_before)
    assert volume_geometry(scan) == geometry_before
    assert (scan.GetMTime(), scan.GetImageData().GetMTime()) == modified_before
    assert scan.GetName() == "T1"

    # a second demo gets new, distinct names rather than two nodes called the same
    density2, lesion2 = results.createDemoOverlay(scan, lesionRadiusMm=4.0)
    assert density2.GetName() != density.GetName() and lesion2.GetName() != lesion.GetName()


def test_demo_overlay_refuses_a_bad_radius_without_touching_the_scene(results, mrml):
    from conftest import make_oblique_image
    from HybridNeuroLib.mrml import image_to_volume

    scan = image_to_volume(make_oblique_image(), mrml.scene, "T1")
    count = mrml.scene.GetNumberOfNodes()
    with pytest.raises(ValueError, match="radius"):
        results.createDemoOverlay(scan, lesionRadiusMm=-1.0)
    assert mrml.scene.GetNumberOfNodes() == count


# -- the dependency installer, against stand-ins of Slicer's installers ---------------------
@pytest.fixture
def installer(monkeypatch):
    """``HybridNeuroModule.Dependencies`` with ``slicer.i18n`` and ``slicer.packaging`` stubbed; returns (module, calls)."""
    import slicer

    calls: list[tuple] = []
    i18n = types.ModuleType("slicer.i18n")
    i18n.tr = lambda text: text
    packaging = types.ModuleType("slicer.packaging")
    packaging.__spec__ = importlib.machinery.ModuleSpec("slicer.packaging", None)
    packaging.pip_ensure = lambda requirements, **options: calls.append(("pip_ensure", list(requirements), options))
    for name, stub in (("i18n", i18n), ("packaging", packaging)):
        monkeypatch.setitem(sys.modules, f"slicer.{name}", stub)
        monkeypatch.setattr(slicer, name, stub, raising=False)
    monkeypatch.syspath_prepend(str(MODULE_DIR))
    forget_module_code()
    import HybridNeuroModule.Dependencies as dependencies

    yield dependencies, calls
    forget_module_code()  # it was bound to the stand-ins


def fake_pytorch_utils(calls: list, returns=object()) -> types.ModuleType:
    module = types.ModuleType("PyTorchUtils")

    class PyTorchUtilsLogic:
        def installTorch(self, **options):
            calls.append(("installTorch", options))
            return returns

    module.PyTorchUtilsLogic = PyTorchUtilsLogic
    return module


def test_installer_gets_torch_from_the_pytorch_extension_first(installer, monkeypatch):
    dependencies, calls = installer
    from HybridNeuroLib.requirements import MINIMUM_TORCH_VERSION, SLICER_REQUIREMENTS

    monkeypatch.setattr(dependencies, "installedVersion", lambda name: None)  # nothing installed
    monkeypatch.setitem(sys.modules, "PyTorchUtils", fake_pytorch_utils(calls))
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    dependencies.ensureDependencies()
    assert calls == [
        ("installTorch", {"askConfirmation": True, "torchVersionRequirement": f">={MINIMUM_TORCH_VERSION}"}),
        ("pip_ensure", list(SLICER_REQUIREMENTS), {"prompt_install": True, "requester": "HybridNeuro"}),
    ]
    assert not any("torch" == r.split(">")[0] for r in calls[1][1]), "pip must never install torch"


def test_installer_installs_only_what_is_missing(installer, monkeypatch):
    dependencies, calls = installer
    versions = {"torch": "2.5.1+cu121", "monai": "1.3.0", "torchdiffeq": "0.2.5", "einops": "0.8.0", "tqdm": "4.66.0",
                "matplotlib": "3.8.0", "cmaes": "0.11.1", "nibabel": "5.2.1"}
    monkeypatch.setattr(dependencies, "installedVersion", versions.get)
    monkeypatch.setitem(sys.modules, "PyTorchUtils", fake_pytorch_utils(calls))
    assert dependencies.missingRequirements() == ["monai>=1.4"]
    dependencies.ensureDependencies(askConfirmation=False)
    assert calls == [("pip_ensure", ["monai>=1.4"], {"prompt_install": False, "requester": "HybridNeuro"})]


def test_installer_explains_a_missing_pytorch_extension(installer, monkeypatch):
    dependencies, calls = installer
    monkeypatch.setattr(dependencies, "installedVersion", lambda name: None)
    monkeypatch.setitem(sys.modules, "PyTorchUtils", None)  # makes "import PyTorchUtils" fail
    with pytest.raises(RuntimeError, match=r'Install "PyTorch" from the Extensions Manager'):
        dependencies.ensureDependencies()
    assert calls == []


def test_installer_stops_when_the_user_declines_torch(installer, monkeypatch):
    dependencies, calls = installer
    monkeypatch.setattr(dependencies, "installedVersion", lambda name: None)
    monkeypatch.setitem(sys.modules, "PyTorchUtils", fake_pytorch_utils(calls, returns=None))
    with pytest.raises(RuntimeError, match="cancelled"):
        dependencies.ensureDependencies()
    assert [call[0] for call in calls] == ["installTorch"]


def test_version_checks_accept_local_and_reject_old_builds(installer, monkeypatch):
    dependencies, _ = installer
    for version, expected in (("2.5.1+cu121", True), ("2.4.0", True), ("2.3.1", False), (None, False)):
        monkeypatch.setattr(dependencies, "installedVersion", lambda name, v=version: v)
        assert dependencies.isSatisfied("torch>=2.4") is expected, version


# -- the module file and its self-test, with Slicer's Qt-based classes stood in for ------------
@pytest.fixture
def module_with_stubs(monkeypatch, mrml):
    """``import HybridNeuro`` with minimal stand-ins for the Qt-based parts of ``slicer``.

    The stand-ins do only what the module's own code relies on; everything MRML is real.
    """
    import unittest

    import slicer

    stubs = {
        "i18n": dict(tr=lambda text: text, translate=lambda context, text: text),
        "ScriptedLoadableModule": dict(
            ScriptedLoadableModule=type("ScriptedLoadableModule", (), {
                "__init__": lambda self, parent: setattr(self, "parent", parent)}),
            ScriptedLoadableModuleWidget=type("ScriptedLoadableModuleWidget", (), {}),
            ScriptedLoadableModuleLogic=type("ScriptedLoadableModuleLogic", (), {}),
            ScriptedLoadableModuleTest=type("ScriptedLoadableModuleTest", (unittest.TestCase,), {
                "delayDisplay": lambda self, message, *args, **kwargs: None})),
        "parameterNodeWrapper": dict(parameterNodeWrapper=lambda cls: cls,
                                     WithinRange=lambda low, high: ("WithinRange", low, high)),
    }
    for name, attributes in stubs.items():
        module = types.ModuleType(f"slicer.{name}")
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, f"slicer.{name}", module)
        monkeypatch.setattr(slicer, name, module, raising=False)
    monkeypatch.setitem(sys.modules, "qt", types.ModuleType("qt"))  # the widget is imported, never built
    monkeypatch.syspath_prepend(str(MODULE_DIR))
    import HybridNeuro

    yield HybridNeuro
    forget_module_code()


def forget_module_code() -> None:
    """Drop the module's code from ``sys.modules`` so that the next import starts fresh."""
    for name in [n for n in sys.modules if n == "HybridNeuro" or n.split(".")[0] == "HybridNeuroModule"]:
        del sys.modules[name]


def test_self_test_passes_on_a_headless_scene(module_with_stubs):
    # the same test ctest runs inside Slicer, here on a slicer-core scene with three slice views
    module_with_stubs.HybridNeuroTest().test_createDemoOverlay()


def test_self_test_of_the_workflow_inputs_passes_on_a_headless_scene(module_with_stubs):
    test = module_with_stubs.HybridNeuroTest()
    test.setUp()
    test.test_workflowInputsAreChecked()


def test_logic_is_usable_without_the_widget(module_with_stubs, mrml):
    from conftest import make_oblique_image
    from HybridNeuroLib.mrml import image_to_volume

    logic = module_with_stubs.HybridNeuroLogic()
    scan = image_to_volume(make_oblique_image(), mrml.scene, "T1")
    density, lesion = logic.createDemoOverlay(scan, lesionRadiusMm=3.0)
    assert density.IsA("vtkMRMLScalarVolumeNode") and lesion.IsA("vtkMRMLSegmentationNode")
    with pytest.raises(ValueError, match="input volume"):
        logic.createDemoOverlay(None)
    assert set(logic.dependencyVersions()) == {"torch", "monai", "torchdiffeq", "einops", "tqdm", "matplotlib", "cmaes",
                                               "nibabel"}


def test_module_finds_the_engine_of_a_source_checkout(module_with_stubs, monkeypatch):
    # developer mode: Slicer puts HybridNeuro/ on sys.path, the engine is one folder up
    import importlib.util

    monkeypatch.setattr(sys, "path", [p for p in sys.path if Path(p).resolve() != ROOT])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)  # as if not installed anywhere
    module_with_stubs._addSourceCheckoutToPath()
    assert [p for p in sys.path if Path(p).resolve() == ROOT] == [str(ROOT)]


def test_self_test_of_the_sample_case_workflow_passes_on_a_headless_scene(module_with_stubs):
    # what "Reload and Test" runs in Slicer: sample case, segment, fit, predict in background processes
    module_with_stubs.HybridNeuroTest().test_sampleCaseWorkflow()


GUI_PROCESS = r'''
import json, sys, types, unittest
import slicer
stubs = {
    "i18n": dict(tr=lambda text: text, translate=lambda context, text: text),
    "ScriptedLoadableModule": dict(
        ScriptedLoadableModule=type("ScriptedLoadableModule", (), {}),
        ScriptedLoadableModuleWidget=type("ScriptedLoadableModuleWidget", (), {}),
        ScriptedLoadableModuleLogic=type("ScriptedLoadableModuleLogic", (), {}),
        ScriptedLoadableModuleTest=type("ScriptedLoadableModuleTest", (unittest.TestCase,), {})),
    "parameterNodeWrapper": dict(parameterNodeWrapper=lambda cls: cls, WithinRange=lambda low, high: None),
}
for name, attributes in stubs.items():
    module = types.ModuleType(f"slicer.{name}")
    module.__dict__.update(attributes)
    sys.modules[f"slicer.{name}"] = module
    setattr(slicer, name, module)
sys.modules["qt"] = types.ModuleType("qt")
sys.path.insert(0, sys.argv[1])
import HybridNeuro                                     # what Slicer imports at start-up
from HybridNeuroModule import Models, Widget           # the panel's code
from HybridNeuroLib.mrml import create_headless_scene
context = create_headless_scene()
logic = HybridNeuro.HybridNeuroLogic(scene=context.scene, workDirectory=sys.argv[2])
# what the panel's setup and its first clicks run in Slicer's process
names, missing, versions = Widget.modelNames(), logic.missingDependencies(), logic.dependencyVersions()
card = Models.modelCard(Models.ModelChoice())
volumes = logic.loadSampleCase()                       # the generator runs in a child process
timepoints = logic.timepoints()
print(json.dumps({"loaded": {m: m in sys.modules for m in ("torch", "monai", "torchdiffeq")},
                  "models": names, "missing": missing, "days": [tp.day for tp in timepoints]}))
'''


def test_the_gui_process_never_imports_torch(tmp_path):
    """A torch imported in Slicer's process locks its DLLs on Windows: the PyTorch extension could not replace it."""
    import json
    import subprocess

    result = subprocess.run([sys.executable, "-c", GUI_PROCESS, str(MODULE_DIR), str(tmp_path)], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["loaded"] == {"torch": False, "monai": False, "torchdiffeq": False}, report
    assert report["missing"] == [] and report["days"] == [0.0, 60.0, 120.0]
    assert report["models"][0] == "physics"


def test_torch_free_lists_match_the_engine():
    """The panel's model and device lists are written out (importing the engine's would import torch)."""
    from HybridNeuroLib.device import DEVICE_CHOICES
    from HybridNeuroLib.hybrid.base import MODEL_MODULES
    from HybridNeuroLib.segment.bundle import REQUIRED_FILES
    from HybridNeuroLib.segment.model import DEFAULT_MODEL_FOLDER

    sys.path.insert(0, str(MODULE_DIR))
    try:
        forget_module_code()
        from HybridNeuroModule import Models
        from HybridNeuroModule.Logic import DEVICES, MODEL_NAMES
    finally:
        sys.path.remove(str(MODULE_DIR))
        forget_module_code()
    assert MODEL_NAMES == tuple(MODEL_MODULES) and DEVICES == DEVICE_CHOICES
    assert Models.SHIPPED_MODEL_FOLDER == DEFAULT_MODEL_FOLDER.resolve()
    assert Models.REQUIRED_FILES["bundle"] == REQUIRED_FILES


def test_model_choices_are_checked_and_described(tmp_path):
    sys.path.insert(0, str(MODULE_DIR))
    try:
        forget_module_code()
        from HybridNeuroModule.Models import KINDS, ModelChoice, modelCard
    finally:
        sys.path.remove(str(MODULE_DIR))
        forget_module_code()
    assert list(KINDS) == ["shipped", "bundle", "trained"]
    assert ModelChoice("trained").problems() == ["choose the folder of the trained model folder (hybridneuro train-seg)"]
    assert "lacks model.pt" in ModelChoice("trained", str(tmp_path)).problems()[0].replace("model.json, ", "")
    (tmp_path / "model.json").write_text('{"architecture": "UNet", "contrasts": ["t2f"], "spacing_mm": [1, 1, 1]}')
    (tmp_path / "model.pt").write_bytes(b"")
    choice = ModelChoice("trained", str(tmp_path))
    assert choice.problems() == [] and choice.segmentArguments() == {"modelFolder": str(tmp_path)}
    assert modelCard(choice).splitlines() == ["architecture: UNet", "contrasts: ['t2f']", "spacing_mm: [1, 1, 1]"]
    assert "Trained on synthetic data only" in modelCard(ModelChoice())
    assert ModelChoice("zoo").problems()[0].startswith("unknown segmentation model kind 'zoo'")
