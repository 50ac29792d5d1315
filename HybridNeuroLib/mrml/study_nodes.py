"""A patient's study from scene nodes: volumes with their days and contrasts → a temporary study folder.

    >>> import SimpleITK as sitk, tempfile
    >>> from HybridNeuroLib.mrml import create_headless_scene, image_to_volume
    >>> from HybridNeuroLib.mrml.study_nodes import (DAY_ATTRIBUTE, collect_timepoints, scene_volumes,
    ...                                               write_study_folder)
    >>> scene = create_headless_scene().scene
    >>> for day in (0, 30):
    ...     node = image_to_volume(sitk.Image(6, 6, 6, sitk.sitkFloat32), scene, f"FLAIR visit {day}")
    ...     node.SetAttribute(DAY_ATTRIBUTE, str(day))
    >>> timepoints = collect_timepoints(scene_volumes(scene), in_acquisition_order=False)
    >>> [(tp.day, sorted(tp.volumes)) for tp in timepoints]
    [(0.0, ['t2f']), (30.0, ['t2f'])]
    >>> folder = write_study_folder(tempfile.mkdtemp() + "/study", "demo", timepoints)
    >>> sorted(p.name for p in folder.iterdir())
    ['study.json', 'tp0', 'tp1']

The day of a volume (days since the patient's first scan, any origin) comes, in this order,
from: what the caller passes; the node attribute :data:`DAY_ATTRIBUTE` (``"HybridNeuro.day"``,
set by the sample-case loader, by HybridNeuro's outputs, or by the user);
the DICOM acquisition date of a volume loaded from DICOM (attribute ``DICOM.instanceUIDs``,
looked up with ``dicom_value(uid, tag)``, in Slicer ``slicer.dicomDatabase.instanceValue``;
days counted from the earliest date of the selection). The contrast (BraTS key ``t1n``,
``t1c``, ``t2w``, ``t2f``) comes from :data:`CONTRAST_ATTRIBUTE` or the node name ("FLAIR",
"T1ce", "t2w", …). Problems of all volumes are reported at once (:class:`StudyInputError`).

Nodes are only read: the study folder holds copies (volumes, segmentations as BraTS labels,
tissue maps) written with :func:`HybridNeuroLib.study.write_study`.
"""

from __future__ import annotations

import datetime
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import SimpleITK as sitk

from HybridNeuroLib.mrml.segmentations import segmentation_to_labels
from HybridNeuroLib.mrml.volumes import volume_to_image
from HybridNeuroLib.diseases import disease as declared_disease
from HybridNeuroLib.study import TISSUE_KEYS, Study, Timepoint, write_study

DAY_ATTRIBUTE = "HybridNeuro.day"
CONTRAST_ATTRIBUTE = "HybridNeuro.contrast"
TISSUE_ATTRIBUTE = "HybridNeuro.tissue"      # "gm", "wm" or "csf" on a tissue probability volume
PATIENT_ATTRIBUTE = "HybridNeuro.patient"
OUTPUT_ATTRIBUTE = "HybridNeuro.output"      # set on every node HybridNeuro creates (the step's name)
DICOM_UIDS_ATTRIBUTE = "DICOM.instanceUIDs"  # set by Slicer's DICOM import
DICOM_DATE_TAGS = ("0008,0022", "0008,0021", "0008,0020")  # acquisition, series, study date
DICOM_PATIENT_NAME_TAG = "0010,0010"

# Name words → BraTS contrast key, matched as whole words, case-insensitively.
CONTRAST_WORDS = {
    "t1n": "t1n", "t1": "t1n", "t1w": "t1n", "t1native": "t1n",
    "t1c": "t1c", "t1ce": "t1c", "t1gd": "t1c", "t1post": "t1c", "gd": "t1c",
    "t2w": "t2w", "t2": "t2w",
    "t2f": "t2f", "flair": "t2f", "t2flair": "t2f",
}

DicomValue = Callable[[str, str], str]
"""``dicom_value(instance_uid, "gggg,eeee")`` → the tag's value ("" when unknown)."""


class StudyInputError(ValueError):
    """The scene nodes do not make a study; the message lists every problem and what to do."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("the study inputs have problems:\n" + "\n".join(f"- {p}" for p in self.problems))


@dataclass(frozen=True, eq=False)
class TimepointNodes:
    """The volumes of one timepoint (contrast key → volume node, only read) and its day."""

    day: float
    volumes: dict[str, object]
    guessed: frozenset[str] = field(default_factory=frozenset)  # keys assigned without knowing the contrast

    @property
    def reference(self):
        """The volume whose grid the timepoint's lesions are given on: the first contrast."""
        return next(iter(self.volumes.values()))


def day_text(day: float) -> str:
    return f"{float(day):g}"


def scene_volumes(scene) -> list:
    """The scalar volumes of ``scene`` that can be scans: not label maps, tissue maps or HybridNeuro outputs."""
    nodes = [scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode")
             for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode"))]
    return [node for node in nodes if not node.IsA("vtkMRMLLabelMapVolumeNode")
            and not node.GetAttribute(TISSUE_ATTRIBUTE) and not node.GetAttribute(OUTPUT_ATTRIBUTE)
            and not node.GetHideFromEditors()]


def tissue_volumes(scene) -> dict[str, object]:
    """Tissue probability volumes of ``scene`` by key ("gm", "wm", "csf"), from :data:`TISSUE_ATTRIBUTE`."""
    found = {}
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")):
        node = scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode")
        key = node.GetAttribute(TISSUE_ATTRIBUTE)
        if key in TISSUE_KEYS:
            found.setdefault(key, node)
    return found


def contrast_of(node) -> str | None:
    """The BraTS contrast key of a volume: its :data:`CONTRAST_ATTRIBUTE`, else a word of its name.

        >>> class Named:
        ...     def __init__(self, name): self.name = name
        ...     def GetAttribute(self, key): return None
        ...     def GetName(self): return self.name
        >>> [contrast_of(Named(n)) for n in ("FLAIR day 0", "sub-01_T1ce", "t2w", "scan")]
        ['t2f', 't1c', 't2w', None]
    """
    key = node.GetAttribute(CONTRAST_ATTRIBUTE)
    if key:
        return key
    words = re.split(r"[^a-z0-9]+", (node.GetName() or "").lower())
    return next((CONTRAST_WORDS[word] for word in words if word in CONTRAST_WORDS), None)


def _dicom_date(node, dicom_value: DicomValue | None) -> datetime.date | None:
    uids = (node.GetAttribute(DICOM_UIDS_ATTRIBUTE) or "").split()
    if not uids or dicom_value is None:
        return None
    for tag in DICOM_DATE_TAGS:
        text = (dicom_value(uids[0], tag) or "").strip()
        if re.fullmatch(r"\d{8}", text):
            return datetime.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    return None


def dicom_patient_name(node, dicom_value: DicomValue | None) -> str | None:
    """The DICOM patient name of a volume loaded from DICOM ("^" separators as spaces), else None."""
    uids = (node.GetAttribute(DICOM_UIDS_ATTRIBUTE) or "").split()
    if not uids or dicom_value is None:
        return None
    name = (dicom_value(uids[0], DICOM_PATIENT_NAME_TAG) or "").replace("^", " ").strip()
    return name or None


def node_days(nodes: Sequence, dicom_value: DicomValue | None = None) -> dict[str, float | None]:
    """Day of each node (by node ID): :data:`DAY_ATTRIBUTE`, else its DICOM date relative to the earliest one."""
    dates = {node.GetID(): _dicom_date(node, dicom_value) for node in nodes}
    known = [date for date in dates.values() if date is not None]
    days: dict[str, float | None] = {}
    for node in nodes:
        text = node.GetAttribute(DAY_ATTRIBUTE)
        if text:
            try:
                days[node.GetID()] = float(text)
            except ValueError:
                days[node.GetID()] = math.nan  # reported as a bad day
        elif dates[node.GetID()] is not None:
            days[node.GetID()] = float((dates[node.GetID()] - min(known)).days)
        else:
            days[node.GetID()] = None
    return days


def sequence_volumes(sequence) -> dict[float, object]:
    """{day: volume} of a volume sequence whose index values are days (e.g. "0", "60"); its nodes are only read."""
    volumes, problems = {}, []
    for i in range(sequence.GetNumberOfDataNodes()):
        value = sequence.GetNthIndexValue(i)
        try:
            volumes[float(value)] = sequence.GetNthDataNode(i)
        except ValueError:
            problems.append(f"sequence '{sequence.GetName()}': index value {value!r} is not a day; use a sequence "
                            "indexed by days (index type numeric) or give the volumes with their days")
    if problems:
        raise StudyInputError(problems)
    return volumes


def _volume_problem(node) -> str | None:
    if node is None:
        return "a volume is None; select a volume node"
    if node.GetImageData() is None:
        return f"volume '{node.GetName()}' has no voxels; load an image into it"
    return None


def collect_timepoints(volumes: Sequence | Mapping, *, dicom_value: DicomValue | None = None,
                       disease: str = "glioma", in_acquisition_order: bool = True) -> list[TimepointNodes]:
    """Group volumes into timepoints by day, in day order; raise :class:`StudyInputError` listing every problem.

    ``volumes`` is a list of volume nodes (days from the nodes; with ``in_acquisition_order`` a
    later volume with an earlier day is reported as out of order — pass False for an unordered
    collection such as the scene's volumes), or a mapping ``{day: volume}`` /
    ``{day: {contrast: volume}}`` giving the days explicitly.
    """
    try:
        keys = declared_disease(disease).image_keys
    except ValueError as error:
        raise StudyInputError([str(error)]) from None
    problems: list[str] = []
    entries: list[tuple[float, str | None, object]] = []  # (day, contrast or None, node)
    if isinstance(volumes, Mapping):
        for day, value in volumes.items():
            items = value.items() if isinstance(value, Mapping) else [(None, value)]
            for contrast, node in items:
                problems += filter(None, [_volume_problem(node)])
                entries.append((float(day), contrast, node))
    else:
        volumes = list(volumes)
        for node in volumes:
            problems += filter(None, [_volume_problem(node)])
        days = node_days([node for node in volumes if node is not None], dicom_value)
        for node in volumes:
            if node is None:
                continue
            day = days[node.GetID()]
            if day is None:
                problems.append(f"volume '{node.GetName()}' has no day: enter its day (days since the first scan) in "
                                f"the HybridNeuro panel, pass {{day: volume}}, or set its attribute {DAY_ATTRIBUTE}")
            else:
                entries.append((day, None, node))
        order = list(dict.fromkeys(day for day, _, _ in entries)) if in_acquisition_order else []
        for earlier, later in zip(order, order[1:]):
            if later <= earlier:
                first = next(n for d, _, n in entries if d == earlier)
                second = next(n for d, _, n in entries if d == later)
                problems.append(f"days out of order: volume '{second.GetName()}' (day {day_text(later)}) comes after "
                                f"'{first.GetName()}' (day {day_text(earlier)}); give the volumes in acquisition "
                                "order or correct their days")
    if not entries and not problems:
        problems.append("no volumes: load the scans of each timepoint (File > Add Data, or DICOM), or load the "
                        "sample case")
    problems += [f"volume '{node.GetName()}': day {day} is not a finite number; correct its day"
                 for day, _, node in entries if not math.isfinite(day)]
    by_day: dict[float, list[tuple[str | None, object]]] = {}
    for day, contrast, node in entries:
        by_day.setdefault(day, []).append((contrast or contrast_of(node), node))
    timepoints = []
    for day in sorted(d for d in by_day if math.isfinite(d)):
        assigned, guessed = {}, set()
        for contrast, node in by_day[day]:
            if contrast is not None and contrast not in keys:
                problems.append(f"volume '{node.GetName()}' (day {day_text(day)}): unknown contrast {contrast!r}; "
                                f"use one of {', '.join(keys)}")
            elif contrast in assigned:
                problems.append(f"day {day_text(day)} has two {contrast} volumes ('{assigned[contrast].GetName()}', "
                                f"'{node.GetName()}'); keep one or correct a day")
            elif contrast is not None:
                assigned[contrast] = node
        for contrast, node in by_day[day]:
            if contrast is None:  # unnamed contrast: the first free key (its grid is what matters to the fit)
                free = [key for key in keys if key not in assigned]
                if not free:
                    problems.append(f"volume '{node.GetName()}' (day {day_text(day)}): too many volumes for one day")
                    continue
                assigned[free[0]] = node
                guessed.add(free[0])
        ordered = {key: assigned[key] for key in keys if key in assigned}
        timepoints.append(TimepointNodes(day, ordered, frozenset(guessed)))
    if problems:
        raise StudyInputError(problems)
    return timepoints


def write_study_folder(folder: str | os.PathLike, patient: str, timepoints: Sequence[TimepointNodes], *,
                       segmentations: Sequence | None = None, tissue: Mapping[str, object] | None = None,
                       predict_days: Sequence[float] = (), disease: str = "glioma") -> Path:
    """Write the timepoints (and, per timepoint, a segmentation node's labels; and tissue volumes) as a study.

    Timepoint folders are ``tp0``, ``tp1``, … in day order. Only copies are written; the nodes are only read.
    """
    if segmentations is not None and len(segmentations) != len(timepoints):
        raise StudyInputError([f"{len(segmentations)} segmentations for {len(timepoints)} timepoints; give one "
                               "segmentation per timepoint"])
    if tissue is not None:
        missing = [key for key in TISSUE_KEYS if tissue.get(key) is None]
        if missing:
            raise StudyInputError([f"tissue maps {', '.join(missing)} are missing; give gm, wm and csf "
                                   "probability volumes"])
    entries = []
    for n, tp in enumerate(timepoints):
        images = {key: volume_to_image(node) for key, node in tp.volumes.items()}
        seg = None
        if segmentations is not None:
            seg = sitk.Cast(segmentation_to_labels(segmentations[n], tp.reference), sitk.sitkUInt8)
        entries.append(Timepoint(f"tp{n}", tp.day, images, seg))
    maps = {key: sitk.Cast(volume_to_image(tissue[key]), sitk.sitkFloat32) for key in TISSUE_KEYS} if tissue else None
    return write_study(Study(patient, disease, tuple(entries), tuple(float(d) for d in predict_days), maps),
                       Path(folder))
