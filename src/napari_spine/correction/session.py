"""A correction session: baseline, one undo history, crash-safe journal, locks of one case."""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

import numpy as np

from ..anatomy.labelmaps import flat_foreground
from ..case import Landmarks
from ..errors import SpineIOError
from .history import (
    History,
    State,
    Step,
    apply_step,
    changed_voxels,
    put_flat,
    same_landmarks,
    take_flat,
)
from .journal import CaseInUseError, EditJournal, JournalError

__all__ = ["CorrectionSession", "PendingEditsError", "ReadOnlySessionError", "revert_structure"]


class PendingEditsError(SpineIOError):
    """Edits of an earlier session on this case wait to be restored or discarded: nothing
    may change the case until the user has chosen (nothing was changed)."""


class ReadOnlySessionError(CaseInUseError):
    """The case is open in another session, which journals its edits: this one is read-only
    (nothing was changed)."""

Where = tuple[slice, ...] | np.ndarray | None


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


def _holder(journal: EditJournal) -> str | None:
    """Who else holds the case's journal (None: this session does, or the folder cannot be
    made, which the first recording reports)."""
    try:
        return journal.acquire()
    except JournalError:
        return None


def _count(values: np.ndarray, size: int) -> np.ndarray:
    return np.bincount(np.asarray(values, dtype=np.int64).ravel(), minlength=size)


class CorrectionSession:
    """One case being corrected (no Qt): the loaded baseline, the history, the journal, the locks.

    Every change is one :class:`~napari_spine.correction.history.Step` (labels, landmarks
    and locks together): :meth:`commit` finds what changed since the last step, whatever
    the tool (an operation, a paint stroke, a landmark moved), :meth:`set_locks` changes
    the locks, :meth:`undo` / :meth:`redo` walk the history, and each of them writes the
    same line to the journal, so a restore after a crash gives the state of the last
    completed line. Voxel counts per structure are kept up to date from the steps alone
    (no pass over the volume after an edit).

    Nothing deletes an earlier session's edits but :meth:`decline`: while they are
    :attr:`pending`, every recording method raises :class:`PendingEditsError` and changes
    nothing. When another session holds the case's journal, this one is read-only
    (:attr:`read_only` says why) and recording raises :class:`ReadOnlySessionError`.
    A step that could not be journalled stops the journal (:attr:`journal_gap`); the next
    recording writes the whole state as a new starting point of the journal, so a restore
    only ever gives a state the user had.
    """

    def __init__(self, labels: np.ndarray, journal: EditJournal | None = None,
                 landmarks: Landmarks | None = None,
                 max_history_bytes: int = 2 << 30):  # mutation-equivalent: default budget only
        self.baseline = np.array(labels, copy=True, order="C")
        self.recorded = np.array(labels, copy=True, order="C")  # as of the last step
        self.baseline_landmarks = landmarks
        self.landmarks = landmarks  # as of the last step
        self.journal = journal
        self.history = History(max_history_bytes)
        #: why the case cannot be edited here (another session holds it), else None
        self.read_only: str | None = None
        if journal is not None and (holder := _holder(journal)) is not None:
            self.read_only = (f"{journal.source or journal.case_id}: this case is open in another session "
                              f"({holder}); it is shown read-only here")
        #: edits of an earlier session that were neither restored nor declined yet
        self.pending = self.read_only is None and journal is not None and journal.has_pending()
        #: what a restore could not use, in words (a line torn by a crash)
        self.dropped: list[str] = []
        self._locked: frozenset[int] = frozenset()
        # what the journal knows of the history: the undo stack's steps from _jbase on
        # (older ones precede its last full-state line) and the last _jredo undone steps
        self._jbase = 0
        # mutation-equivalent[0 -> 1]: the first recording is a step, which sets it to 0
        self._jredo = 0
        self._unsaved = 0
        #: what changed since :meth:`take_touched` was last called: (structure ids, box)
        #: per step, None once anything changed everywhere (a restore)
        self._touched: list[tuple[np.ndarray, tuple[slice, ...]]] | None = []
        self._lut: tuple[frozenset[int], np.ndarray] | None = None
        self._recount()

    # -- state -------------------------------------------------------------------------
    @property
    def journal_gap(self) -> str | None:
        """Why the journal stopped (a failed write), until the next step repairs it."""
        return self.journal.broken if self.journal is not None else None

    @property
    def unsaved(self) -> int:
        """How many changes (steps, undos, redos, restored steps) since the labels were last
        saved (:meth:`mark_saved`)."""
        return self._unsaved

    def mark_saved(self) -> None:
        """The labels as they are were saved: the journal is closed (no restore is offered)."""
        self._unsaved = 0
        if self.journal is not None and self.read_only is None and not self.pending:
            self.journal.close()

    def pending_summary(self) -> str:
        """The pending edits in words: how many, the last one and when ("" when none)."""
        if not self.pending or self.journal is None:
            return ""
        entries = self.journal.entries()
        steps = [e for e in entries if e.kind in ("do", "base")]
        if not steps:
            return ""
        last = entries[-1]
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(last.time))
        what = f"{last.kind} {last.op}" if last.kind in ("undo", "redo") else last.op
        return f"{len(steps)} edit{'s' if len(steps) != 1 else ''} (last: {what}, {when})"

    def close(self) -> None:
        """End the session: the case's lock is given back (the journal stays)."""
        if self.journal is not None:
            self.journal.release()

    def _check_writable(self) -> None:
        if self.read_only is not None:
            raise ReadOnlySessionError(self.read_only)
        if self.pending:
            raise PendingEditsError(  # pending edits come from a journal: there is one
                f"{self.journal.source or self.journal.case_id}: "
                f"unsaved edits of an earlier session wait ({self.pending_summary()}): "
                "restore or discard them first; nothing was changed")

    @property
    def locked(self) -> frozenset[int]:
        """Structure ids no edit may change (painting is undone on them; operations skip them)."""
        return self._locked

    def present(self) -> list[int]:
        """The structure ids with at least one voxel, from the kept counts."""
        return [int(i) for i in np.flatnonzero(self.counts) if i]

    def _recount(self) -> None:
        """Voxel counts per structure from the recorded labels (one pass: at start, after a restore)."""
        flat = self.recorded.ravel()
        # mutation-equivalent: the initial size (counts grow to any id)
        self.counts = _count(flat[flat_foreground(flat)], 256)

    def _update_counts(self, old: np.ndarray, new: np.ndarray, forward: bool) -> np.ndarray:
        """Move the step's voxels between the kept counts; returns the ids it touched."""
        if not len(old):
            return np.zeros(0, np.int64)  # mutation-equivalent[0 -> 1]: id 0 is never re-measured
        # mutation-equivalent[1 -> 2]: one more zero bin
        size = max(len(self.counts), int(max(old.max(), new.max())) + 1)
        if size > len(self.counts):  # mutation-equivalent: padding by zero is no change
            self.counts = np.pad(self.counts, (0, size - len(self.counts)))
        gone, came = (old, new) if forward else (new, old)
        n_gone, n_came = _count(gone, size), _count(came, size)
        self.counts = self.counts - n_gone + n_came
        self.counts[0] = 0
        return np.flatnonzero(n_gone | n_came)

    # -- recording ---------------------------------------------------------------------
    def _changed(self, cur: np.ndarray, where: Where) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(flat indices, new values, old values)`` where ``cur`` differs from the recorded
        labels, looked for in ``where`` (a box of slices, candidate flat indices, or
        everywhere); only those voxels are read, whatever the layout of ``cur``."""
        rec = self.recorded
        if isinstance(where, tuple):  # a stroke's box: the values come from the box itself
            cur_box, rec_box = cur[where], rec[where]
            local = np.nonzero(cur_box != rec_box)
            starts = [s.indices(n)[0] for s, n in zip(where, rec.shape)]
            idx = np.ravel_multi_index(tuple(ix + o for ix, o in zip(local, starts)), rec.shape)
            return idx, cur_box[local], rec_box[local]
        if where is None:  # any layout: the comparison, never a ravel() copy of a strided view
            idx = changed_voxels(cur, rec)
        else:
            # mutation-equivalent[1 -> 2]: numpy reads -2 as -1
            idx = np.asarray(where, dtype=np.int64).reshape(-1)  # candidate indices, already flat
            idx = idx[take_flat(cur, idx) != take_flat(rec, idx)]
        return idx, take_flat(cur, idx), take_flat(rec, idx)

    def commit(self, current: Any, op: str, *, where: Where = None,
               landmarks: Landmarks | None = None) -> Step | None:
        """Record whatever changed since the last step as one step (None: nothing changed).

        ``where`` limits the search to a box or to candidate voxels (a paint stroke's box);
        ``landmarks`` are the landmarks as they are now (None: not part of this step).
        Only the voxels of ``where`` are read, whatever the memory layout of ``current``.
        While earlier edits are :attr:`pending` it raises :class:`PendingEditsError` (and
        :class:`ReadOnlySessionError` in a read-only session), changing nothing. A journal
        that cannot be written raises :class:`~napari_spine.correction.JournalError` after
        the step is in the history.
        """
        self._check_writable()
        cur = np.asarray(current)
        changed, new, old = self._changed(cur, where)
        lm_changed = landmarks is not None and not same_landmarks(landmarks, self.landmarks)
        if not changed.size and not lm_changed:
            return None
        # mutation-equivalent[2 -> 3]: the third entry is the box's step, always 1
        box = tuple(slice(*sl.indices(n)[:2]) for sl, n in zip(where, cur.shape)) if isinstance(where, tuple) else None
        # mutation-equivalent: 2**32 voxels (16 GiB of labels), beyond any test's memory
        index = changed.astype(np.uint32 if cur.size < 2**32 else np.int64)
        step = Step(op, index, old, new, self.landmarks if lm_changed else None,
                    landmarks if lm_changed else None, self._locked, self._locked)
        return self._push(step, box)

    def set_locks(self, ids: Collection[int], op: str = "locks") -> Step | None:
        """Change the locked structures, as one step of the history (None: no change)."""
        self._check_writable()
        new = frozenset(int(i) for i in ids)
        if new == self._locked:
            return None
        gained, lost = sorted(new - self._locked), sorted(self._locked - new)
        from ..anatomy import ontology

        what = ", ".join([f"lock {ontology.name_of(i)}" for i in gained]
                         + [f"unlock {ontology.name_of(i)}" for i in lost])
        empty = np.empty(0, dtype=self.recorded.dtype)
        step = Step(what or op, np.empty(0, dtype=np.uint32), empty, empty, None, None, self._locked, new)
        return self._push(step)

    def attach_landmarks(self, landmarks: Landmarks | None) -> bool:
        """Bind landmarks shown after the session began (their layer came later): they are
        the baseline's and the current ones from now on (not a step). False when the session
        has landmarks already."""
        if self.landmarks is not None or landmarks is None:
            return False
        self.landmarks = landmarks
        if self.baseline_landmarks is None and not self.history.can_undo and not self.history.can_redo:
            self.baseline_landmarks = landmarks
        return True

    def _push(self, step: Step, box: tuple[slice, ...] | None = None) -> Step:
        """Record a new step; ``box`` holds all its voxels when known (a stroke's box)."""
        dropped = self.history.push(step)
        self._jbase = max(0, self._jbase - dropped)
        # mutation-equivalent[0 -> 1]: a redo needs an undo first, and only known undos count up
        self._jredo = 0
        self._play(step, forward=True, box=box)
        self._unsaved += 1
        self._journal(lambda j: j.record(step), known=True)
        return step

    def _journal(self, write, known: bool) -> None:
        """Journal a change: ``write(journal)`` when the journal can express it (``known``:
        the step it moves is one the journal has), else the whole state as a new start."""
        j = self.journal
        if j is None:
            return
        if known and j.broken is None:
            write(j)
            return
        state = State(self.recorded, self.landmarks, set(self._locked))
        j.record_base(state, "journal repaired" if j.broken else "history before the journal's start")
        self._jbase, self._jredo = len(self.history.undo_stack), 0

    def _play(self, step: Step, forward: bool, box: tuple[slice, ...] | None = None) -> None:
        state = State(self.recorded, self.landmarks, set(self._locked))
        apply_step(state, step, forward=forward)
        self.landmarks, self._locked = state.landmarks, frozenset(state.locks)
        ids = self._update_counts(step.old, step.new, forward)
        if step.voxels and self._touched is not None:
            if box is None:  # the box of the changed voxels (a stroke's box is known already)
                ix = np.unravel_index(np.asarray(step.index, dtype=np.int64), self.recorded.shape)
                box = tuple(slice(int(a.min()), int(a.max()) + 1) for a in ix)
            self._touched.append((ids, box))
            # mutation-equivalent[Gt -> GtE, 256 -> 257]: a cap; one entry more or less changes memory only
            if len(self._touched) > 256:  # nobody is reading: a full check is as cheap
                self._touched = None

    def take_touched(self) -> list[tuple[np.ndarray, tuple[slice, ...]]] | None:
        """The structures and boxes the steps changed since the last call (None: the
        labels changed everywhere; measure them anew) -- what an incremental check needs."""
        out, self._touched = self._touched, []
        return out

    # -- history -----------------------------------------------------------------------
    def undo(self, current: np.ndarray) -> Step | None:
        """Undo the last step on ``current`` (the layer's labels, changed in place), the
        landmarks and the locks; returns the step (None: nothing to undo)."""
        return self._move(current, "undo")

    def redo(self, current: np.ndarray) -> Step | None:
        """Redo the last undone step (see :meth:`undo`)."""
        return self._move(current, "redo")

    def _move(self, current: np.ndarray, kind: str) -> Step | None:
        self._check_writable()
        known = (len(self.history.undo_stack) > self._jbase) if kind == "undo" else self._jredo > 0
        step = self.history.undo() if kind == "undo" else self.history.redo()
        if step is None:
            return None
        forward = kind == "redo"
        if step.voxels:
            put_flat(np.asarray(current), step.index, step.new if forward else step.old)
        self._play(step, forward)
        self._unsaved += 1
        # mutation-equivalent[and -> or]: only over-counts; an unknown redo meets a count reset to 0
        if known and kind == "undo":
            self._jredo += 1  # mutation-equivalent[1 -> 2]: over-counting is never read (see _push)
        elif known:
            self._jredo -= 1
        self._journal(lambda j: j.record_move(kind, step), known=known)
        return step

    # -- restore -----------------------------------------------------------------------
    def restore(self) -> State:
        """The case with the pending history of an earlier session played (undo and redo
        included); that history is this session's now, so it can be undone. What the
        journal could not use is in :attr:`dropped`."""
        if self.read_only is not None:
            raise ReadOnlySessionError(self.read_only)
        # mutation-equivalent[or -> and]: replaying this session's own journal gives the state it has
        if self.journal is None or not self.pending:
            return State(np.array(self.recorded, copy=True), self.landmarks, set(self._locked))
        done = self.journal.replay_state(self.baseline, self.baseline_landmarks, self._locked)
        self.dropped = done.dropped
        self.recorded = np.array(done.state.labels, copy=True, order="C")
        self.landmarks, self._locked = done.state.landmarks, frozenset(done.state.locks)
        done.history.max_bytes = self.history.max_bytes
        self.history = done.history
        self._jbase, self._jredo = 0, len(done.history.redo_stack)  # the journal has them all
        saved = self.journal.saved_seq()  # the lines after the last save are what is unsaved
        # mutation-equivalent[1 -> 2]: pending edits are lines after the last save, at least one
        self._unsaved = sum(e.seq > saved for e in self.journal.entries()) or 1
        self._touched = None
        self._recount()
        self.pending = False
        return done.state

    def decline(self) -> None:
        """Throw the pending edits away for good: the only way they are ever deleted."""
        if self.journal is not None and self.pending:
            self.journal.discard()
        self.pending = False

    def discard_unsaved(self) -> None:
        """The annotator's *Discard* of this session's unsaved edits on leaving the case:
        its journal is deleted (the labels on show are not changed)."""
        if self.journal is not None and self.read_only is None and not self.pending:
            self.journal.discard()
        self._unsaved = 0

    def revert(self, current: Any, structure_id: int) -> np.ndarray:
        """``current`` with one structure back to its loaded extent (locks respected)."""
        out = revert_structure(np.asarray(current), self.baseline, structure_id)
        return self.keep_locked(np.asarray(current), out)

    # -- locks -------------------------------------------------------------------------
    def keep_locked(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        """``after`` with every change that touches a locked structure undone: voxels that
        were locked keep their id, and no voxel becomes a locked id."""
        if not self._locked:
            return after
        hit = (self._locked_at(before) | self._locked_at(after)) & (after != before)
        if hit.any():
            after = np.array(after, copy=True)
            after[hit] = before[hit]
        return after

    def _locked_at(self, values: np.ndarray) -> np.ndarray:
        """Whether each value is a locked id: a look-up table for 1-byte labels (one indexing
        per voxel, not a set search), ``np.isin`` for wider ones."""
        if values.dtype != np.uint8:
            return np.isin(values, list(self._locked))
        if self._lut is None or self._lut[0] != self._locked:
            table = np.zeros(256, dtype=bool)  # mutation-equivalent[256 -> 257]: uint8 values stop at 255
            table[[i for i in self._locked if 0 <= i < 256]] = True
            self._lut = (self._locked, table)
        return self._lut[1][values]

    def enforce_locks(self, current: np.ndarray, where: tuple[slice, ...] | None = None) -> int:
        """Undo, in place, whatever changed a locked structure since the last step (a paint
        stroke over a locked level, or painting a locked id), searching ``where`` (a box)
        or everywhere; returns how many voxels were put back."""
        if not self._locked:
            return 0
        box = where if where is not None else tuple(slice(None) for _ in current.shape)
        cur, rec = current[box], self.recorded[box]
        diff = cur != rec
        if not diff.any():  # the common case after a stroke of an unlocked structure elsewhere
            return 0
        hit = np.nonzero((self._locked_at(rec) | self._locked_at(cur)) & diff)
        if hit[0].size:  # mutation-equivalent: nonzero's index arrays are equally long
            cur[hit] = rec[hit]
        return int(hit[0].size)  # mutation-equivalent: nonzero's index arrays are equally long
