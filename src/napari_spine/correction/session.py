"""A correction session: baseline, one undo history, crash-safe journal, locks of one case."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np

from ..anatomy.labelmaps import flat_foreground
from ..case import Landmarks
from .history import History, State, Step, apply_step, same_landmarks
from .journal import EditJournal

__all__ = ["CorrectionSession", "revert_structure"]

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
        #: edits of an earlier session that were neither restored nor declined yet
        self.pending = journal is not None and journal.has_pending()
        #: what a restore could not use, in words (a line torn by a crash)
        self.dropped: list[str] = []
        self._locked: frozenset[int] = frozenset()
        self._recount()

    # -- state -------------------------------------------------------------------------
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

    def _update_counts(self, old: np.ndarray, new: np.ndarray, forward: bool) -> None:
        if not len(old):
            return
        # mutation-equivalent[1 -> 2]: one more zero bin
        size = max(len(self.counts), int(max(old.max(), new.max())) + 1)
        if size > len(self.counts):  # mutation-equivalent: padding by zero is no change
            self.counts = np.pad(self.counts, (0, size - len(self.counts)))
        gone, came = (old, new) if forward else (new, old)
        self.counts = self.counts - _count(gone, size) + _count(came, size)
        self.counts[0] = 0

    # -- recording ---------------------------------------------------------------------
    def _changed(self, cur: np.ndarray, where: Where) -> np.ndarray:
        """Flat indices where ``cur`` differs from the recorded labels, looked for in ``where``
        (a box of slices, candidate flat indices, or everywhere)."""
        rec = self.recorded
        if where is None:
            return np.flatnonzero(cur.ravel() != rec.ravel())
        if isinstance(where, tuple):
            local = np.nonzero(cur[where] != rec[where])
            starts = [s.indices(n)[0] for s, n in zip(where, rec.shape)]
            return np.ravel_multi_index(tuple(ix + o for ix, o in zip(local, starts)), rec.shape)
        idx = np.asarray(where, dtype=np.int64).ravel()
        return idx[cur.ravel()[idx] != rec.ravel()[idx]]

    def commit(self, current: Any, op: str, *, where: Where = None,
               landmarks: Landmarks | None = None) -> Step | None:
        """Record whatever changed since the last step as one step (None: nothing changed).

        ``where`` limits the search to a box or to candidate voxels (a paint stroke's box);
        ``landmarks`` are the landmarks as they are now (None: not part of this step).
        Editing while earlier edits wait to be restored declines them: the journal then
        holds this session's edits only. A journal that cannot be written raises
        :class:`~napari_spine.correction.JournalError` after the step is in the history.
        """
        cur = np.asarray(current)
        changed = self._changed(cur, where)
        lm_changed = landmarks is not None and not same_landmarks(landmarks, self.landmarks)
        if not changed.size and not lm_changed:
            return None
        new = cur.ravel()[changed]  # ravel is C order whatever the memory layout
        old = self.recorded.ravel()[changed]
        # mutation-equivalent: 2**32 voxels (16 GiB of labels), beyond any test's memory
        index = changed.astype(np.uint32 if cur.size < 2**32 else np.int64)
        step = Step(op, index, old, new, self.landmarks if lm_changed else None,
                    landmarks if lm_changed else None, self._locked, self._locked)
        return self._push(step)

    def set_locks(self, ids: Collection[int], op: str = "locks") -> Step | None:
        """Change the locked structures, as one step of the history (None: no change)."""
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

    def _push(self, step: Step) -> Step:
        if self.pending:
            self.decline()
        self.history.push(step)
        self._play(step, forward=True)
        if self.journal is not None:
            self.journal.record(step)
        return step

    def _play(self, step: Step, forward: bool) -> None:
        state = State(self.recorded, self.landmarks, set(self._locked))
        apply_step(state, step, forward=forward)
        self.landmarks, self._locked = state.landmarks, frozenset(state.locks)
        self._update_counts(step.old, step.new, forward)

    # -- history -----------------------------------------------------------------------
    def undo(self, current: np.ndarray) -> Step | None:
        """Undo the last step on ``current`` (the layer's labels, changed in place), the
        landmarks and the locks; returns the step (None: nothing to undo)."""
        return self._move(current, "undo")

    def redo(self, current: np.ndarray) -> Step | None:
        """Redo the last undone step (see :meth:`undo`)."""
        return self._move(current, "redo")

    def _move(self, current: np.ndarray, kind: str) -> Step | None:
        step = self.history.undo() if kind == "undo" else self.history.redo()
        if step is None:
            return None
        forward = kind == "redo"
        if step.voxels:
            arr = np.asarray(current)
            values = step.new if forward else step.old
            if arr.flags.c_contiguous:
                arr.ravel()[step.index] = values
            else:  # a view in another memory order: ravel() would be a copy
                arr[np.unravel_index(step.index, arr.shape)] = values
        self._play(step, forward)
        if self.journal is not None:
            self.journal.record_move(kind, step)
        return step

    # -- restore -----------------------------------------------------------------------
    def restore(self) -> State:
        """The case with the pending history of an earlier session played (undo and redo
        included); that history is this session's now, so it can be undone. What the
        journal could not use is in :attr:`dropped`."""
        # mutation-equivalent[or -> and]: replaying this session's own journal gives the state it has
        if self.journal is None or not self.pending:
            return State(np.array(self.recorded, copy=True), self.landmarks, set(self._locked))
        done = self.journal.replay_state(self.baseline, self.baseline_landmarks, self._locked)
        self.dropped = done.dropped
        self.recorded = np.array(done.state.labels, copy=True, order="C")
        self.landmarks, self._locked = done.state.landmarks, frozenset(done.state.locks)
        done.history.max_bytes = self.history.max_bytes
        self.history = done.history
        self._recount()
        self.pending = False
        return done.state

    def decline(self) -> None:
        """Throw the pending edits away for good."""
        if self.journal is not None and self.pending:
            self.journal.discard()
        self.pending = False

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
        ids = list(self._locked)
        hit = (np.isin(before, ids) | np.isin(after, ids)) & (after != before)
        if hit.any():
            after = np.array(after, copy=True)
            after[hit] = before[hit]
        return after

    def enforce_locks(self, current: np.ndarray, where: tuple[slice, ...] | None = None) -> int:
        """Undo, in place, whatever changed a locked structure since the last step (a paint
        stroke over a locked level, or painting a locked id), searching ``where`` (a box)
        or everywhere; returns how many voxels were put back."""
        if not self._locked:
            return 0
        box = where if where is not None else tuple(slice(None) for _ in current.shape)
        cur, rec = current[box], self.recorded[box]
        ids = list(self._locked)
        hit = np.nonzero((np.isin(rec, ids) | np.isin(cur, ids)) & (cur != rec))
        if hit[0].size:  # mutation-equivalent: nonzero's index arrays are equally long
            cur[hit] = rec[hit]
        return int(hit[0].size)  # mutation-equivalent: nonzero's index arrays are equally long
