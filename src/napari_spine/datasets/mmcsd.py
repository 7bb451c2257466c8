"""MMCSD: cervical spondylosis CT (bone/tissue windows) and MRI (T1/T2 sag, T2 axial) + clinic.

Layout (datasets.md 1.2): ``image/{ct_bone,ct_tissue,t1_sag,t2_sag,t2_tra}/<ID>/*.nii.gz``,
``text/high_pain_text.xlsx`` and ``code/{train,test}_id4.txt``. Patient IDs are normalised
to integers on both sides (folders are unpadded, the spreadsheet stores ``"001"``). The
spreadsheet is read by header name, case-insensitively; columns that are not recognised
(a hospital ID, names ...) are never read into the case.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from ..case import SpineCase
from ..errors import SpineIOError
from ..io.nifti import load_case as load_nifti_case
from .base import CaseRef, DatasetAdapter, Detection, scan_files

SEQUENCES = ("ct_bone", "ct_tissue", "t1_sag", "t2_sag", "t2_tra")
_MODALITY = {"ct_bone": "CT", "ct_tissue": "CT", "t1_sag": "MR-T1", "t2_sag": "MR-T2", "t2_tra": "MR-T2"}
_APPROACH = {1: "ACDF", 2: "ACCF", 3: "ACDF/ACCF hybrid"}
_LEVELS = (("2c2-3", "C2-3"), ("2c3-4", "C3-4"), ("2c4-5", "C4-5"), ("2c5-6", "C5-6"),
           ("2c6-7", "C6-7"), ("2c7-1", "C7-T1"), ("2c7-t1", "C7-T1"))


def patient_id(text: str) -> int | None:
    """Integer patient ID from a folder name (last ``_`` token) or a spreadsheet cell."""
    token = str(text).strip().split("_")[-1]
    if token.endswith(".0"):
        token = token[:-2]
    return int(token) if token.isdigit() else None


def _norm_header(h: Any) -> str:
    s = str(h or "").replace("（", "(").replace("）", ")").strip().lower()
    return re.sub(r"\s+", " ", s)


def _num(v: Any) -> float | None:
    """A finite number from a cell, else None ("NaN", "inf", text and blanks are missing)."""
    if v is None or v == "":  # mutation-equivalent[or -> and]: float() refuses both below anyway
        return None
    try:
        x = float(v)
    except (TypeError, ValueError, OverflowError):
        return None
    return x if math.isfinite(x) else None


def _yes_no(v: Any) -> str | None:
    n = _num(v)
    return {1.0: "yes", 2.0: "no"}.get(n) if n is not None else None


def _noop(msg: str) -> None:
    return None


def read_clinical(path: Path, warn=None) -> dict[int, dict[str, Any]]:
    """Clinical rows by integer patient ID, from ``high_pain_text.xlsx``.

    Raises SpineIOError naming the file when no sheet has an ``ID`` column or the file is
    not a readable spreadsheet; a patient ID on several rows goes to ``warn`` (the first
    row is used).
    """
    try:
        import openpyxl

        wb = openpyxl.load_workbook(path, data_only=True,
                                    read_only=True)  # mutation-equivalent: memory, not values
    except Exception as exc:
        raise SpineIOError(f"{path}: cannot read the clinical spreadsheet ({exc})") from exc
    try:
        sheets = sorted(wb.worksheets, key=lambda ws: ws.title.lower() != "sheet1")
        for ws in sheets:
            rows = ws.iter_rows(values_only=True)
            header = next(rows, None)
            if not header:
                continue
            cols = {_norm_header(h): i for i, h in enumerate(header)}
            if "id" not in cols:
                continue
            return _parse_rows(cols, rows, lambda m: (warn or _noop)(f"{path}: {m}"))
    except SpineIOError:
        raise
    except Exception as exc:  # noqa: BLE001 - openpyxl/lxml fail in many ways on bad files
        raise SpineIOError(f"{path}: cannot read the clinical spreadsheet "
                           f"({type(exc).__name__}: {exc})") from None
    finally:
        wb.close()
    raise SpineIOError(f"{path}: no sheet has an 'ID' column (looked in {', '.join(wb.sheetnames)})")


def _find(cols: dict[str, int], *needles: str, exact: str | None = None) -> int | None:
    if exact is not None:
        return cols.get(exact)
    for name, i in cols.items():
        if all(n in name for n in needles):
            return i
    return None


def _first(*found: int | None) -> int | None:
    """The first column index found (index 0 is a column too)."""
    return next((i for i in found if i is not None), None)


def _parse_rows(cols: dict[str, int], rows, warn=_noop) -> dict[int, dict[str, Any]]:
    idx = {
        "age": _find(cols, exact="age"),
        "sex": _find(cols, exact="gender") if "gender" in cols else _find(cols, exact="sex"),
        "myelopathy": _find(cols, "myelopathy"),
        "radiculopathy": _find(cols, "radiculopathy"),
        "vas_pre": _find(cols, "vas", "preoperative"),
        "vas_post_1y": _first(_find(cols, "vas", "1 year"), _find(cols, "vas", "postoperative")),
        "approach": _find(cols, "surgical approach"),
    }
    levels = [(cols[h], name) for h, name in _LEVELS if h in cols]
    out: dict[int, dict[str, Any]] = {}
    for row in rows:
        pid = patient_id(row[cols["id"]]) if row and row[cols["id"]] is not None else None
        if pid is None:
            continue
        if pid in out:
            warn(f"patient {pid} is on more than one row; the first row is used")
            continue

        def get(key):
            i = idx[key]
            return row[i] if i is not None and i < len(row) else None

        rec: dict[str, Any] = {}
        if (a := _num(get("age"))) is not None and 0 <= a < 150:
            rec["age"] = int(a)
        sex = _num(get("sex"))
        if sex is not None:
            rec["sex"] = {1.0: "male", 2.0: "female"}.get(sex, str(sex))
        for key in ("myelopathy", "radiculopathy"):
            if (yn := _yes_no(get(key))) is not None:
                rec[key] = yn
        ap = _num(get("approach"))
        if ap is not None and ap.is_integer():
            rec["surgical_approach"] = _APPROACH.get(int(ap), f"code {int(ap)}")
        lesions = [name for i, name in levels if _num(row[i] if i < len(row) else None) == 1.0]
        if levels:
            rec["lesion_levels"] = ", ".join(lesions) if lesions else "none"
        pre, post = _num(get("vas_pre")), _num(get("vas_post_1y"))
        if pre is not None:
            rec["vas_pre"] = pre
        if post is not None:
            rec["vas_post_1y"] = post
            rec["outcome"] = int(post > 0)  # 1 = residual neck pain at one year
        out[pid] = rec
    return out


def read_ids(path: Path) -> set[int]:
    """Patient ids of an MMCSD split file, one per line (lines without an id are skipped)."""
    ids = set()
    for line in path.read_text(errors="replace").splitlines():
        pid = patient_id(line)
        if pid is not None:
            ids.add(pid)
    return ids


def _is_root(p: Path) -> bool:
    img = p / "image"
    return img.is_dir() and any((img / s).is_dir() for s in SEQUENCES)


class MMCSDAdapter(DatasetAdapter):
    kind = "mmcsd"
    title = "MMCSD (cervical spondylosis CT + MRI, clinical outcome)"
    columns = ("age", "sex", "outcome")
    sequence_choices = ("all", *SEQUENCES)
    assumptions = (
        "No segmentation: the case label is the 1-year outcome (1 = post-operative neck VAS > 0).",
        "Each sequence folder holds one volume per patient; the patient ID is the last '_' "
        "token of the folder name.",
        "Orientation, spacing and whether CT values are HU come from each file (not documented).",
    )

    def detect(self, path: Path) -> Detection | None:
        """See :meth:`DatasetAdapter.detect`."""
        path = Path(path)
        for p in [path, *list(path.parents)[:4]]:
            if p.is_dir() and _is_root(p):
                return Detection(self.kind, p, 0.95, "image/<sequence>/<ID>/ folders")
            if p.is_dir() and (p.name in SEQUENCES and p.parent.name == "image"):
                return Detection(self.kind, p.parent.parent, 0.95, "image/<sequence>/ folder")
        if path.is_dir() and (list(path.glob("high_pain_text*.xlsx")) or list(path.glob("text/high_pain_text*.xlsx"))):
            return Detection(self.kind, path, 0.7, "high_pain_text.xlsx")
        return None

    def _clinical(self, root: Path, warn=None) -> tuple[dict[int, dict[str, Any]], list[str]]:
        warnings = []
        for f in list(root.glob("text/*.xlsx")) + list(root.glob("*.xlsx")):
            if not f.is_file():
                continue
            try:
                return read_clinical(f, warn), warnings
            except SpineIOError as exc:
                warnings.append(str(exc))
        return {}, warnings

    def dataset_warnings(self, root: Path) -> list[str]:
        """See :meth:`DatasetAdapter.dataset_warnings`."""
        clinical, warnings = self._clinical(Path(root))
        if not clinical and not warnings:
            warnings.append(f"{root}: no clinical spreadsheet (text/high_pain_text.xlsx) found")
        return warnings

    def _splits(self, root: Path, warn=_noop) -> dict[int, str]:
        out: dict[int, str] = {}
        where: dict[int, Path] = {}
        for folder in (root / "code", root):
            for name, split in (("train_id4.txt", "train"), ("test_id4.txt", "test")):
                f = folder / name
                if not f.is_file():
                    continue
                for pid in read_ids(f):
                    if pid in out and out[pid] != split:
                        warn(f"patient {pid} is listed in both {where[pid]} and {f}; "
                             f"kept in {out[pid]}")
                    out.setdefault(pid, split)
                    where.setdefault(pid, f)
        return out

    def list_cases(self, root: Path, within: Path | None = None, *, warn=None) -> list[CaseRef]:
        """See :meth:`DatasetAdapter.list_cases`."""
        root = Path(root)
        clinical, _ = self._clinical(root, warn)
        splits = self._splits(root, warn or _noop)
        volumes: dict[int, dict[str, str]] = {}
        for seq in SEQUENCES:
            seq_dir = root / "image" / seq
            if within is not None and Path(within) not in (root, root / "image") and seq_dir != Path(within):
                continue
            for f in scan_files(seq_dir, (".nii.gz", ".nii"), max_depth=2):
                pid = patient_id(f.parent.name)
                if pid is None:
                    continue
                volumes.setdefault(pid, {}).setdefault(seq, str(f))
        cases = []
        for pid in sorted(volumes):
            meta = dict(clinical.get(pid, {}))
            if pid not in clinical and clinical:
                meta["clinical"] = "no spreadsheet row"
            cases.append(CaseRef(
                kind=self.kind, case_id=str(pid), split=splits.get(pid, "unused" if splits else "unknown"),
                images=volumes[pid], labels=None, metadata=meta,
            ))
        return cases

    def load_case(self, ref: CaseRef, sequence: str | None = None) -> SpineCase:
        """See :meth:`DatasetAdapter.load_case`."""
        seq = sequence or next((s for s in ("t2_sag", "t1_sag", "ct_bone", "ct_tissue", "t2_tra")
                                if s in ref.images), None)
        if seq is None or seq not in ref.images:
            raise SpineIOError(f"MMCSD patient {ref.case_id}: no {sequence or 'image'} sequence "
                               f"(has {', '.join(ref.images) or 'none'})")
        return load_nifti_case(
            ref.images[seq], None, modality=_MODALITY[seq], case_id=f"{ref.case_id} {seq}",
            dataset=self.kind, metadata={"split": ref.split, "sequence": seq, "patient": ref.case_id,
                                         **ref.metadata},
        )
