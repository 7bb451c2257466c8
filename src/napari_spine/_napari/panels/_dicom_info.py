"""The DICOM lines of the Spine case panel's summary: what the series is, never who the
patient is unless asked."""

from __future__ import annotations

_DICOM_SHOWN = (("series_description", "Series"), ("study_date", "Study date"), ("manufacturer", "Scanner"),
                ("model", None), ("field_strength_t", "Field (T)"), ("kernel", "Kernel"),
                ("slice_thickness_mm", "Slice thickness (mm)"))


def dicom_summary(meta, identifiers: bool = False) -> str:
    """The DICOM lines of the case summary (HTML); identifiers only when asked."""
    if not meta or "dicom_identifiers" not in meta:
        return ""
    from html import escape

    parts, scanner = [], ""
    for key, title in _DICOM_SHOWN:
        value = meta.get(key)
        if value in (None, ""):
            continue
        if key == "manufacturer":
            scanner = str(value)
        elif key == "model":
            scanner = f"{scanner} {value}".strip()
        else:
            parts.append(f"{title}: {escape(str(value))}")
    if scanner:
        parts.insert(min(2, len(parts)), f"Scanner: {escape(scanner)}")
    if identifiers:
        parts += [f"{k.replace('_', ' ')}: {escape(v)}" for k, v in meta["dicom_identifiers"].items()]
    return "".join(f"<br>{p}" for p in parts)


def seg_possible(case) -> bool:
    """Whether a DICOM SEG can reference the case's source: read from a classic series or a
    multi-frame object (not a Siemens mosaic, not a NIfTI)."""
    meta = case.metadata if case is not None else {}
    return "dicom_identifiers" in meta and not meta.get("mosaic")
