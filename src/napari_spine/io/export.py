"""Safe, geometry-exact export of labels (NIfTI) and landmarks (JSON / CSV).

Every write goes to a temporary file in the target folder, is re-read and verified
(affine, qform/sform codes, shape, voxel-exact labels and their counts), and only then
renamed over the target. A failed export leaves the target as it was.

Label files are written on the *source* grid and in the source voxel order, with the
source header (the labels file's own header when the labels came from one; otherwise
only the image geometry, with dtype and scaling reset so that image scaling can never
alter label values). The file is built in memory (:mod:`._niftiwrite`: nibabel's header
block, the voxels straight from the array's memory) and gzip-compressed by zlib-ng at level
6, one segment per core: faster than SimpleITK's writer, and smaller than it on label
volumes, readable by every NIfTI tool. The verification re-reads the written bytes and
compares them with the bytes in memory, parses the header back with nibabel, and
(``verify="decode"``, the default) decodes every segment again, side by side, comparing
every voxel and the CRC-32 (recomputed by libdeflate).
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.fileholders import FileHolder

from .. import geometry
from ..anatomy import ontology
from ..anatomy.labelmaps import LabelMap, get_label_map, label_counts
from ..case import Landmarks, SpineCase
from ..errors import ExportError, LabelMapError
from ._fastgz import read_gz_array
from .files import atomic_path, nifti_header, write_bytes_atomic
from .nifti import split_name

__all__ = ["ExportResult", "export_labels", "export_landmarks", "read_landmarks", "read_rulers"]


@dataclass(frozen=True,
           slots=True)  # mutation-equivalent: memory layout only
class ExportResult:
    """What an export wrote, after verification."""

    path: Path
    scheme: str
    dtype: str
    counts: dict[int, int]
    seconds: float
    #: voxels of structures outside the spine table left out (``other_structures="drop"``)
    dropped_voxels: int = 0  # mutation-equivalent: export_labels always sets it


def _label_header(case: SpineCase, shape, dtype) -> tuple[Any, type]:
    src = case.source
    from_image = src.label_header is None
    hdr, klass = nifti_header(src.header if from_image else src.label_header, src.affine, shape, dtype)
    if from_image:
        hdr["cal_min"] = 0
        hdr["cal_max"] = 0
        hdr.set_intent("label")
    return hdr, klass


@dataclass(frozen=True)  # mutation-equivalent: an internal record nobody changes
class _Written:
    """What was written: the uncompressed parts, and the gzip stream (None for ``.nii``)."""

    parts: Any  # NiftiBytes, or None when nibabel wrote the file itself
    stream: Any  # GzipStream, or None


def _write_nifti(tmp: Path, img, compresslevel: int | None, name: str) -> _Written:
    """Serialise ``img`` into ``tmp`` (gzip when ``compresslevel`` is set), flushed to disk.
    The gzip header carries the final file ``name`` and no time stamp, so reruns give the
    same bytes. Data that would need scaling goes through nibabel's writer instead."""
    from ._niftiwrite import gzip_stream, nifti_bytes

    try:
        parts = nifti_bytes(img)
    except ValueError:
        parts = None
    with open(tmp, "wb") as raw:
        if parts is None:
            fh = FileHolder(fileobj=raw)
            img.to_file_map({"image": fh, "header": fh})
            stream = None
        elif compresslevel is not None:
            stream = gzip_stream([parts.header, parts.payload], name, compresslevel)
            raw.write(stream.data)
        else:
            stream = None
            raw.write(parts.header)
            raw.write(parts.payload)
        raw.flush()
        os.fsync(raw.fileno())
    if parts is None and compresslevel is not None:
        raise ExportError(f"{tmp}: data needs scaling; cannot be written compressed here")
    return _Written(parts, stream)


def _originals(case: SpineCase) -> set[Path]:
    paths = {case.source.path, case.source.label_path, case.metadata.get("image_path", ""),
             case.metadata.get("labels_path", "")}
    from ..datasets._pt import location_path

    return {Path(location_path(str(p))).resolve() for p in paths if p}


def _protect_original(case: SpineCase, target: Path, overwrite_original: bool) -> Path | None:
    """Refuse to overwrite a dataset file unless asked; then keep a backup copy first."""
    if target.resolve() not in _originals(case) or not target.exists():
        return None
    if not overwrite_original:
        raise ExportError(
            f"{target}: this is the dataset's original file; pass overwrite_original=True "
            "(a backup copy is kept) or choose another name"
        )
    import shutil

    stem, ext = split_name(target)
    backup = target.with_name(f"{stem}.orig-{time.strftime('%Y%m%d-%H%M%S')}{ext}")
    shutil.copy2(target, backup)
    return backup


# long: the verified write in its one order (check, convert ids, header, write to a
# temporary file, read back and compare, rename), so no step can be skipped
def export_labels(
    case: SpineCase,
    labels: np.ndarray | None,
    path: str | os.PathLike,
    scheme: str | LabelMap = "native",
    *,
    compresslevel: int = 6,
    overwrite_original: bool = False,
    other_structures: str = "keep",
    verify: str = "decode",
) -> ExportResult:
    """Write labels as NIfTI on the case's source grid, orientation and header.

    Parameters
    ----------
    case : SpineCase
        Supplies the source geometry and headers.
    labels : (D0, D1, D2) int array or None
        Canonical ids in display order (``None``: ``case.labels``).
    path : path
        ``.nii.gz`` or ``.nii``.
    scheme : str or LabelMap
        ``"native"`` (the scheme the case's labels came from), ``"canonical"`` (VerSe /
        TPTBox ids), any scheme name from :mod:`napari_spine.anatomy.labelmaps`, or a LabelMap.
    overwrite_original : bool
        Writing over the dataset's own image or label file is refused unless this is set;
        then a time-stamped backup copy is made first.
    other_structures : ``"keep"`` or ``"drop"``
        Structures of the label file outside the spine table (organs ...) in a non-native
        export: kept as ids ``1000 + native id``, named in the header table and sidecar, or
        dropped (``ExportResult.dropped_voxels`` says how many voxels).

    Returns the verified :class:`ExportResult` (label counts are of the written ids).
    """
    t0 = time.perf_counter()
    target = Path(path)
    if not str(target).lower().endswith((".nii", ".nii.gz")):
        raise ExportError(f"{target}: label export needs a .nii.gz or .nii file name")
    lab = case.labels if labels is None else np.asanyarray(labels)
    if lab is None:
        raise ExportError(f"{target}: case {case.case_id} has no labels to export")
    if lab.shape != case.shape:
        raise ExportError(
            f"{target}: labels shape {lab.shape} differs from the case image shape {case.shape}"
        )
    if lab.dtype.kind not in "ui":
        raise ExportError(f"{target}: labels must be integers, got {lab.dtype}")
    # one counting pass, on the file-ordered array (contiguous for loaded cases)
    file_canonical = geometry.from_display(lab, case.source.ornt)
    canon_counts = label_counts(file_canonical)
    unknown = [i for i in canon_counts if i not in ontology.BY_ID]
    if unknown:
        raise LabelMapError(
            f"{target}: label id(s) {unknown} are not napari-spine structures; "
            "nothing was written"
        )
    if isinstance(scheme, LabelMap):
        lmap = scheme
    else:
        lmap = get_label_map({"native": case.label_scheme, "canonical": "verse"}.get(scheme, scheme))
    added: dict[int, str] = {}
    if scheme == "native" and case.native_labels is not None:
        file_order, added = _native_ids(case, lmap, file_canonical, target)
        counts = label_counts(file_order)
    else:
        file_order = lmap.from_canonical_array(
            file_canonical, target=target, ids=np.array([0, *canon_counts], dtype=np.int64)
        )
        counts = {}
        for cid, n in canon_counts.items():
            nid = lmap.from_canonical.get(cid, cid)
            counts[nid] = counts.get(nid, 0) + n
    dropped = 0
    if scheme != "native" and case.native_labels is not None:
        file_order, kept, dropped = _other_structures(case, file_canonical, file_order, other_structures)
        added.update(kept)
        for k in kept:
            counts[k] = int(np.count_nonzero(file_order == k))
    hdr, klass = _label_header(case, file_order.shape, file_order.dtype)
    if scheme != "native":
        # the source's table named the source's ids: the written ids get a table of their own
        had_table = _drop_label_tables(hdr)
        if had_table or added:
            names = {int(k): lmap.native_names.get(int(k)) or ontology.name_of(
                # mutation-equivalent[and -> or]: the added names override below anyway
                lmap.to_canonical.get(int(k), int(k))) for k in counts if k and int(k) not in added}
            added = {**names, **added}
    if added:
        _name_in_header(hdr, added)
    expected_affine = hdr.get_best_affine()
    img = klass(file_order, None, hdr)
    _protect_original(case, target, overwrite_original)
    try:
        with atomic_path(target) as tmp:
            gz = target.name.lower().endswith(".gz")
            written = _write_nifti(tmp, img, compresslevel if gz else None, target.name)
            # the re-read must equal what was meant to be written, voxel for voxel, so the
            # counts above are the counts of the file
            _verify(tmp, target, file_order, hdr, expected_affine, written, verify)
    except (ExportError, LabelMapError):
        raise
    except OSError as exc:
        raise ExportError(f"{target}: write failed ({exc}); nothing was written") from exc
    if added:
        _write_names_sidecar(target, lmap, added)
    return ExportResult(
        path=target,
        scheme=lmap.name,
        dtype=str(file_order.dtype),
        counts=counts,
        seconds=time.perf_counter() - t0,
        dropped_voxels=dropped,
    )


def _native_ids(case: SpineCase, lmap: LabelMap, file_canonical: np.ndarray, target: Path
                ) -> tuple[np.ndarray, dict[int, str]]:
    """The file's own ids with the edits of the anatomy view written into them.

    Every voxel whose anatomy id is what the loaded file gave keeps its native id (organs,
    ids outside the spine table, the file's dtype); an edited voxel gets the native id of
    its new structure, or, for a structure the file has no id for, its anatomy id, which is
    (or the next free id, when that is another structure's id in the file), which is then
    named in the written label table (returned as ``{id: name}``).
    """
    native = geometry.from_display(case.native_labels, case.source.ornt)
    baseline = lmap.to_canonical_array(native, source=target)
    changed = file_canonical != baseline
    if case.source.label_header is not None:
        dtype = np.dtype(case.source.label_header.get_data_dtype())
    else:
        dtype = native.dtype
    out = np.array(native, dtype=dtype, order="K", copy=True) if changed.any() or dtype != native.dtype \
        else native
    added: dict[int, str] = {}
    if changed.any():
        new = file_canonical[changed]
        ids = np.unique(new)
        used = set(lmap.to_canonical) | set(getattr(lmap, "native_names", {}) or {})
        table = dict(lmap.from_canonical)
        used |= set(int(i) for i in np.unique(native))
        free = max(used, default=0) + 1  # mutation-equivalent[0 -> 1]: used holds the file's ids
        for cid in (int(i) for i in ids if i):
            if cid in table:
                continue
            nid = cid
            if nid in used:  # the anatomy id is another structure's id in this file: a new id
                nid, free = free, free + 1
            if dtype.kind in "ui" and nid > np.iinfo(dtype).max:
                raise LabelMapError(f"{target}: no free {dtype} id left for {ontology.name_of(cid)}; "
                                    "export with scheme='canonical'")
            table[cid] = nid
            used.add(nid)
            added[nid] = ontology.name_of(cid)
        # mutation-equivalent[1 -> 2, 0 -> 1]: longer
        lut = np.zeros(int(ids.max(initial=0)) + 1, dtype=dtype)
        for cid, nid in table.items():
            if 0 < cid < lut.size:
                lut[cid] = nid
        out[changed] = lut[new]
    return out, added


OTHER_OFFSET = 1000  # other structures in a non-native export: 1000 + their native id


def _other_structures(case: SpineCase, file_canonical: np.ndarray, file_order: np.ndarray, how: str
                      ) -> tuple[np.ndarray, dict[int, str], int]:
    """Keep (as 1000 + native id) or drop the file's structures outside the spine table
    wherever the anatomy view was not edited; returns the array, the names kept and the
    number of voxels dropped."""
    if how not in ("keep", "drop"):
        raise ValueError(f"other_structures must be 'keep' or 'drop', not {how!r}")
    others = {e.native_id: e.name for e in case.other_structures()}
    if not others:
        return file_order, {}, 0
    native = geometry.from_display(case.native_labels, case.source.ornt)
    own = get_label_map(case.label_scheme)
    where = np.isin(native, list(others)) & (file_canonical == own.to_canonical_array(native))
    if how == "drop":
        return file_order, {}, int(np.count_nonzero(where))
    top = OTHER_OFFSET + max(others)
    # mutation-equivalent[LtE -> Lt]: both hold it
    dtype = np.uint16 if top <= np.iinfo(np.uint16).max else np.uint32
    out = file_order.astype(dtype)
    out[where] = native[where].astype(dtype) + OTHER_OFFSET
    present = {int(i) for i in np.unique(native[where])}
    return out, {OTHER_OFFSET + i: others[i] for i in sorted(present)}, 0


_XML_LABEL = '<Label Key="{k}" Red="{r}" Green="{g}" Blue="{b}" Alpha="1"><![CDATA[{name}]]></Label>'


def _name_in_header(hdr, added: dict[int, str]) -> None:
    """Add names to the header's XML label table (TotalSegmentator's form), or start one."""
    def row(k: int, name: str) -> str:
        try:
            r, g, b, _ = ontology.color_of(ontology.by_name(name).id)
        except KeyError:  # a structure outside the spine table keeps a neutral colour
            r, g, b = 0.6, 0.6, 0.6
        return _XML_LABEL.format(k=k, name=name, r=r, g=g, b=b)

    rows = "\n".join(row(k, v) for k, v in sorted(added.items()))
    for ext in list(hdr.extensions):
        text = _ext_text(ext)
        if "</LabelTable>" in text:
            hdr.extensions.remove(ext)
            hdr.extensions.append(nib.nifti1.Nifti1Extension(
                # mutation-equivalent[1 -> 2]: a table has one closing tag
                ext.get_code(), text.replace("</LabelTable>", rows + "\n</LabelTable>", 1).encode()))
            return
    xml = ('<?xml version="1.0" encoding="UTF-8"?><CaretExtension><VolumeInformation Index="0">'
           f"<LabelTable>\n{rows}\n</LabelTable></VolumeInformation></CaretExtension>")
    # mutation-equivalent[0 -> 1]: readers find the table by its content, whatever the code
    hdr.extensions.append(nib.nifti1.Nifti1Extension(0, xml.encode()))


def _ext_text(ext) -> str:
    content = ext.get_content()
    return content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)


def _drop_label_tables(hdr) -> bool:
    """Remove XML label tables from a header's extensions; True when there was one."""
    found = False
    for ext in list(hdr.extensions):
        text = _ext_text(ext)
        if "<LabelTable" in text or "<Label " in text:
            hdr.extensions.remove(ext)
            found = True
    return found


def _write_names_sidecar(target: Path, lmap: LabelMap, added: dict[int, str]) -> None:
    """``<stem>.json`` beside the written file naming every id in it (the file's own names
    and the ones added)."""
    names = {**{int(k): str(v) for k, v in (lmap.native_names or {}).items()}, **added}
    stem = split_name(target)[0]
    # mutation-equivalent[1 -> 2]: indentation only
    doc = json.dumps({"labels": {str(k): v for k, v in sorted(names.items())}}, indent=1)
    write_bytes_atomic(target.with_name(f"{stem}.json"), doc.encode("utf-8"))


def _verify(tmp: Path, target: Path, expected: np.ndarray, hdr, expected_affine,
            written: _Written | None = None, how: str = "decode") -> None:
    """The file at ``tmp`` is what was meant: its bytes are the bytes in memory, its header
    parses to the expected geometry, and (``how="decode"``) every segment of the stream, decoded again,
    gives every voxel of ``expected``."""
    if how not in ("decode", "bytes"):
        raise ValueError(f"verify must be 'decode' or 'bytes', not {how!r}")
    if written is None or written.parts is None:
        return _verify_by_reading(tmp, target, expected, hdr, expected_affine)
    parts = written.parts
    try:
        on_disk = tmp.read_bytes()
        back = type(hdr).from_fileobj(io.BytesIO(parts.header))
    except Exception as exc:
        raise ExportError(f"{target}: written file cannot be re-read ({exc}); not saved") from exc
    problems = _header_problems(back, expected, hdr, expected_affine)
    stream = written.stream
    if not _same_bytes(on_disk, stream.data if stream is not None else parts):
        problems.append("the bytes on disk differ from the bytes written")
    if not problems and how == "decode" and stream is not None:
        from ._niftiwrite import check_stream

        try:
            problems += check_stream(stream, [parts.header, parts.payload])
        except Exception as exc:
            raise ExportError(f"{target}: written stream does not decode ({exc}); not saved") from exc
    if problems:
        raise ExportError(f"{target}: verification failed ({'; '.join(problems)}); not saved")


def _same_bytes(on_disk: bytes, written) -> bool:
    """Whether the file's bytes are the gzip stream written, or the header and voxels of an
    uncompressed file (compared without joining them into one more copy)."""
    if isinstance(written, bytes):
        return on_disk == written
    head = len(written.header)
    return on_disk[:head] == written.header and np.array_equal(
        np.frombuffer(on_disk, np.uint8, offset=head), np.frombuffer(written.payload, np.uint8))


def _header_problems(back, expected: np.ndarray, hdr, expected_affine) -> list[str]:
    problems = []
    shape = tuple(int(d) for d in back.get_data_shape())
    if shape != expected.shape:
        problems.append(f"shape {shape} != {expected.shape}")
    if not np.allclose(back.get_best_affine(), expected_affine, rtol=0, atol=1e-6):
        problems.append("affine differs")
    if int(back["qform_code"]) != int(hdr["qform_code"]) or int(back["sform_code"]) != int(hdr["sform_code"]):
        problems.append("qform/sform codes differ")
    if back.get_data_dtype().newbyteorder("=") != expected.dtype.newbyteorder("="):
        problems.append(f"dtype {back.get_data_dtype()} != {expected.dtype}")
    return problems


def _verify_by_reading(tmp: Path, target: Path, expected: np.ndarray, hdr, expected_affine) -> None:
    try:
        back = nib.load(str(tmp))
        # libdeflate (a different codec from the writer) decodes the payload
        data = read_gz_array(tmp, back) if tmp.name.endswith(".gz") else np.asanyarray(back.dataobj)
    except Exception as exc:
        raise ExportError(f"{target}: written file cannot be re-read ({exc}); not saved") from exc
    problems = _header_problems(back.header, expected, hdr, expected_affine)
    if not problems and not np.array_equal(data, expected):
        problems.append("label voxels differ")
    if problems:
        raise ExportError(f"{target}: verification failed ({'; '.join(problems)}); not saved")


# -- landmarks ------------------------------------------------------------------------

_CSV_FIELDS = ("index", "name", "structure_id", "structure", "i", "j", "k", "x_mm", "y_mm", "z_mm")


def _landmark_rows(case: SpineCase, lm: Landmarks) -> list[dict[str, Any]]:
    file_ijk = geometry.display_index_to_file_index(lm.coords, case.source.ornt, case.source.shape)
    world = geometry.voxel_to_world(case.source.affine, file_ijk)
    rows = []
    for n in range(len(lm)):
        sid = int(lm.structure_ids[n])
        rows.append(
            {
                "index": n,
                "name": lm.names[n],
                "structure_id": sid,
                "structure": ontology.name_of(sid),
                "i": float(file_ijk[n, 0]),
                "j": float(file_ijk[n, 1]),
                "k": float(file_ijk[n, 2]),
                "x_mm": float(world[n, 0]),
                "y_mm": float(world[n, 1]),
                "z_mm": float(world[n, 2]),
            }
        )
    return rows


def export_landmarks(
    case: SpineCase, path: str | os.PathLike, landmarks: Landmarks | None = None,
    rulers: list | None = None,
) -> Path:
    """Write landmarks as JSON or CSV (by suffix), atomically.

    Coordinates are given twice: voxel indices ``i, j, k`` of the *source file* grid
    and world RAS+ millimetres ``x_mm, y_mm, z_mm`` (from the source affine).

    ``rulers`` (:class:`~napari_spine.measurements.rulers.Ruler`) are saved with them: in the
    JSON document under ``"rulers"``; beside a CSV file as ``<name>_rulers.csv`` (one row a
    point).
    """
    target = Path(path)
    lm = landmarks if landmarks is not None else case.landmarks
    if lm is None and rulers:
        # mutation-equivalent[3 -> 4]: no rows either way
        lm = Landmarks(np.zeros((0, 3)), np.zeros(0, dtype=np.int64), ())
    if lm is None:
        raise ExportError(f"{target}: case {case.case_id} has no landmarks to export")
    rows = _landmark_rows(case, lm)
    ruler_rows = [_ruler_row(case, r) for r in rulers or ()]
    suffix = target.suffix.lower()
    if suffix == ".json":
        doc = {
            "case_id": case.case_id,
            "dataset": case.dataset,
            "coordinate_system": "RAS+ millimetres; i, j, k are voxel indices of the source file",
            "source_file": case.source.path,
            "source_axcodes": "".join(case.source.axcodes),
            "affine": case.source.affine.tolist(),
            "landmarks": rows,
            **({"rulers": ruler_rows} if rulers is not None else {}),
        }
        text = json.dumps(doc, indent=1)  # mutation-equivalent: indentation only
    elif suffix == ".csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=_CSV_FIELDS, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
        text = buf.getvalue()
    else:
        raise ExportError(f"{target}: landmark export needs a .json or .csv file name")
    with atomic_path(target) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if _read_rows(tmp) != [(r["structure_id"], r["name"]) for r in rows]:
            raise ExportError(f"{target}: verification of the written landmarks failed")
    if suffix == ".csv" and rulers is not None:
        _write_ruler_csv(target.with_name(split_name(target.name)[0] + "_rulers.csv"), ruler_rows)
    return target


_RULER_FIELDS = ("ruler", "kind", "label", "value", "unit", "point", "i", "j", "k", "x_mm", "y_mm", "z_mm")


def _ruler_row(case: SpineCase, ruler) -> dict[str, Any]:
    """A ruler as saved: its value from the case geometry, its points in RAS mm and in voxel
    indices of the source file (like the landmarks)."""
    row = ruler.row(case.affine)
    from ..measurements.rulers import as_points

    file_ijk = geometry.display_index_to_file_index(as_points(ruler.points), case.source.ornt,
                                                    case.source.shape)
    row["points_ijk"] = [[float(x) for x in p] for p in file_ijk]
    return row


def _write_ruler_csv(target: Path, ruler_rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=_RULER_FIELDS, lineterminator="\n")
    w.writeheader()
    for n, r in enumerate(ruler_rows):
        # mutation-equivalent[True -> False]: both lists come from the same points
        for m, (ras, ijk) in enumerate(zip(r["points_ras_mm"], r["points_ijk"], strict=True)):
            w.writerow({"ruler": n, "kind": r["kind"], "label": r["label"], "value": r["value"],
                        "unit": r["unit"], "point": m, "i": ijk[0], "j": ijk[1], "k": ijk[2],
                        "x_mm": ras[0], "y_mm": ras[1], "z_mm": ras[2]})
    write_bytes_atomic(target, buf.getvalue().encode("utf-8"))


def read_rulers(path: str | os.PathLike, case: SpineCase) -> list:
    """The rulers saved with landmarks (a JSON document, or the ``_rulers.csv`` beside a CSV
    file), placed on ``case``'s display grid by their RAS positions; [] when none were."""
    from ..measurements.rulers import rulers_from_rows

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("{"):
        try:
            rows = list(json.loads(text).get("rulers", []))
        except (ValueError, AttributeError) as exc:
            raise ExportError(f"{path}: not a landmarks document ({exc})") from exc
    else:
        side = path.with_name(split_name(path.name)[0] + "_rulers.csv")
        if not side.exists():
            return []
        rows = {}
        for r in csv.DictReader(io.StringIO(side.read_text(encoding="utf-8"))):
            entry = rows.setdefault(int(r["ruler"]), {"kind": r["kind"], "label": r["label"], "points_ras_mm": []})
            entry["points_ras_mm"].append([float(r["x_mm"]), float(r["y_mm"]), float(r["z_mm"])])
        rows = [rows[k] for k in sorted(rows)]
    try:
        return rulers_from_rows(rows, case.affine)
    except (KeyError, ValueError, TypeError) as exc:
        raise ExportError(f"{path}: the rulers saved there cannot be read ({exc})") from exc


def _read_rows(path: Path) -> list[tuple[int, str]]:
    return [(int(r["structure_id"]), r["name"]) for r in _load_rows(path)]


def _load_rows(path: Path) -> list[dict[str, Any]]:
    text = Path(path).read_text(encoding="utf-8")
    if text.lstrip().startswith("{"):
        return list(json.loads(text)["landmarks"])
    return list(csv.DictReader(io.StringIO(text)))


def read_landmarks(path: str | os.PathLike, case: SpineCase) -> Landmarks:
    """Read landmarks written by :func:`export_landmarks` back into ``case``'s display voxels.

    World coordinates are used (so a file written for another grid still lands on the
    anatomy).
    """
    rows = _load_rows(Path(path))
    xyz = np.array([[float(r["x_mm"]), float(r["y_mm"]), float(r["z_mm"])] for r in rows])
    xyz = xyz.reshape(len(rows), 3)
    ijk_disp = geometry.world_to_voxel(case.affine, xyz)
    return Landmarks(
        coords=ijk_disp,
        structure_ids=np.array([int(r["structure_id"]) for r in rows], dtype=np.int64),
        names=tuple(str(r["name"]) for r in rows),
    )


def export_image(case: SpineCase, path: str | os.PathLike, *, compresslevel: int = 6,
                 overwrite_original: bool = False) -> Path:
    """Write the case image on its source grid with the source header (native dtype).

    The loaded voxel values are written as they are, so intensity scaling in the source
    header is reset (slope 1, intercept 0); atomic and verified like :func:`export_labels`.
    """
    target = Path(path)
    if not str(target).lower().endswith((".nii", ".nii.gz")):
        raise ExportError(f"{target}: image export needs a .nii.gz or .nii file name")
    file_order = np.asarray(geometry.from_display(case.image, case.source.ornt))
    hdr, klass = nifti_header(case.source.header, case.source.affine, file_order.shape,
                              file_order.dtype)
    _protect_original(case, target, overwrite_original)
    img = klass(file_order, None, hdr)
    with atomic_path(target) as tmp:
        written = _write_nifti(tmp, img, compresslevel if target.name.lower().endswith(".gz") else None,
                               target.name)
        _verify(tmp, target, file_order, hdr, hdr.get_best_affine(), written, "decode")
    return target
