"""Move a review set between databases: export to JSON or a CSV folder, import into another
(SQLite or PostgreSQL), so a team can start on one file and move to a server.

Everything of a case travels: its review state (status, reviewer, claim, comment, triage,
version, source), per-level flags, metric snapshots and history, in their order. An export
is read in one snapshot and written atomically (a JSON file, or a CSV folder that appears
whole); an import is one transaction. Cases already in the target are skipped unless
``replace`` is asked for, which replaces them with everything they carry.

CSV: one file per table (``cases.csv``, ``levels.csv``, ``metrics.csv``, ``history.csv``)
and ``format.json``; ``\\N`` stands for a missing value (as in PostgreSQL's COPY), so an
empty comment and no reviewer stay different; numbers are written exactly (``repr``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..io.files import atomic_path, write_json
from ._review_schema import SCHEMA_VERSION
from ._review_store import ReviewDBError
from .review import ReviewDB

__all__ = ["FORMAT", "TABLES", "export_review", "import_review", "read_review_set"]

FORMAT = "napari-spine review set"
NULL = "\\N"
# table -> columns and their types ("?" = may be missing)
TABLES: dict[str, dict[str, str]] = {
    "cases": {"case_key": "text", "dataset": "text", "case_id": "text", "status": "text",
              "reviewer": "text?", "claimed_by": "text?", "claimed_at": "real?", "updated_at": "real?",
              "comment": "text", "triage": "real", "version": "int", "source": "text"},
    "levels": {"case_key": "text", "structure_id": "int", "flag": "int", "comment": "text",
               "reviewer": "text?", "updated_at": "real?"},
    "metrics": {"case_key": "text", "created_at": "real", "reviewer": "text?", "payload": "text"},
    "history": {"case_key": "text", "at": "real", "reviewer": "text?", "action": "text", "detail": "text"},
}


def _dump(db: ReviewDB) -> dict[str, Any]:
    store = db._store

    def tx(t):
        if store.snapshot:
            t.execute(store.snapshot)
        out: dict[str, Any] = {"format": FORMAT, "schema_version": SCHEMA_VERSION}
        for table, cols in TABLES.items():
            order = "case_key" if table == "cases" else (
                "case_key, structure_id" if table == "levels" else f"case_key, {store.seq}")
            rows = t.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY {order}").fetchall()
            out[table] = [{c: r[c] for c in cols} for r in rows]
        return out
    return db._run(tx)


def export_review(db: ReviewDB, out: str | os.PathLike) -> Path:
    """Write every case of ``db`` to ``out``: a ``.json`` file, or else a new CSV folder."""
    out = Path(out)
    doc = _dump(db)
    if out.suffix.lower() == ".json":
        write_json(out, doc)
        return out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ReviewDBError(f"{out}: already exists and is not an empty folder; choose a new one")
    tmp = out.with_name(f".{out.name}.part-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        tmp.mkdir(parents=True)
        write_json(tmp / "format.json", {"format": FORMAT, "schema_version": SCHEMA_VERSION})
        for table, cols in TABLES.items():
            with atomic_path(tmp / f"{table}.csv") as part:
                buf = io.StringIO(newline="")
                w = csv.writer(buf, lineterminator="\n")
                w.writerow(cols)
                for row in doc[table]:
                    w.writerow([NULL if row[c] is None else repr(row[c]) if isinstance(row[c], float)
                                else row[c] for c in cols])
                part.write_text(buf.getvalue(), encoding="utf-8", newline="")
        if out.is_dir():
            out.rmdir()
        os.replace(tmp, out)
    except OSError as exc:
        raise ReviewDBError(f"{out}: the review set was not written ({exc})") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _cell(text: str, kind: str, where: str) -> Any:
    if text == NULL:
        if not kind.endswith("?"):
            raise ReviewDBError(f"{where}: a missing value where one is required")
        return None
    base = kind.rstrip("?")
    try:
        return int(text) if base == "int" else float(text) if base == "real" else text
    except ValueError:
        raise ReviewDBError(f"{where}: {text!r} is not a number") from None


def _check_format(doc: Mapping[str, Any], where: Path) -> None:
    if doc.get("format") != FORMAT:
        raise ReviewDBError(f"{where}: not a napari-spine review set (no format {FORMAT!r})")
    version = doc.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ReviewDBError(f"{where}: review set schema version {version!r}; this napari-spine "
                            f"reads up to {SCHEMA_VERSION}")


def read_review_set(path: str | os.PathLike) -> dict[str, Any]:
    """A review set as written by :func:`export_review` (JSON file or CSV folder), checked:
    known format and version, every column present, values of the right types."""
    path = Path(path)
    try:
        if path.is_dir():
            doc: dict[str, Any] = json.loads((path / "format.json").read_text())
            _check_format(doc, path)
            for table, cols in TABLES.items():
                f = path / f"{table}.csv"
                with open(f, newline="", encoding="utf-8") as fh:
                    reader = csv.DictReader(fh)
                    missing = set(cols) - set(reader.fieldnames or ())
                    if missing:
                        raise ReviewDBError(f"{f}: missing column(s) {', '.join(sorted(missing))}")
                    doc[table] = [{c: _cell(r[c], k, f"{f} line {reader.line_num} {c}") for c, k in cols.items()}
                                  for r in reader]
            return doc
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReviewDBError(f"{path}: cannot read the review set ({exc})") from None
    if not isinstance(doc, dict):
        raise ReviewDBError(f"{path}: not a napari-spine review set")
    _check_format(doc, path)
    for table, cols in TABLES.items():
        rows = doc.get(table)
        if not isinstance(rows, list) or any(not isinstance(r, dict) or set(cols) - set(r) for r in rows):
            raise ReviewDBError(f"{path}: table {table!r} is missing or lacks columns")
    return doc


def import_review(db: ReviewDB, path: str | os.PathLike, replace: bool = False) -> dict[str, int]:
    """Add the cases of a review set to ``db`` in one transaction; returns the counts
    (``cases``, ``skipped``, ``levels``, ``metrics``, ``history``). A case already in
    ``db`` is skipped, or with ``replace`` replaced whole."""
    doc = read_review_set(path)
    keys = [r["case_key"] for r in doc["cases"]]

    def tx(t):
        have = {r["case_key"] for r in t.execute("SELECT case_key FROM cases").fetchall()}
        take = {k for k in keys if replace or k not in have}
        for k in take & have:
            for table in ("levels", "metrics", "history", "cases"):
                t.execute(f"DELETE FROM {table} WHERE case_key=?", (k,))
        counts = {"cases": len(take), "skipped": len(set(keys) - take)}
        for table, cols in TABLES.items():
            sql = f"INSERT INTO {table}({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            rows = [r for r in doc[table] if r["case_key"] in take]
            for r in rows:
                t.execute(sql, tuple(r[c] for c in cols))
            if table != "cases":
                counts[table] = len(rows)
        return counts
    return db._run(tx, write=True)
