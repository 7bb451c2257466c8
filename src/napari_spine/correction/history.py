"""One undo history for a correction session: labels, landmarks and locks move together.

A :class:`Step` is what one operation changed: the labelled voxels (flat C-order indices
with their old and new values), the landmarks (before and after, when they changed) and
the locked structures (before and after). :class:`History` keeps the undo and redo
stacks; :func:`apply_step` plays a step forwards or backwards on a :class:`State`.
The journal (:mod:`napari_spine.correction.journal`) stores the same steps and the same
undo / redo moves, so replaying it gives exactly the state the history is in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..case import Landmarks

__all__ = ["History", "State", "Step", "apply_step", "changed_voxels", "put_flat", "same_landmarks", "take_flat"]


def changed_voxels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Flat C-order indices where ``a`` and ``b`` differ, whatever their memory layouts."""
    return np.ravel_multi_index(np.nonzero(a != b), a.shape).astype(np.int64, copy=False)


def take_flat(arr: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``arr``'s values at flat C-order ``index``, reading only those voxels whatever the
    memory layout (``arr.ravel()`` of a strided view would copy the whole volume)."""
    if arr.flags.c_contiguous:
        return arr.ravel()[index]
    return arr[np.unravel_index(index, arr.shape)]


def put_flat(arr: np.ndarray, index: np.ndarray, values: np.ndarray) -> None:
    """Write ``values`` at flat C-order ``index`` of ``arr`` in place, whatever its layout."""
    if arr.flags.c_contiguous:
        arr.ravel()[index] = values
    else:
        arr[np.unravel_index(index, arr.shape)] = values


@dataclass(frozen=True)
class Step:
    """What one operation changed."""

    op: str
    index: np.ndarray  # flat C-order indices of the changed voxels
    old: np.ndarray
    new: np.ndarray
    landmarks_before: Landmarks | None = None  # both set when the landmarks changed
    landmarks_after: Landmarks | None = None
    locks_before: frozenset[int] = frozenset()
    locks_after: frozenset[int] = frozenset()

    @property
    def voxels(self) -> int:
        """How many voxels the step changed."""
        return int(len(self.index))

    @property
    def nbytes(self) -> int:
        """Memory the step holds."""
        return int(self.index.nbytes + self.old.nbytes + self.new.nbytes)

    def describe(self) -> str:
        """A line for the status: the operation and what it changed."""
        parts = [f"{self.voxels} voxels"] if self.voxels else []
        if self.landmarks_after is not None:
            parts.append("landmarks")
        if self.locks_before != self.locks_after:
            parts.append("locks")
        return f"{self.op} ({', '.join(parts) or 'no change'})"


@dataclass
class State:
    """Labels (changed in place), landmarks and locks of a case."""

    labels: np.ndarray
    landmarks: Landmarks | None = None
    locks: set[int] = field(default_factory=set)


def apply_step(state: State, step: Step, *, forward: bool) -> None:
    """Play ``step`` on ``state`` in place: forwards (do, redo) or backwards (undo)."""
    if step.voxels:
        put_flat(state.labels, step.index, step.new if forward else step.old)
    if step.landmarks_after is not None:
        state.landmarks = step.landmarks_after if forward else step.landmarks_before
    state.locks = set(step.locks_after if forward else step.locks_before)


def same_landmarks(a: Landmarks | None, b: Landmarks | None) -> bool:
    """Whether two landmark sets are the same points, ids and names."""
    if a is None or b is None:
        return a is b
    return (a.coords.shape == b.coords.shape and bool(np.array_equal(a.coords, b.coords))
            and bool(np.array_equal(a.structure_ids, b.structure_ids)) and a.names == b.names)


class History:
    """Undo and redo stacks of :class:`Step`; a new step clears the redo stack.

    The undo stack keeps at most ``max_bytes`` of voxel changes in memory (the oldest steps
    drop out of it first; the journal still has them).

    >>> h = History()
    >>> s = Step("paint", np.array([0]), np.array([0], np.uint8), np.array([3], np.uint8))
    >>> h.push(s)  # no older step dropped out of memory
    0
    >>> h.can_undo, h.can_redo
    (True, False)
    >>> h.undo() is s, h.can_redo
    (True, True)
    """

    def __init__(self, max_bytes: int = 2 << 30):  # mutation-equivalent: default budget only
        self.max_bytes = int(max_bytes)
        self.undo_stack: list[Step] = []
        self.redo_stack: list[Step] = []
        self._undo_bytes = 0  # memory the undo stack holds

    @property
    def can_undo(self) -> bool:
        """Whether there is a step to undo."""
        return bool(self.undo_stack)

    @property
    def can_redo(self) -> bool:
        """Whether there is an undone step to redo."""
        return bool(self.redo_stack)

    def push(self, step: Step) -> int:
        """A new step: it can be undone; what was undone before can no longer be redone.
        Returns how many of the oldest steps dropped out of memory (over ``max_bytes``)."""
        self.undo_stack.append(step)
        self.redo_stack.clear()
        self._undo_bytes += step.nbytes  # kept up to date: no sum over the stack per step
        dropped = 0
        while len(self.undo_stack) > 1 and self._undo_bytes > self.max_bytes:
            self._undo_bytes -= self.undo_stack.pop(0).nbytes
            dropped += 1
        return dropped

    def undo(self) -> Step | None:
        """The step to play backwards (moved to the redo stack), or None."""
        if not self.undo_stack:
            return None
        step = self.undo_stack.pop()
        self._undo_bytes -= step.nbytes
        self.redo_stack.append(step)
        return step

    def redo(self) -> Step | None:
        """The step to play forwards again (moved to the undo stack), or None."""
        if not self.redo_stack:
            return None
        step = self.redo_stack.pop()
        self._undo_bytes += step.nbytes
        self.undo_stack.append(step)
        return step
