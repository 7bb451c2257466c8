"""A crash-safe edit journal: every edit is kept on disk as a compressed difference.

Layout, one folder per case beside the user's output::

    <folder>/<case id>/journal.jsonl     one JSON line per edit (fsync'd)
    <folder>/<case id>/edits/000001.npz  changed voxel indices, old and new values
    <folder>/<case id>/CLOSED            written when the edits were saved or discarded

An edit's ``.npz`` is written to a temporary file and renamed before its journal line is
appended, so after a crash or ``kill -9`` every journal line points at a complete file; a
torn last line is ignored. Opening the case again offers :meth:`EditJournal.replay`.
:class:`CorrectionSession` keeps the loaded labels as a baseline, finds what changed
since the last record (whatever the tool: a widget operation or a paint stroke) and
reverts single structures to the baseline.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CorrectionSession", "EditJournal", "JournalEntry", "revert_structure"]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "case"


@dataclass(frozen=True)
class JournalEntry:
    seq: int
    op: str
    time: float
    file: str
    changed: int


class EditJournal:
    """Append-only, crash-safe record of the edits of one case."""

    def __init__(self, folder: str | os.PathLike, case_id: str, shape: tuple[int, ...]):
        self.dir = Path(folder) / _safe(case_id)
        self.case_id = case_id
        self.shape = tuple(int(s) for s in shape)
        self._edits = self.dir / "edits"
        self._log = self.dir / "journal.jsonl"

    # -- state -------------------------------------------------------------------------
    def entries(self) -> list[JournalEntry]:
        if not self._log.is_file():
            return []
        out = []
        for line in self._log.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                d = json.loads(line)
                e = JournalEntry(int(d["seq"]), str(d["op"]), float(d["time"]), str(d["file"]), int(d["changed"]))
            except (ValueError, KeyError, TypeError):
                continue  # a line torn by a crash
            if (self._edits / e.file).is_file():
                out.append(e)
        return out

    def has_pending(self) -> bool:
        """True when edits were recorded and neither saved nor discarded (e.g. after a crash)."""
        return not (self.dir / "CLOSED").exists() and bool(self.entries())

    def _meta_ok(self) -> bool:
        meta = self.dir / "case.json"
        if not meta.is_file():
            return True
        try:
            return tuple(json.loads(meta.read_text())["shape"]) == self.shape
        except (ValueError, KeyError):
            return False

    # -- writing -----------------------------------------------------------------------
    def record(self, op: str, flat_index: np.ndarray, old: np.ndarray, new: np.ndarray) -> JournalEntry | None:
        """Record one edit (flat C-order indices into the display array, old and new values)."""
        if len(flat_index) == 0:
            return None
        self._edits.mkdir(parents=True, exist_ok=True)
        closed = self.dir / "CLOSED"
        if closed.exists():
            closed.unlink()
        meta = self.dir / "case.json"
        if not meta.exists():
            _atomic_write(meta, json.dumps({"case_id": self.case_id, "shape": self.shape}).encode())
        seq = (self.entries()[-1].seq + 1) if self._log.exists() and self.entries() else 1
        name = f"{seq:06d}.npz"
        tmp = self._edits / f".{name}.part"
        with open(tmp, "wb") as f:
            np.savez_compressed(f, index=np.asarray(flat_index, dtype=np.int64),
                                old=np.asarray(old), new=np.asarray(new))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._edits / name)
        entry = JournalEntry(seq, op, time.time(), name, int(len(flat_index)))
        with open(self._log, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry.__dict__) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return entry

    def close(self) -> None:
        """Mark the edits as saved (or deliberately discarded): no restore is offered."""
        if self.dir.is_dir():
            _atomic_write(self.dir / "CLOSED", str(time.time()).encode())

    # -- reading -----------------------------------------------------------------------
    def replay(self, labels: np.ndarray, upto: int | None = None) -> np.ndarray:
        """Apply the recorded edits in order to a copy of ``labels`` (the loaded version)."""
        if tuple(labels.shape) != self.shape or not self._meta_ok():
            raise ValueError(f"{self.dir}: journal is for shape {self.shape}, labels are {labels.shape}")
        out = np.array(labels, copy=True)
        for e in self.entries():
            if upto is not None and e.seq > upto:
                break
            with np.load(self._edits / e.file) as z:
                idx = np.unravel_index(z["index"], out.shape)
                out[idx] = z["new"]
        return out


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.part")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def revert_structure(current: np.ndarray, baseline: np.ndarray, structure_id: int) -> np.ndarray:
    """``current`` with one structure restored to its ``baseline`` (loaded/predicted) extent.

    Voxels the structure gained since the baseline get their baseline value back;
    voxels it lost are given back to it. Other structures' edits stay.
    """
    sid = int(structure_id)
    out = np.array(current, copy=True)
    now, then = current == sid, baseline == sid
    gained = now & ~then
    out[gained] = baseline[gained]
    out[then] = sid
    return out


class CorrectionSession:
    """Baseline + journal for one case being corrected (no Qt)."""

    def __init__(self, labels: np.ndarray, journal: EditJournal | None = None):
        self.baseline = np.array(labels, copy=True, order="C")
        self.recorded = np.array(labels, copy=True, order="C")  # as of the last journal entry
        self.journal = journal

    def commit(self, current: Any, op: str) -> int:
        """Record whatever changed since the last commit; returns the number of voxels."""
        cur = np.asarray(current)
        changed = np.flatnonzero(cur.ravel() != self.recorded.ravel())
        if not changed.size:
            return 0
        new = cur.ravel()[changed]  # ravel is C order whatever the memory layout
        old = self.recorded.ravel()[changed]
        if self.journal is not None:
            self.journal.record(op, changed, old, new)
        self.recorded.ravel()[changed] = new
        return int(changed.size)

    def revert(self, current: Any, structure_id: int) -> np.ndarray:
        return revert_structure(np.asarray(current), self.baseline, structure_id)
