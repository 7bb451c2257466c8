"""A crash-safe edit journal: every edit is kept on disk as a compressed difference.

Layout, one folder per case beside the user's output::

    <folder>/<case id>-<hash>/journal.jsonl     one JSON line per edit (fsync'd)
    <folder>/<case id>-<hash>/edits/000001.npz  changed voxel indices, old and new values
    <folder>/<case id>-<hash>/CLOSED            written when the edits were saved

``<hash>`` is a hash of the full path of the case's source file, so two cases with the
same file stem in different folders (``sub-01/ct.nii.gz``, ``sub-02/ct.nii.gz``) never
share a journal. An edit's ``.npz`` is written to a temporary file and renamed before its
journal line is appended, so after a crash or ``kill -9`` every journal line points at a
complete file. A line torn by a crash is cut off before the next edit is appended (it
never glues onto the next entry). Opening the case again offers :meth:`EditJournal.replay`;
edits the user declines to restore are deleted (:meth:`EditJournal.discard`), so they
cannot come back after a later crash. Recording an edit costs the same however long the
journal is: the next sequence number is kept in memory.
:class:`~napari_spine.correction.session.CorrectionSession` uses it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SpineIOError
from ..io.files import safe_name, write_bytes_atomic

__all__ = ["EditJournal", "JournalEntry", "JournalError"]


@dataclass(frozen=True)
class JournalEntry:
    seq: int
    op: str
    time: float
    file: str
    changed: int


class EditJournal:
    """Append-only, crash-safe record of the edits of one case."""

    def __init__(self, folder: str | os.PathLike, case_id: str, shape: tuple[int, ...],
                 source: str | os.PathLike | None = None):
        """``source`` is the case's file (labels, else image): its full path keys the journal."""
        self.source = str(Path(source).expanduser().resolve()) if source else ""
        key = hashlib.sha256(self.source.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        self.dir = Path(folder) / (f"{safe_name(case_id)}-{key}" if self.source else safe_name(case_id))
        if self.source and not self.dir.exists():
            # the same file's journal, written under another spelling of the case name
            same = sorted(p for p in Path(folder).glob(f"*-{key}") if p.is_dir())
            if same:
                self.dir = same[0]
        self.case_id = case_id
        self.shape = tuple(int(s) for s in shape)
        self._edits = self.dir / "edits"
        self._log = self.dir / "journal.jsonl"
        self._next_seq: int | None = None  # known once the log was read or repaired

    # -- state -------------------------------------------------------------------------
    def entries(self) -> list[JournalEntry]:
        """The recorded edits in order (lines torn by a crash, or whose file is missing, left out)."""
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
            doc = json.loads(meta.read_text())
            return tuple(doc["shape"]) == self.shape and doc.get("source", "") == self.source
        except (ValueError, KeyError, TypeError):
            return False

    def _prepare_append(self) -> int:
        """Cut a torn last line off the log (a crash mid-write) and return the next
        sequence number; done once, then kept in memory."""
        if self._next_seq is None:
            if self._log.is_file():
                with open(self._log, "rb+") as f:
                    data = f.read()
                    if data and not data.endswith(b"\n"):
                        f.truncate(data.rfind(b"\n") + 1)
                        f.flush()
                        os.fsync(f.fileno())
            entries = self.entries()
            self._next_seq = (entries[-1].seq + 1) if entries else 1
        return self._next_seq

    # -- writing -----------------------------------------------------------------------
    def record(self, op: str, flat_index: np.ndarray, old: np.ndarray, new: np.ndarray) -> JournalEntry | None:
        """Record one edit (flat C-order indices into the display array, old and new values).

        Raises :class:`JournalError` naming the journal when it cannot be written (a full
        disk, a read-only folder); the edit itself stays in the labels.
        """
        if len(flat_index) == 0:
            return None
        try:
            return self._record(op, flat_index, old, new)
        except JournalError:
            raise
        except OSError as exc:
            raise JournalError(f"{self.dir}: the edit could not be journalled "
                               f"({exc.strerror or exc}); save the labels now") from None

    def _record(self, op: str, flat_index, old, new) -> JournalEntry:
        try:
            self._edits.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(f"{self.dir}: cannot keep the edit journal here "
                               f"({exc.strerror or exc})") from None
        closed = self.dir / "CLOSED"
        if closed.exists():
            closed.unlink()
        meta = self.dir / "case.json"
        if not meta.exists():
            write_bytes_atomic(meta, json.dumps({"case_id": self.case_id, "shape": self.shape,
                                            "source": self.source}).encode())
        seq = self._prepare_append()
        name = f"{seq:06d}.npz"
        buf = io.BytesIO()
        np.savez_compressed(buf, index=np.asarray(flat_index, dtype=np.int64),
                            old=np.asarray(old), new=np.asarray(new))
        write_bytes_atomic(self._edits / name, buf.getvalue())
        entry = JournalEntry(seq, op, time.time(), name, int(len(flat_index)))
        with open(self._log, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry.__dict__) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._next_seq = seq + 1
        return entry

    def close(self) -> None:
        """Mark the edits as saved: no restore is offered."""
        if self.dir.is_dir():
            write_bytes_atomic(self.dir / "CLOSED", str(time.time()).encode())

    def discard(self) -> None:
        """Delete the recorded edits (the user declined to restore them): they can never be
        offered or replayed again, whatever happens later."""
        if self.dir.is_dir():
            trash = self.dir.with_name(f".{self.dir.name}.discarded-{os.getpid()}")
            os.replace(self.dir, trash)  # one atomic step: no half-deleted journal
            shutil.rmtree(trash, ignore_errors=True)
        self._next_seq = None

    # -- reading -----------------------------------------------------------------------
    def replay(self, labels: np.ndarray, upto: int | None = None) -> np.ndarray:
        """Apply the recorded edits in order to a copy of ``labels`` (the loaded version)."""
        if tuple(labels.shape) != self.shape or not self._meta_ok():
            raise JournalError(f"{self.dir}: journal is for shape {self.shape} of {self.source or self.case_id}, "
                               f"labels are {labels.shape}")
        out = np.array(labels, copy=True)
        for e in self.entries():
            if upto is not None and e.seq > upto:
                break
            with np.load(self._edits / e.file) as z:
                idx = np.unravel_index(z["index"], out.shape)
                out[idx] = z["new"]
        return out


class JournalError(SpineIOError):
    """The edit journal cannot be written (folder missing, read-only or full)."""
