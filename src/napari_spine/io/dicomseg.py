"""Labels out as a DICOM Segmentation (highdicom) that references the series they were
drawn on.

One segment per structure present, named as the anatomy table names it, with its
SNOMED CT code where DICOM's code tables have one (C1-L5 vertebrae, the discs between
them, the sacrum, coccyx, spinal cord, vertebral canal, vertebral arch parts); other
structures get their kind's code (vertebra) or "anatomical structure", and their name.
Written like every export: to a temporary file in the target folder, read back with
highdicom and compared segment by segment with the labels, then renamed.

Needs ``pip install 'napari-spine[dicomseg]'`` and a case opened from a classic DICOM
series or an enhanced multi-frame object (a Siemens mosaic is not a valid source).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__, geometry
from ..anatomy import ontology
from ..case import SpineCase
from ..errors import ExportError
from .files import atomic_path

__all__ = ["SegExportResult", "export_seg", "segment_code"]


@dataclass(frozen=True)
class SegExportResult:
    """What a DICOM SEG export wrote, after verification."""

    path: Path
    segments: dict[int, str]  # segment number -> structure name
    structure_ids: dict[int, int]  # segment number -> canonical structure id
    seconds: float
    generated: tuple[str, ...] = ()  # source identifiers that were blank and made up for the SEG


def _sct(name: str):
    from pydicom.sr.codedict import codes

    try:
        return getattr(codes.SCT, name)
    except AttributeError:
        return None


def segment_code(structure_id: int):
    """The SNOMED CT code of a structure (pydicom's copy of DICOM's code tables), or the
    code of its kind, or "anatomical structure"."""
    s = ontology.BY_ID[structure_id]
    name = s.name
    candidates: list[str] = []
    if s.kind == "vertebra":
        candidates = [f"{name}Vertebra"] + (["BoneStructureOfSacrum"] if name == "S1" else [])
    elif s.kind == "disc" and "/" in name:
        a, b = name.split("/")
        candidates = [f"{a}{b}Disc"]
    elif s.kind == "neural":
        candidates = ["SpinalCord"] if "cord" in name.lower() else ["VertebralCanal"]
    else:
        words = "".join(w.capitalize() for w in name.replace(",", " ").replace("/", " ").split()
                        if w not in ("left", "right"))
        candidates = [f"{words}OfVertebra", f"StructureOf{words}OfVertebra", words]
    for c in candidates:
        code = _sct(c)
        if code is not None:
            return code
    return _sct("Vertebra") if s.kind in ("vertebra", "subregion", "endplate") else _sct("AnatomicalStructure")


def _sources(case: SpineCase, target: Path):
    import pydicom

    files = case.metadata.get("source_files") if case.metadata else None
    if not files or "dicom_identifiers" not in case.metadata:
        raise ExportError(f"{target}: a DICOM SEG needs a case opened from DICOM (this one is from "
                          f"{case.source.path or 'memory'})")
    if case.metadata.get("mosaic"):
        raise ExportError(f"{target}: the case is a Siemens mosaic, which a DICOM SEG cannot reference; "
                          "export NIfTI instead")
    from .dicom import ZIP_SEP, _read_location

    try:
        return [_read_location(f) if ZIP_SEP in f else pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    except Exception as exc:  # noqa: BLE001 - name the file
        raise ExportError(f"{target}: the source series cannot be read again ({exc})") from exc


#: the storage classes of the images a series without its own SOP Class UID can be
_STORAGE = {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4"}


def _fill_uids(sources: list, target: Path) -> list[str]:
    """Give the (in-memory) source datasets the identifiers a SEG must reference where the
    scanner left them blank or missing: one study and one series UID for all, a SOP
    Instance UID per image (also for repeated ones), the SOP Class from the modality.
    Returns what was generated, in words (empty when nothing was)."""
    from pydicom.uid import generate_uid

    made = []
    for attr, word in (("StudyInstanceUID", "study"), ("SeriesInstanceUID", "series")):
        given = {str(getattr(ds, attr, "") or "").strip() for ds in sources} - {""}
        if len(given) == 1 and all(str(getattr(ds, attr, "") or "").strip() for ds in sources):
            continue
        uid = next(iter(given)) if len(given) == 1 else generate_uid()
        for ds in sources:
            setattr(ds, attr, uid)
        made.append(f"{word} UID")
    seen: set[str] = set()
    fresh = 0
    for ds in sources:
        uid = str(getattr(ds, "SOPInstanceUID", "") or "").strip()
        if not uid or uid in seen:
            uid = generate_uid()
            ds.SOPInstanceUID = uid
            fresh += 1
        seen.add(uid)
    if fresh:
        made.append(f"{fresh} image UID{'s' if fresh != 1 else ''}")
    if any(not str(getattr(ds, "SOPClassUID", "") or "").strip() for ds in sources):
        modality = str(getattr(sources[0], "Modality", "") or "")
        if modality not in _STORAGE:
            raise ExportError(f"{target}: the source images have no SOP Class UID and their modality "
                              f"({modality or 'none'}) does not say one; nothing was written")
        for ds in sources:
            ds.SOPClassUID = _STORAGE[modality]
        made.append("SOP class")
    return made


def _frames(case: SpineCase, labels: np.ndarray) -> np.ndarray:
    """Display-ordered labels as the source images' (slice, row, column) frames."""
    file_order = geometry.from_display(labels, case.source.ornt)  # (column, row bottom-up, slice)
    return np.ascontiguousarray(file_order[:, ::-1, :].transpose(2, 1, 0))


def export_seg(case: SpineCase, labels: np.ndarray | None, path: str | os.PathLike, *,
               algorithm: str = "manual", description: str = "napari-spine segmentation") -> SegExportResult:
    """Write ``labels`` (canonical ids, display order; ``None``: the case's) as a DICOM
    SEG referencing the case's source series, verified by reading it back."""
    t0 = time.perf_counter()
    target = Path(path)
    try:
        import highdicom as hd
        from pydicom.uid import generate_uid
    except ImportError as exc:
        raise ExportError(f"{target}: DICOM SEG export needs highdicom "
                          "(pip install 'napari-spine[dicomseg]')") from exc
    lab = case.labels if labels is None else np.asanyarray(labels)
    if lab is None or lab.shape != case.shape:
        raise ExportError(f"{target}: labels of shape {None if lab is None else lab.shape} "
                          f"do not fit the case {case.shape}")
    sources = _sources(case, target)
    made = _fill_uids(sources, target)
    if made:  # said in the SEG itself: it references identifiers its source never had
        description = f"{description}; source UIDs generated"[:64]  # a DICOM LO holds 64
    frames = _frames(case, lab)
    ids = [int(i) for i in np.unique(frames) if i]
    unknown = [i for i in ids if i not in ontology.BY_ID]
    if unknown:
        raise ExportError(f"{target}: label id(s) {unknown} are not napari-spine structures; nothing was written")
    if not ids:
        raise ExportError(f"{target}: the labels are empty; a DICOM SEG needs at least one segment")
    lut = np.zeros(max(ids) + 1, np.uint16 if len(ids) > 255 else np.uint8)
    for n, sid in enumerate(ids, start=1):
        lut[sid] = n
    segmap = lut[frames]
    kind = hd.seg.SegmentAlgorithmTypeValues.MANUAL if algorithm == "manual" else algorithm
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=n, segment_label=ontology.name_of(sid),
            segmented_property_category=_sct("AnatomicalStructure"),
            segmented_property_type=segment_code(sid), algorithm_type=kind)
        for n, sid in enumerate(ids, start=1)
    ]
    try:
        seg = hd.seg.Segmentation(
            source_images=sources, pixel_array=segmap, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions, series_instance_uid=generate_uid(), series_number=9901,
            sop_instance_uid=generate_uid(), instance_number=1, manufacturer="napari-spine",
            manufacturer_model_name="napari-spine", software_versions=__version__, device_serial_number="0",
            series_description=description)
    except Exception as exc:  # noqa: BLE001 - highdicom's checks, with the file named
        raise ExportError(f"{target}: cannot build the DICOM SEG ({exc})") from exc
    uids = [str(ds.SOPInstanceUID) for ds in sources]
    try:
        with atomic_path(target) as tmp:
            seg.save_as(tmp)
            _verify(tmp, target, uids, segmap, len(ids))
    except ExportError:
        raise
    except OSError as exc:
        raise ExportError(f"{target}: write failed ({exc}); nothing was written") from exc
    return SegExportResult(path=target, segments={n: ontology.name_of(s) for n, s in enumerate(ids, 1)},
                           structure_ids=dict(enumerate(ids, 1)), seconds=time.perf_counter() - t0,
                           generated=tuple(made))


def _verify(tmp: Path, target: Path, uids: list[str], segmap: np.ndarray, n_segments: int) -> None:
    import highdicom as hd

    try:
        back = hd.seg.segread(tmp)
        pixels = back.get_pixels_by_source_instance(uids, combine_segments=True)
    except Exception as exc:  # noqa: BLE001 - the file we wrote must read back
        raise ExportError(f"{target}: the written SEG cannot be read back ({exc}); not saved") from exc
    if len(back.SegmentSequence) != n_segments or not np.array_equal(np.asarray(pixels), segmap):
        raise ExportError(f"{target}: verification failed (segments differ from the labels); not saved")
