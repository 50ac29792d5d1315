"""First-use installer: torch from the PyTorch extension, the engine's other packages with pip.

    >>> from HybridNeuroModule import Dependencies
    >>> Dependencies.installedVersions()              # reads package metadata, imports nothing
    {'torch': '2.5.1+cu121', 'monai': None, 'torchdiffeq': None, 'einops': '0.8.0', 'tqdm': '4.66.4'}
    >>> Dependencies.ensureDependencies()             # asks, then installs what is missing

Nothing is installed at import time. Torch must come from the PyTorch extension
(``PyTorchUtils``), which picks the build matching the user's GPU driver; the other
packages (``HybridNeuroLib.requirements.SLICER_REQUIREMENTS``) are installed after torch,
so that pip finds torch satisfied and never replaces it with a default build.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys

from packaging.requirements import Requirement  # shipped with Slicer

try:
    from slicer.i18n import tr as _
except ModuleNotFoundError:  # headless (slicer-core): no translations
    def _(text: str) -> str:
        return text

from HybridNeuroLib.requirements import MINIMUM_TORCH_VERSION, SLICER_REQUIREMENTS

REQUESTER = "HybridNeuro"
TORCH_REQUIREMENT = f"torch>={MINIMUM_TORCH_VERSION}"


def installedVersion(distribution: str) -> str | None:
    """Installed version of ``distribution`` (e.g. ``"monai"``), or None when absent."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def isSatisfied(requirement: str) -> bool:
    """Whether an installed distribution meets ``requirement`` (e.g. ``"monai>=1.4"``)."""
    parsed = Requirement(requirement)
    version = installedVersion(parsed.name)
    # prereleases=True: a "2.6.0.dev" or "+cu121" build of torch counts as installed
    return version is not None and parsed.specifier.contains(version, prereleases=True)


def installedVersions() -> dict[str, str | None]:
    """Version of torch and of every engine requirement, None where missing."""
    names = [Requirement(r).name for r in (TORCH_REQUIREMENT, *SLICER_REQUIREMENTS)]
    return {name: installedVersion(name) for name in names}


def missingRequirements() -> list[str]:
    """The requirements (torch first) that are not met yet; reads package metadata only (cheap, imports nothing)."""
    return [r for r in (TORCH_REQUIREMENT, *SLICER_REQUIREMENTS) if not isSatisfied(r)]


def ensureDependencies(askConfirmation: bool = True) -> None:
    """Install whatever is missing, torch first; raise RuntimeError if it cannot be done now.

    ``askConfirmation=False`` installs without asking (for scripts that already asked).
    """
    if not isSatisfied(TORCH_REQUIREMENT):
        _installTorch(askConfirmation)
    packages = [r for r in SLICER_REQUIREMENTS if not isSatisfied(r)]
    if packages:
        _installPackages(packages, askConfirmation)


def _installTorch(askConfirmation: bool) -> None:
    try:
        import PyTorchUtils
    except ModuleNotFoundError:
        raise RuntimeError(_(
            "HybridNeuro needs PyTorch, which Slicer gets from the PyTorch extension. "
            "Install \"PyTorch\" from the Extensions Manager, restart Slicer, and try again.")) from None
    alreadyLoaded = "torch" in sys.modules  # an imported torch cannot be replaced in this session
    torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(
        askConfirmation=askConfirmation, torchVersionRequirement=f">={MINIMUM_TORCH_VERSION}")
    if torch is None:
        raise RuntimeError(_("PyTorch installation was cancelled."))
    if alreadyLoaded:
        raise RuntimeError(_("PyTorch was updated. Restart Slicer to use the new version."))


def _installPackages(requirements: list[str], askConfirmation: bool) -> None:
    if importlib.util.find_spec("slicer.packaging") is not None:
        # Slicer >= 5.12: asks, shows progress, offers a restart if an imported package changed,
        # and raises RuntimeError when the user declines
        import slicer.packaging

        slicer.packaging.pip_ensure(requirements, prompt_install=askConfirmation, requester=REQUESTER)
        return
    import slicer

    if askConfirmation and not slicer.util.confirmOkCancelDisplay(
            _("HybridNeuro needs these Python packages:\n\n{packages}\n\n"
              "Install them now? This may take a few minutes.").format(packages="\n".join(requirements)),
            windowTitle=_("Install Python packages")):
        raise RuntimeError(_("Installation of Python packages was cancelled."))
    slicer.util.pip_install(requirements)
