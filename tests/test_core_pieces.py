"""Pieces the panels used to compute themselves, now in the core: each checked against a
hand-made case where the plausible mistake gives a different answer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_spine.correction import (
    CorrectionSession,
    EditJournal,
    plane_from_points,
    split_by_plane,
)
from napari_spine.qa.metrics import LevelRow
from napari_spine.qa.overlay import disagreement_map
from napari_spine.qa.review import ReviewConflict, ReviewDB
from napari_spine.qa.triage import triage_score


def _row(sid, dice, identified):
    return LevelRow(sid, f"s{sid}", dice, math.nan, math.nan, 1.0, 1.0, 0.0, 0.5, identified, 10, 10, 9)


def test_triage_adds_worst_dice_missed_identification_and_errors():
    rows = [_row(20, 0.9, True), _row(21, 0.6, False), _row(22, 0.95, None)]
    # worst Dice 0.6 -> 0.4; identification 1 of 2 -> 0.5; two errors -> 1.0
    assert triage_score(rows, 2) == pytest.approx(0.4 + 0.5 + 1.0)
    assert triage_score([_row(20, 0.9, None)], 0) == pytest.approx(0.1)  # no vertebra to identify


def test_disagreement_separates_missed_extra_and_mislabelled():
    ref = np.array([[0, 20, 20, 21, 0]])
    cand = np.array([[20, 20, 0, 22, 0]])
    assert disagreement_map(ref, cand).tolist() == [[2, 0, 1, 3, 0]]
    with pytest.raises(ValueError, match="shape"):
        disagreement_map(ref, cand[:, :4])


def test_a_candidate_one_level_off_is_a_level_shift_not_extra_or_missed():
    from napari_spine.qa.overlay import level_shift, unshift

    ref = np.zeros((4, 60, 4), np.uint8)
    for k, (v, top) in enumerate(((20, 2), (21, 22), (22, 42))):  # L1 L2 L3, discs between
        ref[:, top:top + 14] = v
        if k < 2:
            ref[:, top + 14:top + 20] = v + 100
    cand = np.where(ref > 0, ref + 1, 0).astype(np.uint8)  # every level numbered one lower
    dis = disagreement_map(ref, cand)
    assert (dis[ref > 0] == 3).all() and not np.isin(dis, [1, 2]).any()
    shift = level_shift(ref, cand)
    assert shift is not None and shift.offset == +1 and shift.fraction == 1.0
    assert shift.examples[0] == ("L1", "L2") and "shifted by +1 level" in shift.message
    assert np.array_equal(unshift(cand, shift), ref)
    up = np.where(ref > 0, ref - 1, 0).astype(np.uint8)  # and the other way
    assert level_shift(ref, up).offset == -1
    wrong = ref.copy()
    wrong[:, 2:16] = 22  # one level swapped, not a constant shift
    wrong[:, 42:56] = 20
    assert level_shift(ref, wrong) is None
    assert level_shift(ref, ref) is None


def test_level_row_from_json_with_null():
    r = _row(22, 0.8, None)
    d = {**r.as_dict(), "hd95_mm": None, "centroid_dist_mm": None}
    back = LevelRow.from_dict(d)
    assert math.isnan(back.hd95_mm) and math.isnan(back.centroid_dist_mm) and back.identified is None
    assert back.dice == 0.8 and back.structure_id == 22
    assert LevelRow.from_dict({**r.as_dict(), "identified": False}).identified is False


def test_decide_claims_updates_and_releases(tmp_path):
    db = ReviewDB(tmp_path / "r.sqlite")
    db.add_cases([("ds/a", "ds", "a", 1.0, None), ("ds/b", "ds", "b", 0.5, None)])
    done = db.decide("ds/a", "ana", "approved", "fine")
    assert (done.status, done.claimed_by, done.reviewer, done.comment) == ("approved", None, "ana", "fine")
    kept = db.decide("ds/b", "ben", "in review")
    assert kept.claimed_by == "ben"  # still in review: the claim stays
    with pytest.raises(ReviewConflict, match="ben"):
        db.decide("ds/b", "ana", "approved")
    assert db.get("ds/b").status == "in review"


def test_snapshot_round_trip(tmp_path):
    db = ReviewDB(tmp_path / "r.sqlite")
    db.add_cases([("ds/a", "ds", "a", 1.0, None)])
    assert db.latest_snapshot("ds/a") == ([], None)
    png = bytes(range(256)) * 3
    rows = [_row(20, 0.9, True), _row(21, 0.5, False)]
    db.save_snapshot("ds/a", rows, png, "ana")
    got, pic = db.latest_snapshot("ds/a")
    assert pic == png and [r.structure_id for r in got] == [20, 21] and got[1].identified is False
    assert math.isnan(got[0].hd95_mm)


def test_locks_undo_paint_and_survive_revert():
    base = np.zeros((1, 4, 4), np.uint8)
    base[0, :2] = 20
    base[0, 2:] = 21
    s = CorrectionSession(base)
    s.set_locks({21})
    cur = base.copy()
    cur[0, 0, 0] = 22  # paint over an unlocked structure: kept
    cur[0, 3, :2] = 22  # paint over the locked one: undone
    assert s.enforce_locks(cur) == 2
    assert cur[0, 0, 0] == 22 and (cur[0, 3] == 21).all()
    grown = cur.copy()
    grown[0, 2, :] = 20  # 20 grew into 21's place
    grown[0, 1, 3] = 21  # and 21 took a voxel of 20 (both edits made before 21 was locked)
    out = s.revert(grown, 20)  # 20 back to its loaded extent ...
    assert out[0, 0, 0] == 20
    # ... except where the locked 21 is now, and where the revert would give voxels to 21:
    # a locked structure neither shrinks nor grows
    assert out[0, 1, 3] == 21 and (out[0, 2] == 20).all()
    s.set_locks(())
    assert s.enforce_locks(grown.copy()) == 0


def test_split_plane_from_two_points_and_lock():
    lab = np.zeros((1, 10, 4), np.uint8)
    lab[0, 2:8] = 20
    point, normal = plane_from_points([(0, 5, 0), (0, 5, 3)])  # a horizontal line at row 5
    assert normal.tolist() == [0.0, 3.0, 0.0]  # pointing inferior (towards larger rows)
    out = split_by_plane(lab, 20, point, normal, 21)
    assert (out[0, 6:8] == 21).all() and (out[0, 2:6] == 20).all()
    with pytest.raises(ValueError, match="locked"):
        split_by_plane(lab, 20, point, normal, 21, locked=[20])
    with pytest.raises(ValueError, match="coincide"):
        plane_from_points([(0, 5, 1), (3, 5, 1)])


def test_journal_found_under_another_case_name(tmp_path):
    src = tmp_path / "labels.nii.gz"
    src.write_bytes(b"x")
    lab = np.zeros((2, 3, 4), np.uint8)
    old = EditJournal(tmp_path / "j", "ds-case", lab.shape, source=src)
    s = CorrectionSession(lab, old)
    new = lab.copy()
    new[0, 0, 0] = 20
    s.commit(new, "paint")
    again = EditJournal(tmp_path / "j", "ds/case", lab.shape, source=src)
    assert again.dir == old.dir and again.has_pending()
    other = EditJournal(tmp_path / "j", "ds/case", lab.shape, source=tmp_path / "other.nii.gz")
    assert other.dir != old.dir and not other.has_pending()


@pytest.mark.parametrize("size", [1, 7, 8, 4095, 4096, 4097, 3 * 4096 * 8 + 5, 1 << 22 | 13])
def test_flat_foreground_equals_flatnonzero(size):
    from napari_spine.anatomy.labelmaps import flat_foreground

    rng = np.random.default_rng(size)
    flat = np.zeros(size, np.uint8)
    picks = rng.integers(0, size, max(1, size // 997))
    flat[picks] = rng.integers(1, 255, picks.size)
    flat[-1] = 3  # the very last voxel (the tail after the 8-voxel words and blocks)
    flat[0] = 0 if size > 1 else 5
    assert np.array_equal(flat_foreground(flat), np.flatnonzero(flat))


@pytest.mark.parametrize("slabs", [1, 3])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("size", [0, 1, 4095, 4096 * 8 + 5, 3 * 4096 * 8 + 5, 1 << 18 | 13])
def test_label_counts_equal_unique_in_any_layout(size, dtype, slabs, monkeypatch):
    from napari_spine import _threads
    from napari_spine.anatomy import labelmaps

    if slabs > 1:
        monkeypatch.setattr(_threads, "cores", lambda: slabs)
        monkeypatch.setattr(labelmaps, "_SLAB", 1000)
    rng = np.random.default_rng(size)
    flat = np.zeros(size, dtype)
    if size:
        picks = rng.integers(0, size, max(1, size // 499))
        flat[picks] = rng.integers(1, 255 if dtype == np.uint8 else 65535, picks.size)
        flat[-1] = 3  # in the tail after the last whole block
        flat[size // 2: size // 2 + 40] = 250  # a run across 8-byte words
    ids, n = np.unique(flat, return_counts=True)
    want = {int(i): int(c) for i, c in zip(ids, n) if i}
    assert labelmaps.label_counts(flat) == want
    assert labelmaps.label_counts(flat[::-1]) == want
    if size == 1 << 18 | 13:
        vol = flat[:-13].reshape(64, 64, 64)
        ids, n = np.unique(vol, return_counts=True)
        want = {int(i): int(c) for i, c in zip(ids, n) if i}
        assert labelmaps.label_counts(vol.transpose(2, 0, 1)[:, ::-1]) == want
        assert labelmaps.label_counts(vol[::2]) == {int(i): int(c) for i, c in
                                                   zip(*np.unique(vol[::2], return_counts=True)) if i}


def test_map_slabs_keeps_order_waits_for_all_and_nests_without_deadlock(monkeypatch):
    import threading
    import time

    from napari_spine import _threads

    monkeypatch.setattr(_threads, "cores", lambda: 3)
    assert _threads.map_slabs(lambda x: x * x, range(7)) == [0, 1, 4, 9, 16, 25, 36]
    names = _threads.map_slabs(lambda _: threading.current_thread().name, range(4))
    assert all(n.startswith("napari-spine-slab") for n in names)
    # a task that maps again runs its inner items inline instead of waiting on the pool
    nested = _threads.map_slabs(lambda x: _threads.map_slabs(lambda y: x + y, range(3)), range(5))
    assert nested == [[x, x + 1, x + 2] for x in range(5)]
    finished = []

    def task(x):
        if x == 1:
            raise ValueError("slab 1")
        time.sleep(0.05 if x == 3 else 0)  # the slow one must still have ended before the raise
        finished.append(x)
        return x

    with pytest.raises(ValueError, match="slab 1"):
        _threads.map_slabs(task, range(4))
    assert sorted(finished) == [0, 2, 3]


def test_thread_count_follows_affinity_and_its_cap(monkeypatch):
    import os

    from napari_spine import _threads

    n = len(os.sched_getaffinity(0))
    monkeypatch.delenv("NAPARI_SPINE_THREADS", raising=False)
    assert _threads.cores() == n
    monkeypatch.setenv("NAPARI_SPINE_THREADS", "1")
    assert _threads.cores() == 1
    monkeypatch.setenv("NAPARI_SPINE_THREADS", "999")
    assert _threads.cores() == n
    monkeypatch.setenv("NAPARI_SPINE_THREADS", "lots")
    assert _threads.cores() == n
