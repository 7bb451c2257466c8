"""A correction session: baseline, crash-safe history and locked structures of one case."""

from __future__ import annotations

from typing import Any

import numpy as np

from .journal import EditJournal

__all__ = ["CorrectionSession", "revert_structure"]


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
    """One case being corrected (no Qt): the loaded baseline, the journal, the locks.

    :meth:`commit` finds what changed since the last record, whatever the tool (an
    operation or a paint stroke), and journals it; :meth:`enforce_locks` undoes edits of
    locked structures; :meth:`revert` brings one structure back to the baseline.
    """

    def __init__(self, labels: np.ndarray, journal: EditJournal | None = None):
        self.baseline = np.array(labels, copy=True, order="C")
        self.recorded = np.array(labels, copy=True, order="C")  # as of the last journal entry
        self.journal = journal
        #: edits of an earlier session that were neither restored nor declined yet
        self.pending = journal is not None and journal.has_pending()
        #: structure ids no edit may change (painting is undone on them; operations skip them)
        self.locked: set[int] = set()

    def restore(self) -> np.ndarray:
        """The labels with the pending edits of an earlier session applied (kept in the
        journal: they are the first edits of this session now)."""
        if self.journal is None or not self.pending:
            return np.array(self.recorded, copy=True)
        restored = self.journal.replay(self.baseline)
        self.recorded = np.array(restored, copy=True, order="C")
        self.pending = False
        return restored

    def decline(self) -> None:
        """Throw the pending edits away for good."""
        if self.journal is not None and self.pending:
            self.journal.discard()
        self.pending = False

    def commit(self, current: Any, op: str) -> int:
        """Record whatever changed since the last commit; returns the number of voxels.

        Editing while earlier edits wait to be restored declines them: the journal then
        holds this session's edits only.
        """
        cur = np.asarray(current)
        changed = np.flatnonzero(cur.ravel() != self.recorded.ravel())
        if not changed.size:
            return 0
        new = cur.ravel()[changed]  # ravel is C order whatever the memory layout
        old = self.recorded.ravel()[changed]
        if self.pending:
            self.decline()
        if self.journal is not None:
            self.journal.record(op, changed, old, new)
        self.recorded.ravel()[changed] = new
        return int(changed.size)

    def revert(self, current: Any, structure_id: int) -> np.ndarray:
        """``current`` with one structure back to its loaded extent (locks respected)."""
        out = revert_structure(np.asarray(current), self.baseline, structure_id)
        return self.keep_locked(np.asarray(current), out)

    # -- locks -------------------------------------------------------------------------
    def keep_locked(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        """``after`` with every voxel that was a locked structure in ``before`` restored."""
        if not self.locked:
            return after
        hit = np.isin(before, list(self.locked)) & (after != before)
        if hit.any():
            after = np.array(after, copy=True)
            after[hit] = before[hit]
        return after

    def enforce_locks(self, current: np.ndarray) -> int:
        """Undo, in place, whatever changed a locked structure since the last commit (a paint
        stroke over a locked level); returns how many voxels were put back."""
        if not self.locked:
            return 0
        hit = np.nonzero(np.isin(self.recorded, list(self.locked)) & (current != self.recorded))
        if hit[0].size:
            current[hit] = self.recorded[hit]
        return int(hit[0].size)
