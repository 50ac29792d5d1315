"""Python packages the engine needs, as minimum versions for use inside 3D Slicer.

    >>> from HybridNeuroLib.requirements import SLICER_REQUIREMENTS
    >>> "torchdiffeq>=0.2.3" in SLICER_REQUIREMENTS
    True

Exact pins for the headless environment live in ``pyproject.toml``. Inside Slicer,
torch comes from the PyTorch extension (``PyTorchUtils``) and SimpleITK/numpy are
Slicer's own, so only the remaining packages are listed here, with the oldest
versions the engine is known to work with.

The oldest Slicer is decided by the engine's Python: it needs Python ≥ 3.10 syntax
(``isinstance(x, list | tuple)``) and is tested on 3.11; Slicer 5.8 and older ship Python 3.9,
Slicer 5.10 ships 3.12. ``SLICER_PROVIDED`` are the oldest numpy and SimpleITK the
module-facing tests run with (``make test-oldest``); Slicer 5.10's own are newer.
"""

MINIMUM_SLICER_VERSION = "5.10"
MINIMUM_PYTHON = (3, 11)
MINIMUM_TORCH_VERSION = "2.4"
SLICER_PROVIDED: tuple[str, ...] = ("numpy>=2.0", "SimpleITK>=2.4")

SLICER_REQUIREMENTS: tuple[str, ...] = (
    "monai>=1.4",
    "torchdiffeq>=0.2.3",
    "einops>=0.7",
    "tqdm>=4.60",
    "matplotlib>=3.7",
    "cmaes>=0.10",
    "nibabel>=5.0",
)
