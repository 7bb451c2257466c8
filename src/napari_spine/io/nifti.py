"""NIfTI reading into a :class:`~napari_spine.case.SpineCase`, with clear errors.

Arrays load in their native dtype through ``np.asanyarray(img.dataobj)`` (nibabel uses
``indexed_gzip`` when it is installed, a dependency of this package). ``get_fdata()``
is never used: it is 5-6x slower and takes 4x the memory for CT and labels.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from .. import geometry
from ..anatomy.labelmaps import get_label_map
from ..case import SpineCase
from ..errors import GeometryError, SpineIOError, reading
from ._fastgz import check_readable, gunzip_verified, is_gzip, max_gunzipped_size, read_gz_array

__all__ = ["NiftiVolume", "find_labels_for", "guess_label_scheme", "guess_modality", "is_label_file",
           "is_nifti_path", "looks_like_label_data",
           "load_case", "nifti_stem", "read_nifti", "split_name"]

_NIFTI_SUFFIXES = (".nii", ".nii.gz")
# A segmentation's name ends in a label word (``_seg``, ``_msk`` ...) or carries a BIDS
# ``seg-`` entity; ``label-6`` alone is a BIDS entity of images too (TPTBox), so it is not one.
_LABEL_NAME = re.compile(
    r"((_seg|_SEG|_dseg|_msk|_mask|_label|_labels|_labeled|_labelled|_gt|segmentation)"
    r"|(^|_)seg-[^_.]+(_[^.]*)?)\.nii(\.gz)?$"
)


def split_name(path: str | os.PathLike) -> tuple[str, str]:
    """``(stem, extension)`` of a file name; ``.nii.gz`` counts as one extension.

    >>> split_name("a/sub-01_ct.nii.gz"), split_name("lm.json")
    (('sub-01_ct', '.nii.gz'), ('lm', '.json'))
    """
    name = Path(path).name
    ext = name[-7:] if name.lower().endswith(".nii.gz") else Path(name).suffix
    return name[: len(name) - len(ext)], ext


def nifti_stem(path: str | os.PathLike) -> str:
    """File name without ``.nii`` / ``.nii.gz``."""
    return split_name(path)[0] if is_nifti_path(path) else Path(path).name


def is_nifti_path(path: str | os.PathLike) -> bool:
    """Whether a path names a NIfTI file (``.nii`` or ``.nii.gz``, any case)."""
    return str(path).lower().endswith(_NIFTI_SUFFIXES)


def looks_like_labels(path: str | os.PathLike) -> bool:
    """True when a NIfTI file name says it holds a segmentation."""
    return bool(_LABEL_NAME.search(Path(path).name))


_SIBLING_SUFFIXES = ("_seg", "_SEG", "_msk", "_mask", "_label", "_labels")


def _bids(stem: str) -> tuple[dict[str, str], str] | None:
    """BIDS entities and suffix of a file stem (``sub-01_seg-vert_msk`` -> ({sub, seg}, msk))."""
    parts = stem.split("_")
    if len(parts) < 2 or not all("-" in q for q in parts[:-1]) or "-" in parts[-1]:
        return None
    return dict(q.split("-", 1) for q in parts[:-1]), parts[-1]


def find_labels_for(image_path: str | os.PathLike) -> Path | None:
    """The segmentation that belongs to an image, by the ecosystem's naming, if one exists.

    - ``<stem><suffix>`` beside it (``_seg``, ``_SEG``, ``_msk``, ``_mask``, ``_label``,
      ``_labels``);
    - BIDS / TPTBox: the same entities plus a ``seg-<x>`` entity, suffix ``msk`` or ``dseg``
      (``sub-1_label-22_ct`` with ``sub-1_seg-vert_label-22_msk``; ``seg-vert`` first);
    - nnU-Net: ``imagesTr/X_0000`` with ``labelsTr/X`` (``imagesTs`` with ``labelsTs``).
    """
    p = Path(image_path)
    stem, ext = split_name(p)
    exts = tuple(dict.fromkeys((ext, ".nii.gz", ".nii")))
    for suf in _SIBLING_SUFFIXES:
        for e in exts:
            cand = p.with_name(f"{stem}{suf}{e}")
            if cand.is_file():
                return cand
    image = _bids(stem)
    if image is not None and "seg" not in image[0]:
        found = []
        for cand in p.parent.iterdir():
            parsed = _bids(split_name(cand)[0]) if is_nifti_path(cand) else None
            if parsed is None or parsed[1] not in ("msk", "dseg", "mask") or "seg" not in parsed[0]:
                continue
            ents = {k: v for k, v in parsed[0].items() if k != "seg"}
            if ents == image[0]:
                found.append((parsed[0]["seg"] != "vert", cand.name, cand))
        if found:
            return sorted(found)[0][2]
    if p.parent.name in ("imagesTr", "imagesTs") and re.search(r"_\d{4}$", stem):
        folder = p.parent.parent / p.parent.name.replace("images", "labels")
        for e in exts:
            cand = folder / f"{stem[:-5]}{e}"
            if cand.is_file():
                return cand
    return None


def looks_like_label_data(array: np.ndarray) -> bool:
    """True when voxel data read as a label map rather than an image: whole numbers, none
    negative, at most 64 distinct values and mostly background (on a subsample of at most
    ~1 million voxels). Images have hundreds of grey values."""
    arr = np.asarray(array)
    if arr.dtype.kind not in "uif" or arr.size == 0:
        return False
    step = max(1, int(round((arr.size / 1e6) ** (1 / arr.ndim))))
    sample = np.asarray(arr[tuple(slice(None, None, step) for _ in range(arr.ndim))])
    # mutation-equivalent[and -> or]: integers are always finite and whole
    if arr.dtype.kind == "f" and not (np.all(np.isfinite(sample)) and np.array_equal(sample, np.rint(sample))):
        return False
    values, counts = np.unique(sample, return_counts=True)  # sorted: a negative value comes first
    return len(values) <= 64 and values[0] == 0 and counts[0] >= 0.3 * sample.size


def is_label_file(path: str | os.PathLike) -> bool:
    """True when a NIfTI file is a segmentation: its name says so, or its header carries a
    label table (TotalSegmentator writes one into every output, whatever the file name).
    Reads the header only."""
    if looks_like_labels(path):
        return True
    from ..anatomy.labelnames import read_header_names

    try:
        check_readable(path)  # before nibabel: its gzip reader crashes on an unreadable file
        header = nib.load(str(path)).header
    except Exception:  # noqa: BLE001 - an unreadable file is reported by the loader
        return False
    found = read_header_names(header, str(path))
    return found is not None and bool(found.names)


@dataclass(frozen=True,
           slots=True)  # mutation-equivalent: slots save memory only
class NiftiVolume:
    """A NIfTI file read in its own voxel order and native dtype."""

    path: str
    array: np.ndarray
    affine: np.ndarray
    header: Any


def _squeeze_to_3d(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    if len(shape) == 3:
        return shape
    if len(shape) > 3 and all(s == 1 for s in shape[3:]):  # mutation-equivalent[Gt -> GtE]: 3 returned above
        return shape[:3]
    return None


def read_nifti(path: str | os.PathLike, *, what: str = "image") -> NiftiVolume:
    """Read a 3-D NIfTI file in its native dtype, or raise :class:`SpineIOError`.

    Every error message starts with the file path and says what is wrong: missing,
    empty, not NIfTI, truncated or corrupt compression, not 3-D, unusable affine.
    """
    p = Path(path)
    src = str(p)
    if not p.exists():
        raise SpineIOError(f"{src}: no such file")
    if p.is_dir():
        raise SpineIOError(f"{src}: is a folder, expected a .nii or .nii.gz file")
    if p.stat().st_size == 0:
        raise SpineIOError(f"{src}: file is empty (0 bytes)")
    if not is_nifti_path(p):
        raise SpineIOError(f"{src}: not a NIfTI file name (expected .nii or .nii.gz)")
    check_readable(src)  # before any decoder: the gzip index reader crashes on an unreadable file
    try:
        img = nib.load(src)
    except Exception as exc:  # nibabel raises many kinds; name the problem
        if src.lower().endswith(".gz") and is_gzip(src):
            gunzip_verified(src)  # a damaged gzip stream says so (nibabel: "file type")
        raise SpineIOError(f"{src}: cannot read as NIfTI ({_describe(exc)})") from exc
    if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
        raise SpineIOError(f"{src}: not a NIfTI-1/2 image ({type(img).__name__})")
    shape3 = _squeeze_to_3d(img.shape)
    if shape3 is None:
        raise GeometryError(
            f"{src}: {what} must be a 3-D volume, got {len(img.shape)}-D shape {img.shape}"
        )
    check_header(img, src, p.stat().st_size)
    affine = geometry.check_affine(img.affine, src)
    if src.lower().endswith(".gz"):
        arr = read_gz_array(src, img)  # every gzip member's CRC-32 and length checked
    else:
        try:
            arr = np.asanyarray(img.dataobj)
        except Exception as exc:
            raise SpineIOError(f"{src}: voxel data cannot be read ({_describe(exc)})") from exc
    if arr.shape != shape3:
        arr = arr.reshape(shape3, order="A")
    if what == "labels" and not arr.flags.writeable:
        arr = arr.copy(order="K")  # labels are painted in place
    return NiftiVolume(path=src, array=arr, affine=affine, header=img.header.copy())


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return ""  # pragma: no cover


def _bitpix_on_disk(src: str, hdr) -> int:
    """``bitpix`` as the file has it (nibabel quietly repairs it on load)."""
    where = 14 if isinstance(hdr, nib.Nifti2Header) else 72
    with nib.openers.ImageOpener(src) as f:
        raw = f.read(where + 2)  # mutation-equivalent[2 -> 3]: one more byte, never read
    return int(np.frombuffer(raw, dtype=np.dtype(np.int16).newbyteorder(hdr.endianness),
                             count=1, offset=where)[0])


def check_header(img, src: str, file_size: int) -> None:
    """Refuse a NIfTI header that contradicts itself or its file, before any voxel is read.

    Checks: the voxel data start after the header and its extensions (``vox_offset``);
    ``bitpix`` matches the data type; the dimensions are positive and the data they
    declare fit in the file (for ``.nii.gz``: in what the compressed size can hold at
    deflate's best ratio); voxel sizes are finite and below 1 m.
    """
    hdr = img.header
    dtype = np.dtype(hdr.get_data_dtype())
    shape = tuple(int(d) for d in hdr.get_data_shape())
    if not shape or any(d <= 0 for d in shape):
        raise SpineIOError(f"{src}: the header's dimensions {shape} are not all positive")
    bitpix = _bitpix_on_disk(src, hdr)
    if bitpix != dtype.itemsize * 8:
        raise SpineIOError(
            f"{src}: the header is inconsistent: bitpix {bitpix} for data type {dtype} "
            f"({dtype.itemsize * 8} bits); the file is corrupt")
    offset = int(getattr(img.dataobj, "offset", hdr.get_data_offset()))
    ext_bytes = sum(e.get_sizeondisk() for e in getattr(hdr, "extensions", ()))
    min_offset = int(hdr["sizeof_hdr"]) + 4 + ext_bytes
    if offset < min_offset:
        raise SpineIOError(
            f"{src}: vox_offset {offset} points inside the header (the voxel data cannot start "
            f"before byte {min_offset}); the header is corrupt")
    nbytes = math.prod(shape) * dtype.itemsize
    gz = src.lower().endswith(".gz")
    room = max_gunzipped_size(file_size) if gz else file_size
    if offset + nbytes > room:
        what = (f"a {_size(file_size)} gzip file can hold at most {_size(room)}" if gz
                else f"the file holds {_size(max(0, file_size - offset))} after the header")
        raise SpineIOError(
            f"{src}: the header declares {_size(nbytes)} of voxel data ({shape}, {dtype}), but "
            f"{what}: the header is corrupt or the file is truncated")
    zooms = np.asarray(hdr["pixdim"][1:1 + min(3, len(shape))], dtype=np.float64)
    if not np.all(np.isfinite(zooms)) or np.any(np.abs(zooms) > 1000):
        raise SpineIOError(
            f"{src}: implausible voxel size {', '.join(f'{z:g}' for z in zooms)} mm in the header")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, EOFError | gzip.BadGzipFile | zlib.error) or "gzip" in str(exc).lower():
        return f"truncated or corrupt gzip data: {exc}"
    text = str(exc) or type(exc).__name__
    if "ended before" in text or "truncat" in text.lower() or ("Expected" in text and "bytes" in text):
        return f"file is truncated: {text}"
    return text


def guess_label_scheme(path: str | os.PathLike) -> str:
    """Native label scheme from a file name: CSpineSeg ``_SEG``, CTSpine1K ``_seg``, else VerSe."""
    name = Path(path).name
    if name.endswith("_SEG.nii.gz") or name.endswith("_SEG.nii"):
        return "cspineseg"
    if re.search(
        r"^(1\.3\.6\.1\.4\.1\.9328\.50\.4\.|CTC-|liver_|HN_P|volume-covid19-A-).*_seg\.nii", name
    ):
        return "ctspine1k"
    return "verse"


def guess_modality(path: str | os.PathLike, array: np.ndarray, header: Any = None) -> str:
    """CT / MR-T1 / MR-T2 from the file name, else from intensities (HU below -500 => CT)."""
    name = Path(path).name.lower()
    if re.search(r"(^|[_\-.])t2", name):
        return "MR-T2"
    if re.search(r"(^|[_\-.])t1", name):
        return "MR-T1"
    if re.search(r"(^|[_\-.])(ct|hu)([_\-.]|$)", name):
        return "CT"
    step = tuple(max(1, s // 32) for s in array.shape)
    sample = np.asarray(array[:: step[0], :: step[1], :: step[2]])
    if sample.size and np.issubdtype(sample.dtype, np.number) and float(sample.min()) < -500:
        return "CT"
    return "MR"


def labels_to_int(arr: np.ndarray, src: str) -> np.ndarray:
    """Label voxels as integers; raises :class:`SpineIOError` (naming ``src``) for negative,
    non-finite or non-whole values."""
    if arr.dtype.kind in "ui":
        if arr.dtype.kind == "i" and arr.size and int(arr.min()) < 0:
            raise SpineIOError(f"{src}: labels contain negative values (min {int(arr.min())})")
        return arr
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise SpineIOError(f"{src}: labels contain NaN or infinite values")
        r = np.rint(arr)
        if not np.array_equal(r, arr):
            bad = np.unique(arr[r != arr])[:5]
            raise SpineIOError(
                f"{src}: labels are not whole numbers (e.g. {', '.join(f'{b:g}' for b in bad)}); "
                "is this an image rather than a segmentation?"
            )
        if r.size and (r.min() < 0 or r.max() > 65535):
            raise SpineIOError(f"{src}: label values outside 0-65535")
        # mutation-equivalent[0 -> 1]: the initial value counts for an empty array only
        return r.astype(np.uint16 if r.max(initial=0) > 255 else np.uint8)
    raise SpineIOError(f"{src}: labels have unsupported dtype {arr.dtype}")


def load_case(
    image_path: str | os.PathLike,
    labels_path: str | os.PathLike | None = None,
    *,
    label_scheme: str | None = None,
    modality: str | None = None,
    case_id: str | None = None,
    dataset: str = "nifti",
    metadata: dict | None = None,
    series: str | int | None = None,
) -> SpineCase:
    """Load a NIfTI image or a DICOM series (and optionally its labels) into a :class:`SpineCase`.

    Parameters
    ----------
    image_path, labels_path : path
        ``.nii`` / ``.nii.gz`` files on the same voxel grid; the image may also be a DICOM
        file or folder (:mod:`napari_spine.io.dicom`), whose labels are then a NIfTI on
        its grid (the grid of its dcm2niix conversion).
    series : str or int, optional
        The DICOM series to open (SeriesInstanceUID or SeriesNumber) when a folder holds
        several; default: the largest axial or sagittal one.
    label_scheme : str, optional
        Native scheme of the labels (see :func:`napari_spine.anatomy.labelmaps.available_schemes`);
        guessed from the file name when omitted (VerSe/TPTBox numbering by default).
    modality : str, optional
        ``"CT"``, ``"MR-T1"``, ``"MR-T2"`` ...; guessed when omitted.

    The image and labels are reoriented to the display convention of
    :mod:`napari_spine.geometry` as views (no copy); labels are mapped to canonical ids
    as ``uint8``. The file geometry and headers are kept for an exact export. Every
    failure is a :class:`SpineIOError` naming the file.
    """
    with reading(image_path, "load"):
        return _load_case(image_path, labels_path, label_scheme=label_scheme, modality=modality,
                          case_id=case_id, dataset=dataset, metadata=metadata, series=series)


def _dicom_modality(vol) -> str:
    """CT, or MR-T1/MR-T2 from the series description (MR when it does not say)."""
    mod = str(vol.meta.get("modality", "")).upper()
    if mod == "CT":
        return "CT"
    if mod == "MR":
        desc = str(vol.meta.get("series_description", "")).lower()
        if re.search(r"(^|[^a-z0-9])t2", desc):
            return "MR-T2"
        if re.search(r"(^|[^a-z0-9])t1", desc):
            return "MR-T1"
        return "MR"
    return "unknown"


def _load_case(image_path, labels_path, *, label_scheme, modality, case_id, dataset,
               metadata, series=None) -> SpineCase:
    from . import dicom

    if not is_nifti_path(image_path) and dicom.is_dicom_source(image_path):
        vol = dicom.read_series(image_path, series=series)
        modality = modality or _dicom_modality(vol)
        case_id = case_id or Path(image_path).name.removesuffix(".dcm").removesuffix(".zip")
        dataset = "dicom" if dataset == "nifti" else dataset
        metadata = {**{k: v for k, v in vol.meta.items() if k != "identifiers"},
                    "dicom_identifiers": vol.meta.get("identifiers", {}), **(metadata or {})}
        extra = list(vol.warnings)
    else:
        vol = read_nifti(image_path, what="image")
        extra = []
    if vol.array.dtype.kind not in "uif":
        raise SpineIOError(f"{vol.path}: unsupported image dtype {vol.array.dtype}")
    labels = None
    native = None
    label_header = None
    label_warnings: list[str] = []
    scheme = label_scheme
    if labels_path is not None:
        lab = read_nifti(labels_path, what="labels")
        if lab.array.shape != vol.array.shape:
            raise GeometryError(
                f"{lab.path}: labels shape {lab.array.shape} differs from the image "
                f"{vol.path} shape {vol.array.shape}"
            )
        if not np.allclose(lab.affine, vol.affine, atol=1e-3, rtol=1e-5):
            raise GeometryError(
                f"{lab.path}: labels are not on the image grid of {vol.path} "
                f"(affines differ:\n{lab.affine}\nvs\n{vol.affine})"
            )
        labels, scheme, label_warnings, native = _canonical_labels(lab, scheme)
        label_header = lab.header
    case = SpineCase.from_arrays(
        vol.array,
        vol.affine,
        labels,
        case_id=case_id or nifti_stem(vol.path),
        dataset=dataset,
        modality=modality or guess_modality(vol.path, vol.array, vol.header),
        label_scheme=scheme or "verse",
        metadata={"image_path": vol.path, "labels_path": str(labels_path or ""),
                  **(metadata or {})},
        header=vol.header,
        path=vol.path,
        label_header=label_header,
        label_path=str(labels_path or ""),
        extra_warnings=[*extra, *label_warnings],
        native_labels=native,
    )
    return case


def load_labels_file(path: str | os.PathLike, *, label_scheme: str | None = None) -> SpineCase:
    """Load a segmentation file alone as a case whose labels are the file and image is empty.

    The "image" is the label array itself (so geometry and display are the same code
    path); callers show only the labels.
    """
    with reading(path, "load as labels"):
        lab = read_nifti(path, what="labels")
        canon, scheme, label_warnings, native = _canonical_labels(lab, label_scheme)
    return SpineCase.from_arrays(
        canon, lab.affine, canon, case_id=nifti_stem(lab.path), native_labels=native,
        dataset="nifti", label_scheme=scheme, header=lab.header, path=lab.path,
        label_header=lab.header, label_path=lab.path,
        metadata={"labels_path": lab.path, "labels_only": True}, extra_warnings=label_warnings,
    )


def _canonical_labels(lab: NiftiVolume, scheme: str | None, names=None):
    """A labels file's ids in canonical ids, the scheme used, what the user must be told,
    and the file's own ids when the canonical view is not the same array (else None).

    Without a given scheme the file's own words come first: a label table in its header
    extension or a sidecar beside it (:mod:`napari_spine.anatomy.labelnames`); only a file that
    names nothing falls back to the scheme its file name suggests. ``names`` are names the
    caller already knows (a folder of masks named by class).
    """
    native = labels_to_int(lab.array, lab.path)
    warnings: list[str] = []
    if scheme is None:
        from ..anatomy.labelnames import (
            LabelNames,
            cord_from_shape,
            read_label_names,
            spine_doubts,
            subsample,
        )

        if names is None:
            names = read_label_names(lab.path, lab.header)
        if names is not None:
            warnings.extend(names.warnings)
        if names is not None and names.names:
            return _named(lab, native, names, warnings, report_others=True)
        if _is_cord_by_level(lab):
            return _cord_by_level(lab, native, warnings)
        sample = subsample(native)
        shape = cord_from_shape(native, lab.affine, sample)
        if shape is not None:  # a binary cord mask: named by a guess, shown as a guess
            warnings.append(f"{lab.path}: the file does not say what its one label is; it is shown as "
                            f"spinal cord because of its shape ({shape}): a guess; choose a scheme "
                            "with --scheme or the Spine case panel if it is something else")
            return _named(lab, native, LabelNames({1: "spinal_cord"}, "guess", lab.path), warnings)
        scheme = guess_label_scheme(lab.path)
        doubts = spine_doubts(native, lab.affine, get_label_map(scheme).to_canonical, sample)
        if doubts:  # a guess that does not hold: the ids are shown as what they are, unknown
            warnings.append(
                f"{lab.path}: the file does not say what its ids are, and they do not look like "
                f"'{scheme}' spine labels ({'; '.join(doubts)}): they are shown as unknown labels; "
                "choose a scheme with --scheme or the Spine case panel")
            from ..anatomy.labelmaps import present_ids

            unknown = {int(i): f"Label {int(i)} (unknown)" for i in present_ids(native) if i}
            return _named(lab, native, LabelNames(unknown, "unknown", lab.path), warnings)
    canon = get_label_map(scheme).to_canonical_array(native, source=lab.path)
    return canon, scheme, warnings, (None if canon is native else native)


def _named(lab: NiftiVolume, native: np.ndarray, names, warnings: list[str], report_others=False):
    """The canonical view through the scheme that ``names`` define (registered by name)."""
    from ..anatomy.labelmaps import label_map_from_names, present_ids, register_label_map

    present = present_ids(native)
    lm = label_map_from_names(names, present, lab.path)
    if report_others:
        others = sorted({names.names[int(i)] for i in present
                         if int(i) and lm.to_canonical.get(int(i)) is None})
        if others:
            shown = ", ".join(others[:6]) + (f" and {len(others) - 6} more" if len(others) > 6 else "")
            warnings.append(f"{len(others)} structure(s) outside the spine table are not shown "
                            f"as spine labels: {shown}")
    canon = lm.to_canonical_array(native, source=lab.path, ids=present)
    return canon, register_label_map(lm), warnings, (None if canon is native else native)


def _is_cord_by_level(lab: NiftiVolume) -> bool:
    """Spinal Cord Toolbox's ``*_seg_labeled`` files: a cord mask whose values are the
    vertebral level (2 = C2 ...), stored as floats."""
    name = nifti_stem(lab.path).lower()
    return lab.array.dtype.kind == "f" and name.endswith(("_labeled", "_labelled"))


def _cord_by_level(lab: NiftiVolume, native: np.ndarray, warnings: list[str]):
    """Spinal cord in the anatomy view; each voxel's level stays in the native ids."""
    import hashlib
    from types import MappingProxyType

    from ..anatomy import ontology
    from ..anatomy.labelmaps import LabelMap, present_ids, register_label_map

    present = [int(i) for i in present_ids(native) if i]
    # mutation-equivalent[and -> or]: a cord's values are vertebral levels, named the same either way
    levels = {v: k for k, v in ((s.name, s.id) for s in ontology.STRUCTURES if s.kind == "vertebra"
                                and s.level is not None)}
    names = {i: f"Spinal cord at {levels.get(i, f'level {i}')}" for i in present}
    lm = LabelMap(
        name="cord-levels-" + hashlib.sha256(repr(sorted(names.items())).encode()).hexdigest()[:10],
        description="Spinal Cord Toolbox cord mask labelled by vertebral level (value = level)",
        to_canonical=MappingProxyType(dict.fromkeys(present, ontology.SPINAL_CORD)),
        from_canonical=MappingProxyType({ontology.SPINAL_CORD: present[0]} if present else {}),
        unmapped="background", native_names=MappingProxyType(names), source="scheme")
    warnings.append(f"{lab.path}: a spinal cord mask labelled by level "
                    f"({', '.join(names[i].removeprefix('Spinal cord at ') for i in present)}); "
                    "shown as spinal cord, the levels are kept in the file's ids")
    canon = lm.to_canonical_array(native, source=lab.path)
    return canon, register_label_map(lm), warnings, native



