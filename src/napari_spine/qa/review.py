"""Review state: case status, reviewer, comments, per-level flags, metric snapshots, history.

One API over two stores (:mod:`._review_store`): an SQLite file for one reviewer or one
machine, or a PostgreSQL server (``postgresql://user@host:port/db``) a team shares.
Safe for several reviewers on one queue at once:

- a case is *claimed* in one transaction holding its row (SQLite: ``BEGIN IMMEDIATE``;
  PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED``), so two reviewers never get the same case;
- every update names the version it read (optimistic concurrency): a stale update is
  refused with :class:`ReviewConflict` instead of silently overwriting someone's work;
- every change is one transaction, written whole or not at all.

A file that is not a database, a database that stays locked, a server that cannot be
reached and a schema newer than this code give :class:`ReviewDBError` naming the location
(never its password); the file is never recreated or truncated.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..io.files import jsonable
from ._review_store import ReviewConflict, ReviewDBError, has_password, is_url, open_store, redact
from .metrics import LevelRow

__all__ = ["STATUSES", "CaseReview", "ReviewConflict", "ReviewDB", "ReviewDBError", "has_password",
           "is_url", "redact"]

STATUSES = ("to do", "in review", "approved", "needs correction")
_CLAIM = ("UPDATE cases SET claimed_by=?, claimed_at=?, status='in review', reviewer=?, "
          "version=version+1, updated_at=? WHERE case_key=?")
_HISTORY = "INSERT INTO history(case_key, at, reviewer, action, detail) VALUES (?, ?, ?, ?, ?)"


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
    """A review queue in an SQLite file (default ``review.sqlite`` beside the dataset) or on
    a PostgreSQL server (``postgresql://user@host:port/db``; the password comes from
    ``~/.pgpass`` or PGPASSWORD, never from a panel or a log)."""

    def __init__(self, location: str | os.PathLike, *, timeout: float = 10.0):
        self._store = open_store(location if is_url(location) else Path(location), timeout)
        self.kind: str = self._store.kind
        self.where: str = self._store.where  # what a message may show (no password)
        self.path: Path | None = self._store.path  # the SQLite file; None on a server

    @property
    def timeout(self) -> float:
        """Seconds to wait for a lock (SQLite) or a row lock and a connection (PostgreSQL)."""
        return self._store.timeout

    @timeout.setter
    def timeout(self, value: float) -> None:
        """Change the wait for the next transactions."""
        self._store.timeout = float(value)

    def close(self) -> None:
        """Close the connection this thread holds (a server); a file keeps none open."""
        self._store.close()

    def _run(self, fn, write: bool = False):
        return self._store.run(fn, write=write)

    def _row(self, tx, case_key: str, lock: bool = False):
        row = tx.execute("SELECT * FROM cases WHERE case_key=?" + (self._store.for_update if lock else ""),
                         (case_key,)).fetchone()
        if row is None:
            raise KeyError(f"{self.where}: no case {case_key!r}")
        return row

    # -- queue -------------------------------------------------------------------------
    def add_cases(self, cases: Iterable[tuple]) -> int:
        """Add ``(case_key, dataset, case_id, triage[, source])`` rows; existing cases keep
        their review state (triage and, when given, the source are refreshed). ``source`` is
        a dict telling where the case's files are, so the queue can open them."""
        rows = [(key, dataset, case_id, float(triage), json.dumps(rest[0]) if rest and rest[0] else None)
                for key, dataset, case_id, triage, *rest in cases]

        def tx(t):
            n = 0
            for key, dataset, case_id, triage, source in rows:
                cur = t.execute(
                    "INSERT INTO cases(case_key, dataset, case_id, triage, source) VALUES (?, ?, ?, ?, "
                    "COALESCE(?, '{}')) ON CONFLICT(case_key) DO UPDATE SET triage=excluded.triage, "
                    "source=COALESCE(?, cases.source)", (key, dataset, case_id, triage, source, source))
                n += cur.rowcount
            return n
        return self._run(tx, write=True)

    def source(self, case_key: str) -> dict[str, Any]:
        """Where a queued case's files are (``dataset_path``, ``kind``, ``case_id``)."""
        row = self._run(lambda t: t.execute("SELECT source FROM cases WHERE case_key=?", (case_key,)).fetchone())
        return json.loads(row["source"]) if row and row["source"] else {}

    def get(self, case_key: str) -> CaseReview:
        """A case's review state; KeyError when it is not in the database."""
        return _review(self._run(lambda t: self._row(t, case_key)))

    def queue(self, status: str | None = None) -> list[CaseReview]:
        """Cases ordered by triage score (most suspicious first)."""
        q = "SELECT * FROM cases" + (" WHERE status=?" if status else "") + " ORDER BY triage DESC, case_key"
        rows = self._run(lambda t: t.execute(q, (status,) if status else ()).fetchall())
        return [_review(r) for r in rows]

    def claim_next(self, reviewer: str, stale_after_s: float = 3600.0) -> CaseReview | None:
        """Atomically claim the most suspicious unclaimed 'to do' case, or a case whose
        reviewer claimed it more than ``stale_after_s`` ago and never finished it (a
        crashed or abandoned review)."""
        def tx(t):
            now = time.time()  # taken once the write lock is held
            row = t.execute(
                "SELECT case_key FROM cases WHERE "
                "(status='to do' AND (claimed_by IS NULL OR claimed_at < ?)) OR "
                "(status='in review' AND claimed_by IS NOT NULL AND claimed_by != ? AND claimed_at < ?) "
                "ORDER BY triage DESC, case_key LIMIT 1" + self._store.skip_locked,
                (now - stale_after_s, reviewer, now - stale_after_s)).fetchone()
            if row is None:
                return None
            key = row["case_key"]
            t.execute(_CLAIM, (reviewer, now, reviewer, now, key))
            t.execute(_HISTORY, (key, now, reviewer, "claim", ""))
            return self._row(t, key)
        out = self._run(tx, write=True)
        return None if out is None else _review(out)

    def set_triage(self, case_key: str, triage: float) -> None:
        """Set a queued case's triage score (computed when it was queued)."""
        self._run(lambda t: t.execute("UPDATE cases SET triage=? WHERE case_key=?", (float(triage), case_key)),
                  write=True)

    def take_over(self, case_key: str, reviewer: str, stale_after_s: float = 3600.0) -> CaseReview:
        """Take over a claim another reviewer abandoned (older than ``stale_after_s``); the
        history records from whom. ReviewConflict while the claim is recent."""
        def tx(t):
            now = time.time()
            row = self._row(t, case_key, lock=True)
            old = row["claimed_by"]
            if old not in (None, reviewer) and (row["claimed_at"] or now) > now - stale_after_s:
                raise ReviewConflict(f"{case_key} is being reviewed by {old}")
            t.execute(_CLAIM, (reviewer, now, reviewer, now, case_key))
            t.execute(_HISTORY, (case_key, now, reviewer, "take over", f"from {old}" if old else ""))
            return self._row(t, case_key)
        return _review(self._run(tx, write=True))

    def claim(self, case_key: str, reviewer: str) -> CaseReview:
        """Claim a chosen case; refused (ReviewConflict) while someone else holds it."""
        return _review(self._run(lambda t: self._claim_in(t, case_key, reviewer), write=True))

    def _claim_in(self, t, case_key: str, reviewer: str):
        now = time.time()  # taken once the row is locked
        row = self._row(t, case_key, lock=True)
        if row["claimed_by"] not in (None, reviewer) and row["status"] == "in review":
            raise ReviewConflict(f"{case_key} is being reviewed by {row['claimed_by']}")
        t.execute(_CLAIM, (reviewer, now, reviewer, now, case_key))
        t.execute(_HISTORY, (case_key, now, reviewer, "claim", ""))
        return self._row(t, case_key)

    def update(self, case_key: str, expected_version: int, *, reviewer: str, status: str | None = None,
               comment: str | None = None, release: bool = False) -> CaseReview:
        """Set status/comment if nobody changed the case since ``expected_version``.

        Only the reviewer who holds the claim may update a case (claim it first);
        anyone else gets :class:`ReviewConflict`.
        """
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {status!r}")
        return _review(self._run(lambda t: self._update_in(t, case_key, expected_version, reviewer, status,
                                                           comment, release), write=True))

    def _update_in(self, t, case_key, expected_version, reviewer, status, comment, release):
        now = time.time()  # taken once the row is locked
        row = self._row(t, case_key, lock=True)
        if int(row["version"]) != int(expected_version):
            raise ReviewConflict(
                f"{case_key} was changed by {row['reviewer']} (version {row['version']}, you had "
                f"{expected_version}); reload it")
        if row["claimed_by"] != reviewer:
            who = row["claimed_by"]
            raise ReviewConflict(
                f"{case_key}: {reviewer} does not hold this case "
                + (f"({who} does)" if who else "(nobody has claimed it)") + "; claim it first")
        t.execute(
            "UPDATE cases SET status=COALESCE(?, status), comment=COALESCE(?, comment), reviewer=?, "
            "updated_at=?, version=version+1, claimed_by=CASE WHEN ? THEN NULL ELSE claimed_by END "
            "WHERE case_key=?", (status, comment, reviewer, now, bool(release), case_key))
        t.execute(_HISTORY, (case_key, now, reviewer, "update", json.dumps({"status": status, "comment": comment})))
        return self._row(t, case_key)

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

    def set_level(self, case_key: str, structure_id: int, *, flag: bool, comment: str = "",
                  reviewer: str | None = None) -> None:
        """Flag (or unflag) one level of a case, with a comment (and who, and when)."""
        self._run(lambda t: _level_in(t, case_key, structure_id, flag, comment, reviewer), write=True)

    def levels(self, case_key: str) -> dict[int, tuple[bool, str]]:
        """Structure id -> (flag, comment) for a case."""
        rows = self._run(lambda t: t.execute("SELECT structure_id, flag, comment FROM levels WHERE case_key=?",
                                             (case_key,)).fetchall())
        return {int(r["structure_id"]): (bool(r["flag"]), r["comment"]) for r in rows}

    def save_metrics(self, case_key: str, payload: Mapping[str, Any], reviewer: str | None = None) -> None:
        """Store a metrics payload (JSON) for a case."""
        self._run(lambda t: _metrics_in(t, case_key, payload, reviewer), write=True)

    def latest_metrics(self, case_key: str) -> dict[str, Any] | None:
        """The newest metrics payload of a case, or None."""
        row = self._run(lambda t: t.execute(
            f"SELECT payload FROM metrics WHERE case_key=? ORDER BY created_at DESC, {self._store.seq} DESC "
            "LIMIT 1", (case_key,)).fetchone())
        return json.loads(row["payload"]) if row else None

    def save_snapshot(self, case_key: str, rows: Sequence[LevelRow], png: bytes | None,
                      reviewer: str | None = None, info: Mapping[str, Any] | None = None) -> None:
        """Store the level rows of a comparison, its snapshot picture (PNG bytes) and what
        was compared (``info``: ``reference``, ``candidate``, ``findings`` ...), with the time."""
        self.save_metrics(case_key, _snapshot(rows, png, info), reviewer)

    def save_review(self, case_key: str, reviewer: str, status: str, comment: str = "", *,
                    levels: Iterable[tuple[int, bool, str]] = (), rows: Sequence[LevelRow] | None = None,
                    png: bytes | None = None, info: Mapping[str, Any] | None = None,
                    triage: float = 0.0) -> CaseReview:
        """A reviewer's whole save in one transaction: queue the case if it is new (with
        ``triage``), claim it if they do not hold it, set status and comment (the claim is
        released unless it stays "in review"), the level flags ``(id, flag, comment)`` and,
        given ``rows``, the metrics snapshot. All of it is saved, or none of it.

        Raises :class:`ReviewConflict` while someone else holds the case.
        """
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {status!r}")
        flags = [(int(sid), bool(flag), text) for sid, flag, text in levels]
        payload = _snapshot(rows, png, info) if rows else None

        def tx(t):
            # queued if new, as one statement: two first saves at once both go on (a check
            # and an insert apart let the second insert fail on the key)
            dataset, _, case_id = case_key.partition("/")
            t.execute("INSERT INTO cases(case_key, dataset, case_id, triage) VALUES (?, ?, ?, ?) "
                      "ON CONFLICT(case_key) DO NOTHING", (case_key, dataset, case_id, float(triage)))
            cur = self._row(t, case_key, lock=True)
            if cur["claimed_by"] != reviewer:
                cur = self._claim_in(t, case_key, reviewer)
            out = self._update_in(t, case_key, cur["version"], reviewer, status, comment, status != "in review")
            for sid, flag, text in flags:
                _level_in(t, case_key, sid, flag, text, reviewer)
            if payload is not None:
                _metrics_in(t, case_key, payload, reviewer)
            return out
        return _review(self._run(tx, write=True))

    def latest_snapshot(self, case_key: str) -> tuple[list[LevelRow], bytes | None]:
        """The level rows and picture of the newest :meth:`save_snapshot` (empty if none)."""
        snap = self.latest_metrics(case_key) or {}
        rows = [LevelRow.from_dict(r) for r in snap.get("rows", [])]
        png = base64.b64decode(snap["snapshot_png"]) if snap.get("snapshot_png") else None
        return rows, png

    def history(self, case_key: str) -> list[tuple[float, str, str, str]]:
        """Every action on a case in order: ``(time, reviewer, action, detail)``."""
        rows = self._run(lambda t: t.execute(
            f"SELECT at, reviewer, action, detail FROM history WHERE case_key=? ORDER BY {self._store.seq}",
            (case_key,)).fetchall())
        return [(r["at"], r["reviewer"], r["action"], r["detail"]) for r in rows]


def _level_in(t, case_key: str, structure_id: int, flag: bool, comment: str, reviewer: str | None) -> None:
    t.execute("INSERT INTO levels(case_key, structure_id, flag, comment, reviewer, updated_at) "
              "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(case_key, structure_id) DO UPDATE SET "
              "flag=excluded.flag, comment=excluded.comment, reviewer=excluded.reviewer, "
              "updated_at=excluded.updated_at",
              (case_key, int(structure_id), int(bool(flag)), comment, reviewer, time.time()))


def _metrics_in(t, case_key: str, payload: Mapping[str, Any], reviewer: str | None) -> None:
    t.execute("INSERT INTO metrics(case_key, created_at, reviewer, payload) VALUES (?, ?, ?, ?)",
              (case_key, time.time(), reviewer, json.dumps(payload, default=jsonable)))


def _snapshot(rows, png: bytes | None, info: Mapping[str, Any] | None) -> dict[str, Any]:
    return {**(info or {}), "when": time.time(), "rows": [r.as_dict() for r in rows],
            "snapshot_png": base64.b64encode(png).decode() if png else None}


def _review(row) -> CaseReview:
    return CaseReview(row["case_key"], row["dataset"], row["case_id"], row["status"], row["reviewer"],
                      row["claimed_by"], row["comment"], float(row["triage"]), int(row["version"]),
                      row["updated_at"], row["claimed_at"])
