"""Detect truncated NIfTI files, which ITK reads without complaint (it zero-fills the rest).

    >>> import tempfile, pathlib, numpy as np, SimpleITK as sitk
    >>> from HybridNeuroLib.study.nifti import nifti_truncation
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.nii.gz"
    >>> sitk.WriteImage(sitk.GetImageFromArray(np.ones((4, 4, 4), np.float32)), str(path))
    >>> nifti_truncation(path) is None
    True
    >>> _ = path.write_bytes(path.read_bytes()[:60])
    >>> nifti_truncation(path)
    'the compressed stream ends early (truncated .gz file)'

NIfTI-1 and NIfTI-2 headers give the voxel data offset, the dimensions and bits per voxel,
hence the bytes the file must hold; for ``.nii.gz`` the gzip stream must also be complete.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path


def _needed_bytes(header: bytes) -> int | None:
    """Bytes a NIfTI file must hold (offset + data), or None if the header is not NIfTI."""
    for endian in "<>":
        size = struct.unpack(endian + "i", header[:4])[0] if len(header) >= 4 else 0
        if size == 348 and len(header) >= 348:  # NIfTI-1
            dims = struct.unpack(endian + "8h", header[40:56])
            bitpix = struct.unpack(endian + "h", header[72:74])[0]
            offset = int(struct.unpack(endian + "f", header[108:112])[0])
        elif size == 540 and len(header) >= 540:  # NIfTI-2
            bitpix = struct.unpack(endian + "h", header[14:16])[0]
            dims = struct.unpack(endian + "8q", header[16:80])
            offset = struct.unpack(endian + "q", header[168:176])[0]
        else:
            continue
        count = 1
        for n in dims[1:1 + max(0, min(int(dims[0]), 7))]:
            count *= max(int(n), 1)
        return max(offset, size) + count * max(int(bitpix), 8) // 8
    return None


def nifti_truncation(path: Path) -> str | None:
    """Why a ``.nii``/``.nii.gz`` file is incomplete, or None when it is complete (or not NIfTI)."""
    path = Path(path)
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rb") as stream:
                content = stream.read()
        else:
            content = path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error):
        return "the compressed stream ends early (truncated .gz file)"
    needed = _needed_bytes(content[:540])
    if needed is not None and len(content) < needed:
        return f"holds {len(content)} bytes of image data and header but its header needs {needed} (truncated)"
    return None
