"""Label names as the files give them: header label tables, sidecars, and a name matcher.

A label file often says what its ids mean. napari-spine reads, in this order:

1. **the NIfTI header extension**: the XML label table TotalSegmentator (and Caret /
   Connectome Workbench) store in an extension, ``<Label Key="N" Red=".." Green=".."
   Blue=".." Alpha=".."><![CDATA[name]]></Label>``. It is read with a tolerant scanner (no
   XML parser, so no entities are ever expanded): attribute order, quotes and a missing
   ``CDATA`` do not matter; a table that cannot be read is a warning, not an error;
2. **a sidecar beside the file**: ``<stem>.json`` (``{"labels": {id: name}}``), an nnU-Net
   ``dataset.json`` in the folder or its parent (``{"labels": {name: id}}``), a BIDS
   ``<stem>.tsv`` / ``*_dseg.tsv`` (``index`` and ``name`` columns), an ITK-SNAP label
   description (``<stem>.txt``, ``labels.txt``: ``IDX R G B A VIS MSH "LABEL"``) or a 3D
   Slicer colour table (``<stem>.ctbl``, ``<stem>.txt``: ``id name R G B A``).

:func:`match_anatomy` turns the names real tools use (``vertebrae_L1``, ``L1 vertebra``,
``sacrum``, ``disc_L4_L5``, ``L4/L5``, ``intervertebral_discs``, ``spinal_cord`` ...) into
anatomy-table ids; the table is data (``label_maps/names/tool_names.json``). Names that
are not spine structures (``liver``) match nothing and stay what they are.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from . import ontology

__all__ = ["LabelNames", "match_anatomy", "read_header_names", "read_label_names",
           "read_sidecar_names"]

Color = tuple[float, float, float, float]


@dataclass(frozen=True)
class LabelNames:
    """Names (and colours, when given) of a label file's ids, and where they came from."""

    names: Mapping[int, str]
    source: str  # "file header", "sidecar" ...
    where: str  # the file that said it
    colors: Mapping[int, Color] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def anatomy_ids(self) -> dict[int, int | None]:
        """Native id -> anatomy id (None for structures outside the spine table)."""
        return {k: match_anatomy(v) for k, v in self.names.items()}


# -- the name matcher ----------------------------------------------------------------------------
@cache
def _name_table() -> tuple[dict[str, str], tuple[tuple[re.Pattern, str], ...]]:
    raw = json.loads(resources.files("napari_spine.anatomy").joinpath(
        "label_maps", "names", "tool_names.json").read_text(encoding="utf-8"))
    exact = {_key(k): v for k, v in raw["exact"].items()}
    patterns = tuple((re.compile(p), t) for p, t in raw["patterns"])
    return exact, patterns


def _key(name: str) -> str:
    k = re.sub(r"[\s\-./]+", "_", str(name).strip().lower())
    return re.sub(r"_+", "_", k).strip("_")


def match_anatomy(name: str) -> int | None:
    """The anatomy-table id of a class name real tools use, or None (0 for background).

    >>> [match_anatomy(n) for n in ("vertebrae_L1", "L1 vertebra", "sacrum", "disc_L4_L5",
    ...                             "L4/L5", "intervertebral_discs", "spinal_cord", "liver")]
    [20, 20, 26, 123, 123, 100, 60, None]
    """
    exact, patterns = _name_table()
    key = _key(name)
    target = exact.get(key)
    if target is None:
        for pattern, template in patterns:
            m = pattern.match(key)
            if m:
                target = template.format(None, *(g.upper() for g in m.groups()))
                break
    if target is None:
        target = name  # the anatomy table's own names ("L1", "Spinal canal" ...)
    if str(target).lower() == "background":
        return 0
    try:
        return ontology.by_name(str(target)).id
    except KeyError:
        return None


# -- the header extension ------------------------------------------------------------------------
_OPEN = re.compile(r"<\s*label\b")  # searched in the lower-cased text
_CLOSE = re.compile(r"<\s*/\s*label\s*>")
_ATTR = re.compile(r"([A-Za-z_][\w.-]*)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
#: a header extension larger than this is no label table (TotalSegmentator's 117 labels: ~20 kB)
MAX_TABLE_CHARS = 2 << 20


def _labels_in(text: str):
    """``(attributes, body, whole)`` of each ``<Label ...>body</Label>`` element, in one pass
    over the text whatever it holds: every search starts where the previous one ended, and a
    missing ``>`` or closing tag ends the scan (no later element could close either). A
    backtracking pattern took quadratic time on crafted headers (thousands of unclosed tags)."""
    low = text.translate(_ASCII_LOWER)  # same length as the text, whatever else it holds
    pos = 0
    while (m := _OPEN.search(low, pos)) is not None:
        gt = low.find(">", m.end())
        if gt < 0:
            return
        close = _CLOSE.search(low, gt + 1)
        if close is None:
            return
        yield text[m.end():gt], text[gt + 1:close.start()], text[m.start():close.end()]
        pos = close.end()


def _label_text(body: str) -> str:
    """A label element's name: its CDATA section, else its text without tags (linear)."""
    start = body.find("<![CDATA[")
    if start >= 0:
        end = body.find("]]>", start + 9)
        if end >= 0:
            return body[start + 9:end]
    out, pos = [], 0
    while (lt := body.find("<", pos)) >= 0:
        gt = body.find(">", lt + 1)
        if gt < 0:
            break  # an unclosed "<": the rest is text, as the tag pattern never matched it
        out.append(body[pos:lt])
        pos = gt + 1
    out.append(body[pos:])
    return "".join(out)


def _parse_label_xml(text: str, where: str) -> tuple[dict[int, str], dict[int, Color], list[str]]:
    names: dict[int, str] = {}
    colors: dict[int, Color] = {}
    warnings: list[str] = []
    if len(text) > MAX_TABLE_CHARS:
        return names, colors, [f"{where}: a header extension of {len(text) / 2**20:.1f} MiB is too large for a "
                               f"label table (at most {MAX_TABLE_CHARS >> 20} MiB); it is not read"]
    for head, body, whole in _labels_in(text):
        attrs = {k.lower(): a or b for k, a, b in _ATTR.findall(head)}
        name = _label_text(body).strip()
        try:
            key = int(attrs["key"])
        except (KeyError, ValueError):
            warnings.append(f"{where}: a label without a readable Key ({whole[:60]!r}) was skipped")
            continue
        if key in names and names[key] != name:
            warnings.append(f"{where}: label {key} is named twice ({names[key]!r}, {name!r}); "
                            "the first name is used")
            continue
        names[key] = name
        try:
            rgba = tuple(float(attrs.get(c, d)) for c, d in
                         (("red", "nan"), ("green", "nan"), ("blue", "nan"), ("alpha", "1")))
        except ValueError:
            continue
        if all(0.0 <= v <= 1.0 for v in rgba):
            colors[key] = rgba  # type: ignore[assignment]
    return names, colors, warnings


def read_header_names(header: Any, where: str) -> LabelNames | None:
    """The label table in a NIfTI header's extensions, or None when there is none."""
    for ext in getattr(header, "extensions", ()) or ():
        try:
            raw = ext.get_content()
        except Exception:  # noqa: BLE001 - a broken extension is no label table
            continue
        if isinstance(raw, bytes | bytearray):
            text = bytes(raw).decode("utf-8", errors="replace")
        else:
            text = str(raw)
        if "label" not in text.lower():
            continue
        names, colors, warnings = _parse_label_xml(text, where)
        if names:
            return LabelNames(names, "file header", where, colors, tuple(warnings))
        if len(text) > MAX_TABLE_CHARS:
            return LabelNames({}, "file header", where, {}, tuple(warnings))
        if re.search(r"<\s*LabelTable", text, re.IGNORECASE):
            return LabelNames({}, "file header", where, {},
                              (f"{where}: the header's label table could not be read; "
                               "names come from elsewhere",))
    return None


# -- sidecars ------------------------------------------------------------------------------------
def _stem(path: Path) -> str:
    name = path.name
    for ext in (".nii.gz", ".nii", ".npy", ".nrrd", ".mha"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return path.stem


def _collect(entries, where: str) -> tuple[dict[int, str], dict[int, Color], list[str]]:
    """Names (and colours) of ``(line, id, name, colour)`` entries. An id given twice keeps
    its first name, a name given to two ids stays with the first id (the other is left
    unnamed, so two structures never merge into one); both are said, naming both lines."""
    names: dict[int, str] = {}
    colors: dict[int, Color] = {}
    warnings: list[str] = []
    line_of: dict[int, int] = {}
    id_of: dict[str, tuple[int, int]] = {}
    for line, ident, name, color in entries:
        try:
            i = int(ident)
        except (TypeError, ValueError):
            warnings.append(f"{where}: {ident!r} is not a label id; skipped")
            continue
        name = str(name)
        if i in names:
            if names[i] != name:
                warnings.append(f"{where}: label {i} is named twice, {names[i]!r} ({line_of[i]}) and {name!r} "
                                f"({line}); the first name is used")
            continue
        key = name.strip().lower()
        if key and key in id_of:
            first, first_line = id_of[key]
            warnings.append(f"{where}: {name!r} names two labels, {first} ({first_line}) and {i} ({line}); "
                            f"label {i} is left unnamed rather than merged with {first}")
            continue
        names[i], line_of[i] = name, line
        id_of[key] = (i, line)
        if color is not None:
            colors[i] = color
    return names, colors, warnings


def _ints(d: Mapping, where: str, value_is_id: bool = False) -> tuple[dict[int, str], list[str]]:
    items = getattr(d, "pairs", None) or list(d.items())  # every entry, a repeated key included
    entries = [(f"entry {n + 1}", *((v, k) if value_is_id else (k, v)), None) for n, (k, v) in enumerate(items)]
    names, _, warnings = _collect(entries, where)
    return names, warnings


class _Object(dict):
    """A JSON object that also keeps every ``(key, value)`` in order: ``json`` keeps only
    the last of repeated keys, which would rename a label silently."""

    pairs: list


def _pairs(pairs: list) -> dict:
    out = _Object(pairs)
    out.pairs = list(pairs)
    return out


def _json_sidecar(path: Path) -> LabelNames | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_pairs)
    except (OSError, ValueError):
        return LabelNames({}, "sidecar", str(path), {}, (f"{path}: not readable JSON; ignored",))
    if not isinstance(doc, dict) or not isinstance(doc.get("labels"), dict):
        return None
    labels = doc["labels"]
    # nnU-Net's dataset.json maps name -> id; napari-spine's sidecar id -> name
    value_is_id = all(isinstance(v, int) for v in labels.values())
    names, warnings = _ints(labels, str(path), value_is_id=value_is_id)
    return LabelNames(names, "sidecar", str(path), {}, tuple(warnings)) if names else None


def _tsv_sidecar(path: Path) -> LabelNames | None:
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    except (OSError, csv.Error):
        return None
    if not rows or not {"index", "name"} <= set(rows[0]):
        return None
    names, _, warnings = _collect([(f"line {n + 2}", r["index"], r["name"], None) for n, r in enumerate(rows)],
                                  str(path))
    return LabelNames(names, "sidecar", str(path), {}, tuple(warnings)) if names else None


_ITKSNAP = re.compile(r'^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+(\d+)\s+(\d+)\s+"(.*)"\s*$')
_SLICER = re.compile(r"^\s*(\d+)\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)(?:\s+(\d+))?\s*$")


def _text_table(path: Path) -> LabelNames | None:
    """An ITK-SNAP label description or a 3D Slicer colour table."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    entries = []
    for n, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _ITKSNAP.match(line)
        if m:
            entries.append((f"line {n}", int(m.group(1)), m.group(8),
                            (int(m.group(2)) / 255, int(m.group(3)) / 255, int(m.group(4)) / 255,
                             min(1.0, float(m.group(5))))))
            continue
        m = _SLICER.match(line)
        if m:
            alpha = int(m.group(6)) / 255 if m.group(6) else 1.0
            entries.append((f"line {n}", int(m.group(1)), m.group(2),
                            (int(m.group(3)) / 255, int(m.group(4)) / 255, int(m.group(5)) / 255, alpha)))
            continue
        return None  # a line of neither form: not a label table
    names, colors, warnings = _collect(entries, str(path))
    return LabelNames(names, "sidecar", str(path), colors, tuple(warnings)) if names else None


def read_sidecar_names(path: str | Path) -> LabelNames | None:
    """The first sidecar beside a label file that names its ids (see the module docstring)."""
    path = Path(path)
    folder, stem = path.parent, _stem(path)
    candidates: list[tuple[Path, Any]] = [(folder / f"{stem}.json", _json_sidecar)]
    candidates += [(folder / f"{stem}.tsv", _tsv_sidecar)]
    dseg = sorted(folder.glob("*_dseg.tsv"))
    if len(dseg) == 1:
        candidates.append((dseg[0], _tsv_sidecar))
    for name in (f"{stem}.ctbl", f"{stem}.txt", f"{stem}_labels.txt", "labels.txt",
                 "label_description.txt", "label_descriptions.txt"):
        candidates.append((folder / name, _text_table))
    candidates += [(folder / "dataset.json", _json_sidecar),
                   (folder.parent / "dataset.json", _json_sidecar)]
    for cand, reader in candidates:
        if cand.is_file() and cand != path:
            found = reader(cand)
            if found is not None and found.names:
                return found
    return None


def read_label_names(path: str | Path, header: Any = None) -> LabelNames | None:
    """The names a label file carries: its header first, then a sidecar.

    When both name an id differently the header wins, and a warning names both.
    """
    where = str(path)
    from_header = read_header_names(header, where) if header is not None else None
    sidecar = read_sidecar_names(path)
    if from_header is None or not from_header.names:
        if sidecar is not None and from_header is not None:
            return LabelNames(sidecar.names, sidecar.source, sidecar.where, sidecar.colors,
                              from_header.warnings + sidecar.warnings)
        return sidecar or from_header
    if sidecar is None:
        return from_header
    clash = [k for k in from_header.names if k in sidecar.names
             and match_anatomy(sidecar.names[k]) != match_anatomy(from_header.names[k])]
    if not clash:
        return from_header
    shown = ", ".join(f"{k}: {from_header.names[k]!r} vs {sidecar.names[k]!r}" for k in clash[:3])
    warning = (f"{where}: the header and {sidecar.where} name {len(clash)} id(s) differently "
               f"({shown}); the header's names are used")
    return LabelNames(from_header.names, from_header.source, from_header.where, from_header.colors,
                      (*from_header.warnings, warning))


# -- plausibility of a guessed scheme --------------------------------------------------------------
#: no vertebra comes near this volume (an adult L5 is ~30-60 mL); an organ does
_MAX_VERTEBRA_ML = 300.0
#: nor this height head to foot (an L5 with its processes is ~35-45 mm)
_MAX_VERTEBRA_MM = 70.0


def subsample(native):
    """A contiguous integer subsample of about half a million voxels, and its step (what
    :func:`cord_from_shape` and :func:`spine_doubts` look at; compute it once for both)."""
    import numpy as np

    native = np.asarray(native)
    step = max(1, int(round((native.size / 5e5) ** (1 / 3))))
    sub = np.ascontiguousarray(native[::step, ::step, ::step])
    if sub.dtype.kind not in "u" or sub.dtype.itemsize > 2:
        sub = sub.astype(np.int64)
    return sub, step


def _heights(sub, ids, affine, step) -> list[float]:
    """Head-to-foot extent in mm of each id's bounding box (on the subsampled array)."""
    import itertools

    import numpy as np
    from scipy import ndimage

    boxes = ndimage.find_objects(sub, max_label=max(ids))
    out = []
    for i in ids:
        box = boxes[i - 1]
        corners = np.array(list(itertools.product(*[(b.start * step, (b.stop - 1) * step) for b in box])))
        z = corners @ affine[2, :3] + affine[2, 3]
        out.append(float(z.max() - z.min()))
    return out


def cord_from_shape(native, affine, sample=None) -> str | None:
    """Why a one-valued mask looks like a spinal cord (a long, thin column head to foot),
    or None. A binary cord mask (Spinal Cord Toolbox ``*_seg``) names nothing itself."""
    import numpy as np

    sub, step = sample if sample is not None else subsample(native)
    if int(sub.max(initial=0)) != 1 or not np.any(sub == 0):
        return None
    a = np.asarray(affine, dtype=float)
    (height,) = _heights(sub.astype(np.uint8), [1], a, step)
    volume_ml = float(np.count_nonzero(sub)) * abs(np.linalg.det(a[:3, :3])) * step**3 / 1000.0
    area_cm2 = volume_ml / (height / 10.0) if height else float("inf")
    if height >= 40.0 and area_cm2 <= 2.5:
        return f"{height:.0f} mm long head to foot, {area_cm2:.1f} cm\u00b2 across"
    return None


def spine_doubts(native, affine, to_canonical: Mapping[int, int], sample=None) -> list[str]:
    """Why a label array does not look like spine anatomy under a guessed numbering, or [].

    Checks, on a subsample of about half a million voxels: the ids read as vertebrae must lie
    in cranio-caudal order along the patient's superior axis (one clear swap is forgiven), and no
    "vertebra" may be larger than 300 mL. Vertebrae cut by the field of view may be small,
    so small ones are not held against a file.
    """
    import numpy as np

    sub, step = sample if sample is not None else subsample(native)
    levels = ontology.vertebra_order()
    flat = sub.ravel()
    counts_all = np.bincount(flat)
    ids = [i for i in np.flatnonzero(counts_all).tolist() if i and to_canonical.get(i) in levels]
    if not ids:
        return []
    counts = counts_all[ids]
    a = np.asarray(affine, dtype=float)
    voxel_ml = abs(np.linalg.det(a[:3, :3])) * step**3 / 1000.0
    # only the head-to-foot (RAS+ z) position of each centre matters: z is linear in the
    # voxel index, so one weighted count gives every id's mean z
    axes = [np.arange(n, dtype=np.float64) * step * a[2, d] for d, n in enumerate(sub.shape)]
    z = (axes[0][:, None, None] + axes[1][None, :, None] + axes[2][None, None, :] + a[2, 3]).ravel()
    centre_z = np.bincount(flat, weights=z, minlength=len(counts_all))[ids] / counts
    doubts = []
    big = [f"{i} ({n * voxel_ml:.0f} mL)" for i, n in zip(ids, counts, strict=True) if n * voxel_ml > _MAX_VERTEBRA_ML]
    if big:
        doubts.append(f"id(s) {', '.join(big)} are far larger than any vertebra")
    tall = [f"{i} ({h:.0f} mm)" for i, h in zip(ids, _heights(sub, ids, a, step), strict=True)
            if h > _MAX_VERTEBRA_MM]
    if tall:
        doubts.append(f"id(s) {', '.join(tall)} are taller head-to-foot than any vertebra")
    order = sorted(range(len(ids)), key=lambda k: levels.index(to_canonical[ids[k]]))
    superior = [centre_z[k] for k in order]  # RAS+: z is superior
    # a swap must be clear (the lower level 5 mm or more above the upper one): labels whose
    # centres coincide (scattered voxels, a single slice) say nothing about the order
    swaps = sum(1 for x, y in zip(superior, superior[1:], strict=False) if y >= x + 5.0)
    if len(ids) >= 3 and swaps > max(1, len(ids) // 4):
        doubts.append(f"{swaps} of {len(ids) - 1} neighbouring 'vertebrae' are not in head-to-foot order")
    return doubts
