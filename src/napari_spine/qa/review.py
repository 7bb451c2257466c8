"""Review state in SQLite: case status, reviewer, comments, per-level flags, metric snapshots.

Safe for several reviewers on one queue at once:

- a case is *claimed* before review in one ``BEGIN IMMEDIATE`` transaction, so two
  reviewers never get the same case;
- every update names the version it read (optimistic concurrency): a stale update is
  refused with :class:`ReviewConflict` instead of silently overwriting someone's work;
- WAL journal mode and a busy timeout let readers and one writer work side by side.

A file that is not a database, or stays locked, gives :class:`ReviewDBError` naming it;
the file is never recreated or truncated.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SpineIOError
from ..io.files import jsonable
from .metrics import LevelRow

__all__ = ["STATUSES", "CaseReview", "ReviewConflict", "ReviewDB", "ReviewDBError"]

STATUSES = ("to do", "in review", "approved", "needs correction")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    case_key TEXT PRIMARY KEY,
    dataset TEXT NOT NULL DEFAULT '',
    case_id TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'to do',
    reviewer TEXT,
    claimed_by TEXT,
    claimed_at REAL,
    updated_at REAL,
    comment TEXT NOT NULL DEFAULT '',
    triage REAL NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 0,
    source TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS levels (
    case_key TEXT NOT NULL REFERENCES cases(case_key),
    structure_id INTEGER NOT NULL,
    flag INTEGER NOT NULL DEFAULT 0,
    comment TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (case_key, structure_id)
);
CREATE TABLE IF NOT EXISTS metrics (
    case_key TEXT NOT NULL REFERENCES cases(case_key),
    created_at REAL NOT NULL,
    reviewer TEXT,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    case_key TEXT NOT NULL,
    at REAL NOT NULL,
    reviewer TEXT,
    action TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS cases_queue ON cases(status, triage DESC);
"""


class ReviewDBError(SpineIOError, RuntimeError):
    """The review database cannot be used (corrupt, locked, unwritable); names the file."""


class ReviewConflict(RuntimeError):
    """Someone else changed the case since it was read: reload and apply again."""


@dataclass(frozen=True)
class CaseReview:
    case_key: str
    dataset: str
    case_id: str
    status: str
    reviewer: str | None
    claimed_by: str | None
    comment: str
    triage: float
    version: int
    updated_at: float | None
    claimed_at: float | None = None

    def held_by_other(self, reviewer: str) -> bool:
        """Whether someone other than ``reviewer`` is reviewing the case now."""
        return self.status == "in review" and self.claimed_by not in (None, reviewer)

    def stale(self, stale_after_s: float = 3600.0) -> bool:
        """Whether the claim is older than ``stale_after_s`` (an abandoned review)."""
        return self.claimed_at is not None and time.time() - self.claimed_at > stale_after_s


class ReviewDB:
    """A review queue in one SQLite file (default: ``review.sqlite`` beside the dataset)."""

    def __init__(self, path: str | os.PathLike, *, timeout: float = 10.0):
        self.path = Path(path)
        self.timeout = timeout
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, "rb") as f:
                if f.read(16) != b"SQLite format 3\x00":
                    raise ReviewDBError(f"{self.path}: not an SQLite database; it was left untouched")
        try:
            with self._connect(begin=False) as con:
                con.executescript(_SCHEMA)  # runs in its own transaction
        except sqlite3.DatabaseError as exc:
            raise ReviewDBError(f"{self.path}: cannot open the review database ({exc})") from exc

    @contextmanager
    def _connect(self, immediate: bool = False, begin: bool = True) -> Iterator[sqlite3.Connection]:
        try:
            con = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise ReviewDBError(f"{self.path}: cannot open ({exc})") from exc
        try:
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute("PRAGMA foreign_keys=ON")
            if not begin:
                yield con
                return
            con.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise ReviewDBError(f"{self.path}: database is locked by another program ({exc})") from exc
            raise ReviewDBError(f"{self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise ReviewDBError(f"{self.path}: {exc}") from exc
        finally:
            con.close()

    # -- queue -------------------------------------------------------------------------
    def add_cases(self, cases: Iterable[tuple]) -> int:
        """Add ``(case_key, dataset, case_id, triage[, source])`` rows; existing cases keep
        their review state (triage and, when given, the source are refreshed). ``source`` is
        a dict telling where the case's files are, so the queue can open them."""
        n = 0
        with self._connect(immediate=True) as con:
            for key, dataset, case_id, triage, *rest in cases:
                source = json.dumps(rest[0]) if rest and rest[0] else None
                cur = con.execute(
                    "INSERT INTO cases(case_key, dataset, case_id, triage, source) VALUES (?, ?, ?, ?, "
                    "COALESCE(?, '{}')) ON CONFLICT(case_key) DO UPDATE SET triage=excluded.triage, "
                    "source=COALESCE(?, source)",
                    (key, dataset, case_id, float(triage), source, source))
                n += cur.rowcount
        return n

    def source(self, case_key: str) -> dict[str, Any]:
        """Where a queued case's files are (``dataset_path``, ``kind``, ``case_id``)."""
        with self._connect() as con:
            row = con.execute("SELECT source FROM cases WHERE case_key=?", (case_key,)).fetchone()
        return json.loads(row["source"]) if row and row["source"] else {}

    def get(self, case_key: str) -> CaseReview:
        """A case's review state; KeyError when it is not in the database."""
        with self._connect() as con:
            row = con.execute("SELECT * FROM cases WHERE case_key=?", (case_key,)).fetchone()
        if row is None:
            raise KeyError(f"{self.path}: no case {case_key!r}")
        return _review(row)

    def queue(self, status: str | None = None) -> list[CaseReview]:
        """Cases ordered by triage score (most suspicious first)."""
        with self._connect() as con:
            q = "SELECT * FROM cases" + (" WHERE status=?" if status else "") + " ORDER BY triage DESC, case_key"
            rows = con.execute(q, (status,) if status else ()).fetchall()
        return [_review(r) for r in rows]

    def claim_next(self, reviewer: str, stale_after_s: float = 3600.0) -> CaseReview | None:
        """Atomically claim the most suspicious unclaimed 'to do' case, or a case whose
        reviewer claimed it more than ``stale_after_s`` ago and never finished it (a
        crashed or abandoned review)."""
        with self._connect(immediate=True) as con:
            now = time.time()  # taken once the write lock is held
            row = con.execute(
                "SELECT case_key FROM cases WHERE "
                "(status='to do' AND (claimed_by IS NULL OR claimed_at < ?)) OR "
                "(status='in review' AND claimed_by IS NOT NULL AND claimed_by != ? AND claimed_at < ?) "
                "ORDER BY triage DESC, case_key LIMIT 1",
                (now - stale_after_s, reviewer, now - stale_after_s)).fetchone()
            if row is None:
                return None
            key = row["case_key"]
            con.execute("UPDATE cases SET claimed_by=?, claimed_at=?, status='in review', reviewer=?, "
                        "version=version+1, updated_at=? WHERE case_key=?", (reviewer, now, reviewer, now, key))
            con.execute("INSERT INTO history VALUES (?, ?, ?, 'claim', '')", (key, now, reviewer))
            out = con.execute("SELECT * FROM cases WHERE case_key=?", (key,)).fetchone()
        return _review(out)

    def set_triage(self, case_key: str, triage: float) -> None:
        """Set a queued case's triage score (computed when it was queued)."""
        with self._connect(immediate=True) as con:
            con.execute("UPDATE cases SET triage=? WHERE case_key=?", (float(triage), case_key))

    def take_over(self, case_key: str, reviewer: str, stale_after_s: float = 3600.0) -> CaseReview:
        """Take over a claim another reviewer abandoned (older than ``stale_after_s``); the
        history records from whom. ReviewConflict while the claim is recent."""
        with self._connect(immediate=True) as con:
            now = time.time()
            row = con.execute("SELECT * FROM cases WHERE case_key=?", (case_key,)).fetchone()
            if row is None:
                raise KeyError(f"{self.path}: no case {case_key!r}")
            old = row["claimed_by"]
            if old not in (None, reviewer) and (row["claimed_at"] or now) > now - stale_after_s:
                raise ReviewConflict(f"{case_key} is being reviewed by {old}")
            con.execute("UPDATE cases SET claimed_by=?, claimed_at=?, status='in review', reviewer=?, "
                        "version=version+1, updated_at=? WHERE case_key=?", (reviewer, now, reviewer, now, case_key))
            con.execute("INSERT INTO history VALUES (?, ?, ?, 'take over', ?)",
                        (case_key, now, reviewer, f"from {old}" if old else ""))
            out = con.execute("SELECT * FROM cases WHERE case_key=?", (case_key,)).fetchone()
        return _review(out)

    def claim(self, case_key: str, reviewer: str) -> CaseReview:
        """Claim a chosen case; refused (ReviewConflict) while someone else holds it."""
        with self._connect(immediate=True) as con:
            now = time.time()  # taken once the write lock is held
            row = con.execute("SELECT * FROM cases WHERE case_key=?", (case_key,)).fetchone()
            if row is None:
                raise KeyError(f"{self.path}: no case {case_key!r}")
            if row["claimed_by"] not in (None, reviewer) and row["status"] == "in review":
                raise ReviewConflict(f"{case_key} is being reviewed by {row['claimed_by']}")
            con.execute("UPDATE cases SET claimed_by=?, claimed_at=?, status='in review', reviewer=?, "
                        "version=version+1, updated_at=? WHERE case_key=?", (reviewer, now, reviewer, now, case_key))
            con.execute("INSERT INTO history VALUES (?, ?, ?, 'claim', '')", (case_key, now, reviewer))
            out = con.execute("SELECT * FROM cases WHERE case_key=?", (case_key,)).fetchone()
        return _review(out)

    def update(self, case_key: str, expected_version: int, *, reviewer: str, status: str | None = None,
               comment: str | None = None, release: bool = False) -> CaseReview:
        """Set status/comment if nobody changed the case since ``expected_version``.

        Only the reviewer who holds the claim may update a case (claim it first);
        anyone else gets :class:`ReviewConflict`.
        """
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {status!r}")
        with self._connect(immediate=True) as con:
            now = time.time()  # taken once the write lock is held
            row = con.execute("SELECT version, reviewer, claimed_by FROM cases WHERE case_key=?",
                              (case_key,)).fetchone()
            if row is None:
                raise KeyError(f"{self.path}: no case {case_key!r}")
            if int(row["version"]) != int(expected_version):
                raise ReviewConflict(
                    f"{case_key} was changed by {row['reviewer']} (version {row['version']}, you had "
                    f"{expected_version}); reload it")
            if row["claimed_by"] != reviewer:
                who = row["claimed_by"]
                raise ReviewConflict(
                    f"{case_key}: {reviewer} does not hold this case "
                    + (f"({who} does)" if who else "(nobody has claimed it)") + "; claim it first")
            con.execute(
                "UPDATE cases SET status=COALESCE(?, status), comment=COALESCE(?, comment), reviewer=?, "
                "updated_at=?, version=version+1, claimed_by=CASE WHEN ? THEN NULL ELSE claimed_by END "
                "WHERE case_key=?",
                (status, comment, reviewer, now, int(release), case_key))
            con.execute("INSERT INTO history VALUES (?, ?, ?, 'update', ?)",
                        (case_key, now, reviewer, json.dumps({"status": status, "comment": comment})))
            out = con.execute("SELECT * FROM cases WHERE case_key=?", (case_key,)).fetchone()
        return _review(out)

    # -- levels and metrics ----------------------------------------------------------------
    def decide(self, case_key: str, reviewer: str, status: str, comment: str = "") -> CaseReview:
        """A reviewer's decision on a case: claim it if they do not hold it yet, then set
        status and comment; the claim is released unless the status stays "in review".

        Raises :class:`ReviewConflict` while someone else holds the case, or when it
        changed between the claim and the update.
        """
        cur = self.get(case_key)
        if cur.claimed_by != reviewer:  # only the holder may update
            cur = self.claim(case_key, reviewer)
        return self.update(case_key, cur.version, reviewer=reviewer, status=status,
                           comment=comment, release=status != "in review")

    def set_level(self, case_key: str, structure_id: int, *, flag: bool, comment: str = "") -> None:
        """Flag (or unflag) one level of a case, with a comment."""
        with self._connect(immediate=True) as con:
            con.execute("INSERT INTO levels VALUES (?, ?, ?, ?) ON CONFLICT(case_key, structure_id) "
                        "DO UPDATE SET flag=excluded.flag, comment=excluded.comment",
                        (case_key, int(structure_id), int(bool(flag)), comment))

    def levels(self, case_key: str) -> dict[int, tuple[bool, str]]:
        """Structure id -> (flag, comment) for a case."""
        with self._connect() as con:
            rows = con.execute("SELECT structure_id, flag, comment FROM levels WHERE case_key=?",
                               (case_key,)).fetchall()
        return {int(r["structure_id"]): (bool(r["flag"]), r["comment"]) for r in rows}

    def save_metrics(self, case_key: str, payload: Mapping[str, Any], reviewer: str | None = None) -> None:
        """Store a metrics payload (JSON) for a case."""
        with self._connect(immediate=True) as con:
            con.execute("INSERT INTO metrics VALUES (?, ?, ?, ?)",
                        (case_key, time.time(), reviewer, json.dumps(payload, default=jsonable)))

    def latest_metrics(self, case_key: str) -> dict[str, Any] | None:
        """The newest metrics payload of a case, or None."""
        with self._connect() as con:
            row = con.execute("SELECT payload FROM metrics WHERE case_key=? ORDER BY created_at DESC LIMIT 1",
                              (case_key,)).fetchone()
        return json.loads(row["payload"]) if row else None

    def save_snapshot(self, case_key: str, rows: Sequence[LevelRow], png: bytes | None,
                      reviewer: str | None = None, info: Mapping[str, Any] | None = None) -> None:
        """Store the level rows of a comparison, its snapshot picture (PNG bytes) and what
        was compared (``info``: ``reference``, ``candidate``, ``findings`` ...), with the time."""
        self.save_metrics(case_key, {**(info or {}), "when": time.time(), "rows": [r.as_dict() for r in rows],
                                     "snapshot_png": base64.b64encode(png).decode() if png else None},
                          reviewer)

    def latest_snapshot(self, case_key: str) -> tuple[list[LevelRow], bytes | None]:
        """The level rows and picture of the newest :meth:`save_snapshot` (empty if none)."""
        snap = self.latest_metrics(case_key) or {}
        rows = [LevelRow.from_dict(r) for r in snap.get("rows", [])]
        png = base64.b64decode(snap["snapshot_png"]) if snap.get("snapshot_png") else None
        return rows, png

    def history(self, case_key: str) -> list[tuple[float, str, str, str]]:
        """Every action on a case in order: ``(time, reviewer, action, detail)``."""
        with self._connect() as con:
            rows = con.execute("SELECT at, reviewer, action, detail FROM history WHERE case_key=? ORDER BY rowid",
                               (case_key,)).fetchall()
        return [(r["at"], r["reviewer"], r["action"], r["detail"]) for r in rows]


def _review(row: sqlite3.Row) -> CaseReview:
    return CaseReview(row["case_key"], row["dataset"], row["case_id"], row["status"], row["reviewer"],
                      row["claimed_by"], row["comment"], float(row["triage"]), int(row["version"]),
                      row["updated_at"], row["claimed_at"])
