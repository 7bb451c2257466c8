"""Scripted correction sessions: seeded random edits, undos and redos, for property tests,
crash tests and benchmarks (public, Qt- and torch-free).

:func:`run_session` drives a :class:`~napari_spine.correction.CorrectionSession` the way
the panel does (operations, paint strokes, landmark moves, lock changes, undo, redo) and
keeps, independently of the session, the full state after every operation: the model
the session's history and journal are checked against.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..case import Landmarks
from ..correction import ops
from ..correction.session import CorrectionSession

__all__ = ["Snapshot", "run_session"]

KINDS = ("paint", "paint", "paint", "relabel", "swap", "shift", "lock", "landmark",
         "keep largest", "fill holes", "undo", "undo", "redo")


@dataclass(frozen=True)
class Snapshot:
    """The state a session should be in after an operation."""

    kind: str
    labels: np.ndarray
    landmarks: Landmarks | None
    locks: frozenset[int]


def _paint(rng, cur: np.ndarray, ids: list[int]) -> tuple[slice, ...]:
    lo = [int(rng.integers(0, n - 2)) for n in cur.shape]
    box = tuple(slice(a, min(n, a + int(rng.integers(1, 6)))) for a, n in zip(lo, cur.shape))
    cur[box] = int(rng.choice([0, *ids]))
    return box


def _op(kind: str, rng, cur: np.ndarray, locked: frozenset[int], landmarks: Landmarks | None,
        ids: list[int]):
    """The labels (and landmarks) an operation gives, or None when it is refused."""
    a, b = (int(x) for x in rng.choice(ids, 2, replace=False))
    try:
        if kind == "relabel":
            return ops.relabel(cur, a, b, locked=locked), None
        if kind == "swap":
            return ops.swap_levels(cur, a, b, locked=locked), None
        if kind == "keep largest":
            return ops.keep_largest(cur, locked=locked), None
        if kind == "fill holes":
            return ops.fill_holes(cur, locked=locked), None
        out, lm = ops.shift_levels(cur, int(rng.choice([-1, 1])), landmarks=landmarks, locked=locked)
        return out, lm
    except ValueError:
        return None


def _differs(a: Snapshot, b: Snapshot) -> bool:
    from ..correction.history import same_landmarks

    return (a.locks != b.locks or not same_landmarks(a.landmarks, b.landmarks)
            or not np.array_equal(a.labels, b.labels))


# long: one branch per kind of edit, each a few lines, in the order of KINDS
def run_session(s: CorrectionSession, cur: np.ndarray, seed: int, n_ops: int = 50,
                after: Callable[[int, Snapshot], None] | None = None) -> list[Snapshot]:
    """Run ``n_ops`` seeded random edits on ``cur`` (the live labels) through ``s``.

    Returns the expected state after each operation, computed from full copies (a stack
    of states), never from the session's own steps; ``after(i, snapshot)`` is called
    after each operation.
    """
    rng = np.random.default_rng(seed)
    ids = sorted(int(i) for i in np.unique(cur) if i)
    model = [Snapshot("loaded", cur.copy(), s.landmarks, s.locked)]  # the undo stack of states
    redo: list[Snapshot] = []
    out = []
    for i in range(n_ops):
        kind = KINDS[int(rng.integers(len(KINDS)))]
        prev = model[-1]
        if kind == "undo":
            s.undo(cur)
            if len(model) > 1:
                redo.append(model.pop())
        elif kind == "redo":
            s.redo(cur)
            if redo:
                model.append(redo.pop())
        else:
            expect = None
            if kind == "paint":
                box = _paint(rng, cur, ids)
                painted = cur.copy()
                held = (np.isin(prev.labels, list(prev.locks)) | np.isin(painted, list(prev.locks)))
                painted[held] = prev.labels[held]  # a locked structure neither shrinks nor grows
                s.enforce_locks(cur, box)
                s.commit(cur, "paint", where=box)
                expect = Snapshot(kind, painted, prev.landmarks, prev.locks)
            elif kind == "lock":
                sid = int(rng.choice(ids))
                s.set_locks(prev.locks ^ {sid})
                expect = Snapshot(kind, prev.labels, prev.landmarks, prev.locks ^ {sid})
            elif kind == "landmark" and prev.landmarks is not None and len(prev.landmarks.coords):
                lm = prev.landmarks
                coords = lm.coords.copy()
                coords[int(rng.integers(len(coords)))] += rng.normal(0, 2, 3)
                moved = Landmarks(coords, lm.structure_ids, lm.names)
                s.commit(cur, "move landmark", landmarks=moved)
                expect = Snapshot(kind, prev.labels, moved, prev.locks)
            elif kind != "landmark":
                res = _op(kind, rng, cur, prev.locks, prev.landmarks, ids)
                if res is not None:
                    new, lm = res
                    changed = np.flatnonzero(new.ravel() != cur.ravel())
                    cur.ravel()[changed] = new.ravel()[changed]
                    s.commit(cur, kind, where=changed, landmarks=lm)
                    expect = Snapshot(kind, new, lm if lm is not None else prev.landmarks, prev.locks)
            if expect is not None and _differs(expect, prev):
                model.append(expect)
                redo.clear()
        snap = Snapshot(kind, model[-1].labels, model[-1].landmarks, model[-1].locks)
        out.append(snap)
        if after is not None:
            after(i, snap)
    return out
