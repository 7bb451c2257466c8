"""The run's own files: the output-folder check, the summary table and the QA report."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from ..io.files import unique_name, write_bytes_atomic, write_json
from .options import BatchError

__all__ = ["SUMMARY_FIELDS", "check_output", "write_report", "write_summary"]

SUMMARY_FIELDS = ("case_id", "folder", "split", "status", "reason", "outputs", "structures", "errors",
                  "warnings", "mean_dice", "score")


def check_output(out: Path) -> None:
    """Create the output folder and prove it is writable, before any case runs."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise BatchError(f"{out}: output folder is not writable ({exc.strerror or exc})") from None


def write_summary(rows: list[dict], out: Path, meta: dict) -> Path:
    """Write ``summary.csv`` and ``summary.json`` (and ``summary.parquet`` with pandas) of a run."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=SUMMARY_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in SUMMARY_FIELDS})
    target = out / "summary.csv"
    write_bytes_atomic(target, buf.getvalue().encode("utf-8"))
    write_json(out / "summary.json", {"options": meta,
                                       "cases": [{k: r.get(k) for k in SUMMARY_FIELDS} for r in rows]})
    try:  # the same table for pandas/Arrow users, when they are installed
        import pandas as pd

        frame = pd.DataFrame([{k: r.get(k) for k in SUMMARY_FIELDS} for r in rows],
                             columns=list(SUMMARY_FIELDS))
        for col in ("structures", "errors", "warnings"):
            frame[col] = frame[col].astype("Int64")
        for col in ("mean_dice", "score"):
            frame[col] = frame[col].astype("Float64")
        pq = io.BytesIO()
        frame.to_parquet(pq, index=False)
        write_bytes_atomic(out / "summary.parquet", pq.getvalue())  # flushed before the rename
    except ImportError:
        pass
    return target


def checked_cases(rows: list[dict], out: Path):
    """``(row, qa.json document, level rows, findings, written at)`` of every case of a
    ``batch qa`` run whose check succeeded; findings are the candidate's notes and its level
    shift, as the report and the review queue show them."""
    from ..qa.metrics import LevelRow

    for r in rows:
        qa = out / "cases" / unique_name(r["case_id"]) / "qa.json"
        if r["status"] != "ok" or not qa.is_file():
            continue
        doc = json.loads(qa.read_text())
        levels = [LevelRow.from_dict(lv) for lv in doc.get("levels", [])]
        shift = (doc.get("level_shift") or {}).get("message")
        yield r, doc, levels, (*doc.get("candidate_notes", []), *([shift] if shift else [])), qa.stat().st_mtime


def write_report(rows: list[dict], out: Path, title: str) -> Path | None:
    """The QA report (``report.html``) of the cases whose ``qa.json`` was written; None when
    there are none."""
    from ..qa.report import CaseResult, write_html

    results = []
    for r, doc, levels, findings, when in checked_cases(rows, out):
        status = "needs correction" if (r.get("errors") or 0) else "to do"
        results.append(CaseResult(r["case_id"], levels, status=status,
                                  comment=f"{r.get('errors') or 0} sequence errors",
                                  reference=doc.get("reference", ""), candidate=doc.get("candidate", ""),
                                  when=when, findings=findings))
    if not results:
        return None
    return write_html(results, out / "report.html", title=title)


def write_measurements(out: Path, case_ids: list[str]) -> Path | None:
    """``measurements.csv`` across cases: every case's table, in the order of the cases."""

    header, body = None, []
    for cid in case_ids:
        f = out / "cases" / unique_name(cid) / "measurements.csv"
        if not f.is_file():
            continue
        lines = f.read_text(encoding="utf-8").splitlines(keepends=True)
        if lines:
            header = header or lines[0]
            body.extend(lines[1:])
    if header is None:
        return None
    target = out / "measurements.csv"
    write_bytes_atomic(target, (header + "".join(body)).encode("utf-8"))
    return target
