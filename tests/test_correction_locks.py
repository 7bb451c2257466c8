"""Every operation honours locks: a locked structure neither shrinks nor grows. Each case
is also run without the lock, to show the operation would have changed it."""

from __future__ import annotations

import numpy as np
import pytest

from napari_spine.correction import (
    CorrectionSession,
    fill_holes,
    interpolate_between_slices,
    keep_largest,
    merge,
    relabel,
    remove_islands,
    shift_levels,
    split_by_plane,
    swap_levels,
)

L2, L3, L4 = 21, 22, 23


def _labels() -> np.ndarray:
    lab = np.zeros((9, 40, 12), np.uint8)
    lab[2:7, 4:12, 3:9] = L2
    lab[1:8, 14:22, 3:9] = L3
    lab[2:7, 24:32, 3:9] = L4
    lab[2, 18, 6] = 0  # a hole inside L3
    lab[0, 38, 0] = L3  # a one-voxel island of L3
    lab[4, 14:22, 3:9] = 0  # L3 missing on slice 4 (to interpolate between slices 3 and 5)
    return lab


OPS = {
    "shift from L3": lambda lab, lk: shift_levels(lab, +1, "L3", locked=lk),
    "relabel A": lambda lab, lk: relabel(lab, L3, L4 + 1, locked=lk),
    "relabel onto B": lambda lab, lk: relabel(lab, L4, L3, locked=lk),
    "swap": lambda lab, lk: swap_levels(lab, L3, L4, locked=lk),
    "merge into": lambda lab, lk: merge(lab, L2, L3, locked=lk),
    "split": lambda lab, lk: split_by_plane(lab, L3, (0, 18, 0), (0, 1, 0), L4 + 1, locked=lk),
    "keep largest": lambda lab, lk: keep_largest(lab, locked=lk),
    "remove islands": lambda lab, lk: remove_islands(lab, 5.0, locked=lk),
    "fill holes": lambda lab, lk: fill_holes(lab, locked=lk),
    "interpolate": lambda lab, lk: interpolate_between_slices(lab, L3, 3, 5, axis=0, locked=lk),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_a_locked_structure_never_changes(name):
    lab = _labels()
    unlocked = OPS[name](lab, ())
    assert not np.array_equal(unlocked == L3, lab == L3), f"{name} does not touch L3: the case proves nothing"
    try:
        out = OPS[name](lab, [L3])
    except ValueError as exc:
        assert "L3" in str(exc) and "locked" in str(exc)
        return
    assert np.array_equal(out == L3, lab == L3), f"{name} changed the locked L3"
    assert not np.array_equal(out, lab) or name in ("fill holes", "keep largest", "remove islands", "interpolate")


def test_the_session_keeps_locked_structures_through_revert_and_paint():
    lab = _labels()
    s = CorrectionSession(lab)
    edited = lab.copy()
    edited[2:7, 12:14, 3:9] = L3  # L3 grew into the gap above it
    s.commit(edited, "paint")
    s.set_locks({L3})
    reverted = s.revert(edited, L3)  # revert would shrink the locked L3 again
    assert np.array_equal(reverted == L3, edited == L3)
    cur = edited.copy()
    cur[3, 16:19, 4:6] = L4  # paint over the locked L3 ...
    cur[3, 0:2, 0:2] = L3  # ... and paint with the locked id
    assert s.enforce_locks(cur, (slice(None), slice(0, 20), slice(None))) == 6 + 4
    assert np.array_equal(cur, edited)
    s.set_locks(())
    assert not np.array_equal(s.revert(edited, L3) == L3, edited == L3)
