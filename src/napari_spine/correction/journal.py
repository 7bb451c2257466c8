"""A crash-safe edit journal: the session's history on disk, undo and redo included.

Layout, one folder per case beside the user's output::

    <folder>/<case id>-<hash>/journal.jsonl     one JSON line per step or move (fsync'd)
    <folder>/<case id>-<hash>/edits/000001.npz  a step: changed voxels, landmarks, locks
    <folder>/<case id>-<hash>/CLOSED            written when the edits were saved

Each line is ``do`` (a new step, with its ``.npz``), ``undo`` or ``redo`` (a move in the
history, no file). Replaying the lines on the loaded labels walks the same undo and redo
stacks as the live session, so a restore after a crash gives exactly the state at the last
completed line: never an undone edit, never a lost one.

``<hash>`` is a hash of the full path of the case's source file, so two cases with the
same file stem in different folders (``sub-01/ct.nii.gz``, ``sub-02/ct.nii.gz``) never
share a journal. A step's ``.npz`` is written to a temporary file, fsync'd and renamed
before its line is appended and fsync'd, so after a crash or ``kill -9`` every line
points at a complete file. A line torn by a crash is detected, reported in
:attr:`EditJournal.dropped` and cut off before the next line is appended. Opening the case
again offers :meth:`EditJournal.replay_state`; edits the user declines to restore are
deleted (:meth:`EditJournal.discard`), so they cannot come back after a later crash.
Recording costs the same however long the journal is: the next sequence number is kept
in memory. :class:`~napari_spine.correction.session.CorrectionSession` uses it.

Two more kinds of line keep the journal honest when something goes wrong:

- ``base``: the whole state (labels, landmarks, locks) as a new starting point. A write
  that fails (a full disk) *stops* the journal: later steps are not appended, since a
  replay that skipped the lost step would give labels nobody ever had. The next
  recording writes the full state as a ``base`` line instead, which repairs the gap;
  replay starts again from the last ``base``.
- the lock: ``<folder>/<case id>-<hash>.lock``, held with an OS file lock
  (``fcntl.flock``; ``msvcrt.locking`` on Windows) by the one session that journals the
  case, with its process id and host written inside. A second session (another napari,
  another process) cannot take it and is told who holds it; the lock goes with the
  process, so a crash never leaves a case locked.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..case import Landmarks
from ..errors import SpineIOError
from ..io.files import safe_name, write_bytes_atomic
from .history import History, State, Step, apply_step

__all__ = ["CaseInUseError", "EditJournal", "JournalEntry", "JournalError", "Replayed"]

KINDS = ("do", "undo", "redo", "base")
_FILED = ("do", "base")  # lines whose data is in a file of edits/


@dataclass(frozen=True)
class JournalEntry:
    seq: int
    op: str
    time: float
    file: str
    changed: int
    kind: str = "do"  # do | undo | redo | base


@dataclass
class Replayed:
    """The journal played on the loaded case: the state, the history that leads to it, and
    what could not be used (torn or missing entries), in words."""

    state: State
    history: History
    dropped: list[str]


def _landmark_arrays(prefix: str, lm: Landmarks | None) -> dict[str, np.ndarray]:
    if lm is None:
        return {}
    return {f"{prefix}_coords": lm.coords, f"{prefix}_ids": lm.structure_ids,
            f"{prefix}_names": np.asarray(lm.names, dtype=str)}


def _landmarks_from(z, prefix: str) -> Landmarks | None:
    if f"{prefix}_coords" not in z:
        return None
    return Landmarks(z[f"{prefix}_coords"], z[f"{prefix}_ids"], tuple(str(n) for n in z[f"{prefix}_names"]))


class EditJournal:
    """Append-only, crash-safe record of the history of one case."""

    #: called with the stage ("edit-file": the step's file is in place, its line not yet
    #: written; "logged": the line is on disk) after each write; lets tests stop the
    #: process at an exact point
    fault: Callable[[str], None] | None = None

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
        #: entries that could not be used, in words (a line torn by a crash, a missing file)
        self.dropped: list[str] = []
        #: why the journal stopped (a write failed), until a ``base`` line repairs it
        self.broken: str | None = None
        self._lock_fd: int | None = None

    # -- the lock ----------------------------------------------------------------------
    @property
    def lock_path(self) -> Path:
        """The lock file, beside the journal's folder (a discard never removes it)."""
        return self.dir.with_name(self.dir.name + ".lock")

    @property
    def holds_lock(self) -> bool:
        """Whether this journal holds its case's lock."""
        return self._lock_fd is not None

    def acquire(self) -> str | None:
        """Take the case's lock. Returns None when this journal holds it (now or already),
        else who holds it, in words ("process 123 on host ws1")."""
        if self._lock_fd is not None:
            return None
        try:
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)  # mutation-equivalent: file mode
        except OSError as exc:  # a file where the folder should be: mkdir says "File exists"
            why = os.strerror(errno.ENOTDIR) if isinstance(exc, FileExistsError) else exc.strerror or exc
            raise JournalError(f"{self.lock_path.parent}: cannot keep the edit journal here ({why})") from None
        if not _try_lock(fd):
            try:
                # mutation-equivalent[256 -> 257]: a pid and a host name are far shorter
                os.lseek(fd, 0, os.SEEK_SET)
                holder = os.read(fd, 256).decode("utf-8", "replace").split()
            except OSError:
                holder = []
            os.close(fd)
            pid, host = (holder + ["?", "?"])[:2]
            mine = pid == str(os.getpid()) and host == socket.gethostname()
            return f"process {pid} on host {host}" + (", this program" if mine else "")
        os.ftruncate(fd, 0)  # mutation-equivalent[0 -> 1]: the words are written from byte 0 on
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        self._lock_fd = fd
        return None

    def release(self) -> None:
        """Give the case's lock back (closing the session)."""
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            try:
                os.close(fd)  # closing the descriptor drops the OS lock
            except OSError:
                pass

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:  # noqa: BLE001 - interpreter shutdown: the OS drops the lock anyway
            pass

    # -- state -------------------------------------------------------------------------
    def entries(self) -> list[JournalEntry]:
        """The recorded lines in order; torn lines and steps whose file is missing are left
        out and described in :attr:`dropped`."""
        self.dropped = []
        if not self._log.is_file():
            return []
        data = self._log.read_bytes()
        lines = data.split(b"\n")
        out = []
        for k, line in enumerate(lines):
            if not line.strip():
                continue
            last = k == len(lines) - 1  # no newline after it: the write was cut off
            try:
                d = json.loads(line.decode("utf-8"))
                e = JournalEntry(int(d["seq"]), str(d["op"]), float(d["time"]), str(d["file"]),
                                 int(d["changed"]), str(d.get("kind", "do")))
                if e.kind not in KINDS:
                    raise ValueError(e.kind)
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                self.dropped.append(f"{self._log}: line {k + 1} is incomplete"
                                    + (" (the last write was cut off by a crash)" if last else "")
                                    + "; it is left out")
                continue
            if e.kind in _FILED and not (self._edits / e.file).is_file():
                self.dropped.append(f"{self._edits / e.file}: missing; step {e.seq} ({e.op}) is left out")
                continue
            out.append(e)
        return out

    def has_pending(self) -> bool:
        """True when steps were recorded and neither saved nor discarded (e.g. after a crash)."""
        return not (self.dir / "CLOSED").exists() and any(e.kind in _FILED for e in self.entries())

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
                    # mutation-equivalent[and -> or]: cutting after the last newline is a no-op then
                    if data and not data.endswith(b"\n"):
                        f.truncate(data.rfind(b"\n") + 1)
                        f.flush()
                        os.fsync(f.fileno())
            entries = self.entries()
            self._next_seq = max((e.seq for e in entries), default=0) + 1
        return self._next_seq

    # -- writing -----------------------------------------------------------------------
    def record(self, step: Step) -> JournalEntry:
        """Record a new step. Raises :class:`JournalError` naming the journal when it cannot
        be written (a full disk, a read-only folder); the edit itself stays in the labels."""
        def payload() -> bytes:
            buf = io.BytesIO()
            np.savez_compressed(
                buf, index=np.asarray(step.index, dtype=np.int64), old=np.asarray(step.old),
                new=np.asarray(step.new), locks_before=np.array(sorted(step.locks_before), dtype=np.int64),
                locks_after=np.array(sorted(step.locks_after), dtype=np.int64),
                **_landmark_arrays("lm_before", step.landmarks_before),
                **_landmark_arrays("lm_after", step.landmarks_after))
            return buf.getvalue()

        self._refuse_if_broken()
        return self._guarded("do", step.op, step.voxels, payload)

    def record_move(self, kind: str, step: Step) -> JournalEntry:
        """Record an undo or a redo of ``step``."""
        if kind not in ("undo", "redo"):
            raise ValueError(f"not a history move: {kind!r}")
        self._refuse_if_broken()
        return self._guarded(kind, step.op, step.voxels, None)

    def record_base(self, state: State, op: str = "journal repaired") -> JournalEntry:
        """Record the whole state as a new starting point: a replay starts again from it.
        This is how a journal stopped by a failed write is repaired."""
        def payload() -> bytes:
            buf = io.BytesIO()
            np.savez_compressed(buf, labels=np.ascontiguousarray(state.labels),
                                locks=np.array(sorted(state.locks), dtype=np.int64),
                                **_landmark_arrays("lm", state.landmarks))
            return buf.getvalue()

        entry = self._guarded("base", op, int(np.count_nonzero(state.labels)), payload)
        self.broken = None
        return entry

    def _refuse_if_broken(self) -> None:
        if self.broken is not None:
            raise JournalError(f"{self.dir}: the journal stopped after a failed write ({self.broken}); "
                               "later edits are journalled once the full state can be written again")

    def _guarded(self, kind: str, op: str, changed: int,
                 payload: Callable[[], bytes] | None) -> JournalEntry:
        try:
            if self._lock_fd is None and (holder := self.acquire()) is not None:
                raise CaseInUseError(f"{self.source or self.case_id}: this case is open in another session "
                                     f"({holder}); its edits are journalled there")
            return self._append(kind, op, changed, payload() if payload is not None else None)
        except CaseInUseError:
            raise
        except JournalError as exc:
            self._stop(str(exc))
            raise
        except OSError as exc:
            reason = f"{exc.strerror or exc}"
            self._stop(reason)
        raise JournalError(f"{self.dir}: the edit could not be journalled ({reason}); save the labels "
                           "now (the edit stays in the labels; later edits are journalled once the "
                           "journal can be written again)")

    def _stop(self, reason: str) -> None:
        """A write failed: nothing more is appended until a full state repairs the gap."""
        self.broken = reason
        self._next_seq = None  # re-read (and cut a torn line) before the next append

    def _append(self, kind: str, op: str, changed: int, payload: bytes | None) -> JournalEntry:
        try:
            self._edits.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(f"{self.dir}: cannot keep the edit journal here "
                               f"({exc.strerror or exc})") from None
        closed = self.dir / "CLOSED"
        if closed.exists():  # edits after a save: offered again, and the save's place is kept
            os.replace(closed, self.dir / "SAVED")
        meta = self.dir / "case.json"
        if not meta.exists():
            write_bytes_atomic(meta, json.dumps({"case_id": self.case_id, "shape": self.shape,
                                                 "source": self.source}).encode())
        seq = self._prepare_append()
        name = f"{seq:06d}.npz" if payload is not None else ""
        if payload is not None:
            write_bytes_atomic(self._edits / name, payload)
            self._fault("edit-file")
        entry = JournalEntry(seq, op, time.time(), name, int(changed), kind)
        with open(self._log, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry.__dict__) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._next_seq = seq + 1
        self._fault("logged")
        return entry

    def _fault(self, stage: str) -> None:
        if self.fault is not None:
            self.fault(stage)

    def close(self) -> None:
        """Mark the edits as saved: no restore is offered (until a later edit)."""
        if self.dir.is_dir():
            last = self._prepare_append() - 1
            write_bytes_atomic(self.dir / "CLOSED", json.dumps({"time": time.time(), "seq": last}).encode())

    def saved_seq(self) -> int:
        """The last line that was saved (0: never saved)."""
        for name in ("CLOSED", "SAVED"):
            try:
                doc = json.loads((self.dir / name).read_text())
                return int(doc["seq"]) if isinstance(doc, dict) else 0
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return 0

    def discard(self) -> None:
        """Delete the recorded edits (the user declined to restore them): they can never be
        offered or replayed again, whatever happens later."""
        if self.dir.is_dir():
            trash = self.dir.with_name(f".{self.dir.name}.discarded-{os.getpid()}")
            os.replace(self.dir, trash)  # one atomic step: no half-deleted journal
            shutil.rmtree(trash, ignore_errors=True)
        self._next_seq = None

    # -- reading -----------------------------------------------------------------------
    def load_step(self, entry: JournalEntry) -> Step:
        """The step a ``do`` line recorded."""
        with np.load(self._edits / entry.file) as z:
            before, after = _landmarks_from(z, "lm_before"), _landmarks_from(z, "lm_after")
            return Step(entry.op, z["index"], z["old"], z["new"], before, after,
                        frozenset(int(i) for i in z["locks_before"]) if "locks_before" in z else frozenset(),
                        frozenset(int(i) for i in z["locks_after"]) if "locks_after" in z else frozenset())

    def replay_state(self, labels: np.ndarray, landmarks: Landmarks | None = None,
                     locks: set[int] | frozenset[int] = frozenset(), *, upto: int | None = None) -> Replayed:
        """Play the journal on the loaded case: every step, undo and redo in order (with
        ``upto``, the lines up to that sequence number)."""
        if tuple(labels.shape) != self.shape or not self._meta_ok():
            raise JournalError(f"{self.dir}: journal is for shape {self.shape} of {self.source or self.case_id}, "
                               f"labels are {labels.shape}")
        state = State(np.array(labels, copy=True, order="C"), landmarks, set(locks))
        history = History(max_bytes=1 << 62)  # mutation-equivalent: unbounded either way
        entries = [e for e in self.entries() if upto is None or e.seq <= upto]
        dropped = list(self.dropped)
        for e in entries:
            if e.kind == "base":
                with np.load(self._edits / e.file) as z:
                    state.labels[...] = z["labels"]
                    state.landmarks = _landmarks_from(z, "lm")
                    state.locks = {int(i) for i in z["locks"]}
                history = History(max_bytes=1 << 62)  # mutation-equivalent: unbounded either way
                continue
            if e.kind == "do":
                step = self.load_step(e)
                history.push(step)
                apply_step(state, step, forward=True)
                continue
            step = history.undo() if e.kind == "undo" else history.redo()
            if step is None:
                dropped.append(f"{self._log}: {e.kind} of {e.op} at line {e.seq} has nothing to "
                               f"{e.kind}; it is left out")
                continue
            apply_step(state, step, forward=e.kind == "redo")
        return Replayed(state, history, dropped)

    def replay(self, labels: np.ndarray, upto: int | None = None) -> np.ndarray:
        """The labels after the journal is played on ``labels`` (the loaded version); with
        ``upto`` only the lines up to that sequence number."""
        return self.replay_state(labels, upto=upto).state.labels


class JournalError(SpineIOError):
    """The edit journal cannot be written (folder missing, read-only or full)."""


class CaseInUseError(JournalError):
    """The case is open in another session (another napari, another process), which holds
    its journal: this one may look but not edit."""


def _try_lock(fd: int) -> bool:
    """Take an exclusive OS lock on an open file without waiting; False when another holds it."""
    if sys.platform == "win32":  # pragma: no cover - Windows only
        import msvcrt

        try:
            # mutation-equivalent: Windows only, never run on the platforms the tests run on
            os.lseek(fd, 1 << 20, os.SEEK_SET)  # a byte past the holder's words, which stay readable
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # mutation-equivalent: Windows only
            return True  # mutation-equivalent: Windows only
        except OSError:
            return False  # mutation-equivalent: Windows only
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True
