"""A correction session never loses an edit: pending edits are refused until restored or
discarded, one session per case, a failed journal write never leads to a state nobody
had, and a stroke on a file-loaded (strided) case reads only its box."""

from __future__ import annotations

import ast
import errno
import os
import socket
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from napari_spine import make_phantom
from napari_spine.correction import (
    CaseInUseError,
    CorrectionSession,
    EditJournal,
    JournalError,
    PendingEditsError,
    ReadOnlySessionError,
)
from napari_spine.correction import journal as journal_mod
from napari_spine.correction.history import put_flat, take_flat
from napari_spine.errors import SpineIOError

SHAPE = (12, 40, 24)


def _case():
    return make_phantom(SHAPE, levels=("T12", "L3"), seed=5)


def _session(folder, labels, **kw):
    return CorrectionSession(labels, EditJournal(folder, "c", labels.shape, source=Path(folder) / "c.nii.gz"), **kw)


def _journal_bytes(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in Path(folder).rglob("*")
            if p.is_file() and p.suffix != ".lock"}


def _crashed_session(tmp_path):
    """A session with three steps (a lock among them) whose process died: the case with
    the state it had at the end."""
    case = _case()
    s = _session(tmp_path, case.labels, landmarks=case.landmarks)
    cur = case.labels.copy()
    cur[2:4, 5:9, 3:6] = 22
    s.commit(cur, "paint")
    s.set_locks({21})
    cur[cur == 22] = 0
    assert s.commit(cur, "erase") is not None
    s.close()  # kill -9: the OS drops the lock
    return case, cur, {21}


def test_every_recording_method_is_refused_while_earlier_edits_are_pending(tmp_path):
    case, last, locks = _crashed_session(tmp_path)
    again = _session(tmp_path, case.labels, landmarks=case.landmarks)
    assert again.pending and again.pending_summary().startswith("3 edits (last: erase, ")
    before = _journal_bytes(tmp_path)
    layer = case.labels.copy()
    layer[0, 0, 0] = 23  # a brush stroke in the window before the choice
    calls = [lambda: again.commit(layer, "paint"), lambda: again.commit(layer, "paint", where=(slice(0, 1),) * 3),
             lambda: again.set_locks({22}), lambda: again.undo(layer), lambda: again.redo(layer)]
    for call in calls:
        with pytest.raises(PendingEditsError, match=r"c\.nii\.gz: unsaved edits of an earlier session wait "
                                                    r"\(3 edits \(last: erase, .*\)\): restore or discard them first"):
            call()
    assert isinstance(PendingEditsError("x"), SpineIOError)
    # nothing changed: the journal byte for byte, the session's labels, history and locks
    assert _journal_bytes(tmp_path) == before
    assert np.array_equal(again.recorded, case.labels) and not again.history.can_undo and not again.locked
    assert layer[0, 0, 0] == 23  # the caller's array is the caller's: the panel puts the box back
    state = again.restore()  # the earlier session's last state, after all those refusals
    assert np.array_equal(state.labels, last) and state.locks == locks and not again.pending
    assert [st.op for st in again.history.undo_stack] == ["paint", "lock L2", "erase"]


def test_decline_is_the_only_path_that_deletes(tmp_path):
    case, _, _ = _crashed_session(tmp_path)
    again = _session(tmp_path, case.labels)
    for _ in range(3):  # refused edits leave the offer standing
        with pytest.raises(PendingEditsError):
            again.commit(np.where(case.labels == 20, 0, case.labels), "erase")
    again.close()
    third = _session(tmp_path, case.labels)
    assert third.pending  # still offered after a relaunch
    third.decline()
    assert not third.pending and third.commit(np.where(case.labels == 20, 0, case.labels), "erase") is not None
    third.close()
    assert [e.op for e in EditJournal(tmp_path, "c", SHAPE, source=tmp_path / "c.nii.gz").entries()] == ["erase"]


def _failing_savez(monkeypatch, fail_calls: set[int]):
    """np.savez_compressed in the journal fails (a full disk) on the given calls (1-based)."""
    real = journal_mod.np.savez_compressed
    n = {"calls": 0}

    def savez(*args, **kwargs):
        n["calls"] += 1
        if n["calls"] in fail_calls:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(journal_mod.np, "savez_compressed", savez)
    return n


def test_a_step_that_failed_to_journal_stops_the_journal_until_the_full_state_repairs_it(tmp_path, monkeypatch):
    case = _case()
    s = _session(tmp_path, case.labels)
    cur = case.labels.copy()
    states = [cur.copy()]
    _failing_savez(monkeypatch, {2})  # the second step cannot be written
    boxes = [(slice(1, 3), slice(4, 8), slice(2, 6)), (slice(6, 8), slice(20, 30), slice(5, 15)),
             (slice(9, 11), slice(30, 34), slice(10, 12))]
    for k, box in enumerate(boxes):
        cur[box] = 22 + k
        if k == 1:
            with pytest.raises(JournalError, match=r"No space left on device.*save the labels now"):
                s.commit(cur, f"step {k}", where=box)
            assert s.journal_gap == "No space left on device"
        else:
            s.commit(cur, f"step {k}", where=box)
        states.append(cur.copy())
    assert s.journal_gap is None  # the third step repaired the journal
    kinds = [(e.kind, e.op) for e in EditJournal(tmp_path, "c", SHAPE, source=tmp_path / "c.nii.gz").entries()]
    assert kinds == [("do", "step 0"), ("base", "journal repaired")]
    s.close()
    again = _session(tmp_path, case.labels)
    state = again.restore()
    # the state after the third step: a state the user had (not steps 1 and 3 without 2)
    assert np.array_equal(state.labels, states[-1]) and not again.dropped
    assert any(np.array_equal(state.labels, st) for st in states)


def test_a_failed_undo_and_undos_past_the_repair_restore_the_live_state(tmp_path, monkeypatch):
    """After a gap the journal starts again from a full state; undos and redos across that
    start are journalled as full states too: the restore always equals the live labels."""
    case = _case()
    s = _session(tmp_path, case.labels)
    cur = case.labels.copy()
    _failing_savez(monkeypatch, {3})
    for k in range(4):
        cur[k * 2, 5:9, 3:6] = 22 + k
        try:
            s.commit(cur, f"paint {k}", where=(slice(k * 2, k * 2 + 1), slice(5, 9), slice(3, 6)))
        except JournalError:
            pass
    moves = ["undo", "undo", "undo", "redo", "undo", "redo", "redo", "redo"]
    for move in moves:
        getattr(s, move)(cur)
        s.close()
        check = _session(tmp_path, case.labels)
        assert check.pending
        assert np.array_equal(check.restore().labels, cur), move
        check.close()
        s.journal.acquire()


def test_a_second_session_on_the_same_case_is_read_only_and_says_why(tmp_path):
    case = _case()
    first = _session(tmp_path, case.labels)
    cur = case.labels.copy()
    cur[1, 2, 3] = 22
    first.commit(cur, "paint")
    second = _session(tmp_path, case.labels)
    assert second.read_only is not None and not second.pending
    assert f"process {os.getpid()} on host {socket.gethostname()}, this program" in second.read_only
    before = _journal_bytes(tmp_path)
    for call in (lambda: second.commit(cur, "paint"), lambda: second.set_locks({21}), lambda: second.undo(cur),
                 lambda: second.restore()):
        with pytest.raises(ReadOnlySessionError, match=r"c\.nii\.gz: this case is open in another session "
                                                       r"\(process \d+ on host .+\); it is shown read-only"):
            call()
    assert isinstance(ReadOnlySessionError("x"), CaseInUseError) and _journal_bytes(tmp_path) == before
    # a bare journal of the same case cannot append either
    other = EditJournal(tmp_path, "c", SHAPE, source=tmp_path / "c.nii.gz")
    with pytest.raises(CaseInUseError, match=r"c\.nii\.gz: this case is open in another session"):
        other.record(first.history.undo_stack[-1])
    first.close()  # the first session ends: the next one may edit
    third = _session(tmp_path, case.labels)
    assert third.read_only is None and third.pending


_HOLDER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from napari_spine.correction import CorrectionSession, EditJournal
    folder, shape = sys.argv[1], tuple(int(x) for x in sys.argv[2].split(","))
    s = CorrectionSession(np.zeros(shape, np.uint8), EditJournal(folder, "c", shape, source=folder + "/c.nii.gz"))
    print("holding", flush=True)
    sys.stdin.readline()
""")


def test_another_process_holding_the_case_makes_this_one_read_only_until_it_exits(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path), ",".join(map(str, SHAPE))],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "holding"
        s = _session(tmp_path, np.zeros(SHAPE, np.uint8))
        assert s.read_only is not None and f"process {proc.pid} on host" in s.read_only
        assert "this program" not in s.read_only
        s.close()
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert _session(tmp_path, np.zeros(SHAPE, np.uint8)).read_only is None  # the lock went with it


def _layouts(base: np.ndarray) -> dict[str, np.ndarray]:
    """What the reader hands the layer for a file in RAS, LPS and PIR voxel order: the
    file's own (C-contiguous) array seen through the display orientation (a strided view)."""
    from napari_spine.geometry import from_display, orientation_to_display, to_display

    out = {"C": base}
    world = {"R": (0, 1), "L": (0, -1), "A": (1, 1), "P": (1, -1), "S": (2, 1), "I": (2, -1)}
    for codes in ("RAS", "LPS", "PIR"):
        aff = np.eye(4)
        aff[:3, :3] = 0
        for ax, c in enumerate(codes):
            row, sign = world[c]
            aff[row, ax] = sign
        ornt = orientation_to_display(aff)
        file_array = np.ascontiguousarray(from_display(base, ornt))
        out[codes] = to_display(file_array, ornt)
    return out


@pytest.mark.parametrize("layout", ["C", "RAS", "LPS", "PIR"])
def test_a_stroke_on_a_strided_case_reads_only_its_box(tmp_path, layout):
    rng = np.random.default_rng(3)
    base = rng.integers(0, 4, size=(128, 256, 192)).astype(np.uint8)
    view = _layouts(base.copy())[layout]
    assert np.array_equal(view, base) and (layout == "C") == view.flags.c_contiguous
    s = _session(tmp_path, view)
    box = (slice(30, 36), slice(10, 40), slice(20, 26))
    view[box] = 9
    tracemalloc.start()
    step = s.commit(view, "paint", where=box)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    expected = base.copy()
    expected[box] = 9
    changed = np.flatnonzero(expected.ravel() != base.ravel())
    assert np.array_equal(step.index, changed) and np.all(step.new == 9)
    assert np.array_equal(step.old, base.ravel()[changed])
    # a whole-volume copy would be base.nbytes (6.3 MB); the box, the step and the journal's
    # compressor (a fixed ~0.3 MB) stay under an eighth of it
    assert peak < base.nbytes // 8, peak
    # undo writes back into the strided view, in place
    s.undo(view)
    assert np.array_equal(view, base)


def test_take_and_put_flat_address_c_order_whatever_the_layout():
    base = np.arange(60, dtype=np.int32).reshape(3, 4, 5)
    for arr in (base.copy(), np.asfortranarray(base), base[::-1].copy()[::-1], base.transpose(2, 1, 0).T):
        assert np.array_equal(arr, base)
        idx = np.array([0, 7, 59, 33])
        assert np.array_equal(take_flat(arr, idx), idx)
        put_flat(arr, idx, -idx - 1)
        assert arr.ravel()[7] == -8 and arr.ravel()[59] == -60 and arr.ravel()[1] == 1


_PAINT_PATH = ["correction/session.py", "correction/history.py", "_napari/panels/_correction_track.py",
               "_napari/panels/_correction_ops.py", "_napari/panels/_correction_save.py"]


def test_no_ravel_on_the_paint_path_but_behind_a_contiguity_check():
    """``x.ravel()`` of a strided view copies the whole volume: on the paint path it appears
    only where the array is known C-contiguous (take_flat / put_flat, the session's own
    recorded copy, the counts)."""
    root = Path(__file__).resolve().parents[1] / "src" / "napari_spine"
    allowed = {"take_flat", "put_flat", "_count", "_recount"}
    bad = []
    for rel in _PAINT_PATH:
        tree = ast.parse((root / rel).read_text())
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn.name not in allowed:
                for node in ast.walk(fn):
                    if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "ravel":
                        bad.append(f"{rel}:{node.lineno} in {fn.name}")
    assert not bad, bad


def _close(a, b) -> bool:
    if set(a) != set(b):
        return False
    for sid in a:
        x, y = a[sid], b[sid]
        if (x.id, x.voxels, x.touches_edge, x.components) != (y.id, y.voxels, y.touches_edge, y.components):
            return False
        if not np.allclose(x.centroid, y.centroid) or not np.allclose(
                np.asarray(x.component_centroids).reshape(-1, 3), np.asarray(y.component_centroids).reshape(-1, 3)):
            return False
    return True


def test_the_incremental_check_equals_a_full_one_after_every_step():
    """Random strokes (some erase a level, one cuts a level in two, some reach the volume's
    faces), undos and redos on a strided (RAS) view: the index updated from the session's
    touched boxes equals a full measurement after every step, and so do the findings."""
    from napari_spine.correction import StructureIndex, structure_stats, validate_sequence

    case = make_phantom((16, 80, 40), levels=("T12", "L4"), seed=8)
    view = _layouts(case.labels.copy())["RAS"]
    s = CorrectionSession(view)
    index = StructureIndex(view)
    s.take_touched()
    rng = np.random.default_rng(4)
    for k in range(40):
        if k % 7 == 6:
            (s.undo if k % 2 else s.redo)(view)
        else:
            z, y, x = rng.integers(0, 16), rng.integers(0, 80), rng.integers(0, 40)
            box = (slice(z, z + 3), slice(y, y + 6), slice(x, x + 8))
            if k == 10:  # a background band through L2: two pieces of one level
                box = (slice(0, 16), slice(*np.flatnonzero((view == 21).any(axis=(0, 2)))[[0, 0]] + [3, 5]),
                       slice(0, 40))
            view[box] = 0 if k % 3 == 0 else rng.choice([20, 21, 22, 121])
            s.commit(view, "paint", where=box)
        touched = s.take_touched()
        assert touched is not None
        for ids, box in touched:
            index.update(view, ids, box)
        full = structure_stats(view)
        assert _close(index.stats, full), k
        assert validate_sequence(view, stats=index.stats) == validate_sequence(view)
    assert any(len(st.components) > 1 for st in index.stats.values())  # the cut was seen


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.uint16])
def test_locks_hold_for_every_label_type(dtype):
    lab = np.zeros((4, 6, 6), dtype)
    lab[1:3, 1:3, 1:3] = 22
    lab[1:3, 3:5, 1:3] = 300 if dtype != np.uint8 else 23
    s = CorrectionSession(lab)
    s.set_locks({22, int(lab.max())})
    cur = lab.copy()
    cur[:, :, 1:3] = 5  # paint over both locked structures and the background
    kept = s.enforce_locks(cur, (slice(0, 4), slice(0, 6), slice(0, 6)))
    assert kept == 16 and np.array_equal(cur == 22, lab == 22) and np.array_equal(cur == lab.max(), lab == lab.max())
    assert (cur == 5).sum() == 4 * 6 * 2 - 16
    cur[0, 0, 0] = 22  # painting a locked id is undone too
    assert s.enforce_locks(cur, (slice(0, 1),) * 3) == 1 and cur[0, 0, 0] == 0  # back to what it was


def _kinds(folder):
    return [(e.kind, e.op) for e in EditJournal(folder, "c", SHAPE, source=Path(folder) / "c.nii.gz").entries()]


def test_unsaved_counts_every_change_until_saved_and_restore_counts_what_came_back(tmp_path):
    case = _case()
    s = _session(tmp_path, case.labels)
    cur = case.labels.copy()
    assert s.unsaved == 0
    cur[1, 2, 3] = 22
    s.commit(cur, "paint")
    assert s.unsaved == 1
    s.undo(cur)
    assert s.unsaved == 2
    s.redo(cur)
    s.set_locks({21})
    assert s.unsaved == 4
    s.mark_saved()
    assert s.unsaved == 0 and not s.journal.has_pending()  # saved: no restore offered
    cur[2, 2, 3] = 23
    s.commit(cur, "paint 2")
    s.commit(np.where(cur == 20, 0, cur), "erase L1")
    s.undo(cur)
    live = s.unsaved
    s.close()
    again = _session(tmp_path, case.labels)
    again.restore()
    assert again.unsaved == live == 3  # the changes since the save, as the crashed session counted them
    assert again.pending_summary() == ""  # restored: nothing pending any more
    again.discard_unsaved()
    assert again.unsaved == 0 and not again.journal.has_pending()


def test_saving_or_discarding_never_touches_edits_that_are_not_this_sessions(tmp_path):
    case, last, _ = _crashed_session(tmp_path)
    pending = _session(tmp_path, case.labels)
    pending.mark_saved()  # saving while edits wait would hide them: the offer stands
    pending.discard_unsaved()  # and the leaving question's Discard is about this session only
    assert pending.journal.has_pending() and pending.pending
    assert pending.pending_summary().startswith("3 edits")
    reader = _session(tmp_path, case.labels)  # read-only beside the holder
    assert reader.read_only is not None
    reader.mark_saved()
    reader.discard_unsaved()
    assert pending.journal.has_pending() and not (pending.journal.dir / "CLOSED").exists()
    assert CorrectionSession(case.labels).pending_summary() == ""


def _three_steps(tmp_path):
    """A journalled session with three one-voxel steps p0, p1, p2: (case, session, labels)."""
    case = _case()
    s = _session(tmp_path, case.labels)
    cur = case.labels.copy()
    for k in range(3):
        cur[k, 0, 0] = 22
        s.commit(cur, f"p{k}", where=(slice(k, k + 1), slice(0, 1), slice(0, 1)))
    return case, s, cur


def test_the_journal_holds_moves_as_moves_and_repairs_only_when_it_must(tmp_path):
    case, s, cur = _three_steps(tmp_path)
    s.undo(cur)
    s.undo(cur)
    s.redo(cur)
    assert _kinds(tmp_path) == [("do", "p0"), ("do", "p1"), ("do", "p2"), ("undo", "p2"), ("undo", "p1"),
                                ("redo", "p1")]
    s.close()
    again = _session(tmp_path, case.labels)
    state = again.restore()
    again.redo(state.labels)  # the restored redo stack is the journal's too: a plain redo line
    assert _kinds(tmp_path)[-1] == ("redo", "p2") and np.array_equal(state.labels, cur_after(cur, 2))
    again.undo(state.labels)
    again.undo(state.labels)
    again.undo(state.labels)
    assert [k for k, _ in _kinds(tmp_path)[-3:]] == ["undo", "undo", "undo"]  # no full state needed
    assert again.undo(state.labels) is None


def cur_after(cur, k):
    out = cur.copy()
    out[k, 0, 0] = 22
    return out


def test_history_that_dropped_out_of_memory_is_undone_through_a_full_state(tmp_path):
    """A small memory budget drops the oldest steps from the undo stack; the journal still
    has them, so undos within the stack stay moves, and the restore equals the live labels."""
    case = _case()
    s = CorrectionSession(case.labels, EditJournal(tmp_path, "c", SHAPE, source=tmp_path / "c.nii.gz"),
                          max_history_bytes=200)
    cur = case.labels.copy()
    for k in range(6):
        cur[k, 1:4, 1:4] = 22 + k % 2
        s.commit(cur, f"p{k}", where=(slice(k, k + 1), slice(1, 4), slice(1, 4)))
    assert len(s.history.undo_stack) < 6
    while s.undo(cur) is not None:
        pass
    assert all(kind == "undo" for kind, _ in _kinds(tmp_path)[6:])
    s.close()
    again = _session(tmp_path, case.labels)
    assert np.array_equal(again.restore().labels, cur)


def test_landmarks_bound_later_become_the_baseline_only_before_any_step():
    case = _case()
    lm = case.landmarks
    s = CorrectionSession(case.labels)
    assert not s.attach_landmarks(None) and s.landmarks is None
    assert s.attach_landmarks(lm) and s.landmarks is lm and s.baseline_landmarks is lm
    assert not s.attach_landmarks(lm)  # bound already
    t = CorrectionSession(case.labels)
    cur = case.labels.copy()
    cur[0, 0, 0] = 22
    t.commit(cur, "paint")
    assert t.attach_landmarks(lm) and t.landmarks is lm and t.baseline_landmarks is None


def test_candidate_indices_and_whole_volume_commits_record_the_same_step(tmp_path):
    base = _case().labels
    view = _layouts(base.copy())["LPS"]
    cur = view.copy()
    cur[3, 10:14, 5:9] = 23
    changed = np.flatnonzero(cur.ravel() != base.ravel())
    for where in (None, np.arange(base.size), changed, (slice(3, 4), slice(10, 14), slice(5, 9))):
        s = CorrectionSession(view)
        view2 = _layouts(base.copy())["LPS"]
        view2[...] = cur
        step = s.commit(view2, "paint", where=where)
        assert np.array_equal(step.index, changed) and np.all(step.new == 23)
        assert np.array_equal(step.old, base.ravel()[changed])
        touched = s.take_touched()
        assert [ids.tolist() for ids, _ in touched] == [sorted({*base.ravel()[changed].tolist(), 23})]
        assert touched[0][1] == (slice(3, 4), slice(10, 14), slice(5, 9))  # the changed voxels' box


def test_locking_the_background_and_ids_beyond_the_label_type():
    lab = np.zeros((3, 4, 4), np.uint8)
    lab[1, 1:3, 1:3] = 22
    s = CorrectionSession(lab)
    s.set_locks({0, 256, 300})  # paint only over structures; ids a uint8 file cannot hold are harmless
    cur = lab.copy()
    cur[1] = 21
    assert s.enforce_locks(cur, (slice(1, 2), slice(0, 4), slice(0, 4))) == 12
    assert (cur == 21).sum() == 4 and (cur[1] == 0).sum() == 12
    assert s.enforce_locks(cur, (slice(0, 1), slice(0, 4), slice(0, 4))) == 0  # nothing changed there


def test_the_journal_folder_is_made_with_its_parents_and_a_file_in_the_way_is_named(tmp_path):
    case = _case()
    deep = tmp_path / "a" / "b" / "journal"
    s = CorrectionSession(case.labels, EditJournal(deep, "c", SHAPE, source=tmp_path / "c.nii.gz"))
    assert s.read_only is None and s.journal.holds_lock and s.journal.lock_path.parent == deep
    s.close()
    again = CorrectionSession(case.labels, EditJournal(deep, "c", SHAPE, source=tmp_path / "c.nii.gz"))
    assert again.journal.holds_lock  # the folder exists now: taken again
    (tmp_path / "file").write_text("x")
    with pytest.raises(JournalError, match=r"file/sub: cannot keep the edit journal here \(Not a directory\)"):
        EditJournal(tmp_path / "file" / "sub", "c", SHAPE, source=tmp_path / "c.nii.gz").acquire()


def test_every_undo_and_redo_of_known_steps_is_a_line_of_its_own(tmp_path):
    case = _case()
    s = _session(tmp_path, case.labels)
    cur = case.labels.copy()
    cur[0, 0, 0] = 22
    s.commit(cur, "only")
    for move in ("undo", "redo", "undo", "redo", "undo"):
        getattr(s, move)(cur)
    assert _kinds(tmp_path) == [("do", "only"), ("undo", "only"), ("redo", "only"), ("undo", "only"),
                                ("redo", "only"), ("undo", "only")]


def test_unsaved_after_a_restore_of_a_journal_never_saved_or_saved_by_an_older_version(tmp_path):
    case, s, cur = _three_steps(tmp_path)
    s.close()
    assert s.journal.saved_seq() == 0
    again = _session(tmp_path, case.labels)
    again.restore()
    assert again.unsaved == 3  # never saved: every line
    again.close()
    (again.journal.dir / "SAVED").write_text("1733600000.5")  # an older version's marker: a time only
    third = _session(tmp_path, case.labels)
    assert third.journal.saved_seq() == 0
    third.restore()
    assert third.unsaved == 3


def test_a_file_where_the_case_journal_should_be_is_named_with_the_systems_reason(tmp_path):
    case = _case()
    j = EditJournal(tmp_path, "c", SHAPE, source=tmp_path / "c.nii.gz")
    j.dir.write_text("a file in the way")
    s = CorrectionSession(case.labels, j)
    cur = case.labels.copy()
    cur[0, 0, 0] = 22
    with pytest.raises(JournalError, match=r"cannot keep the edit journal here \((File exists|Not a directory)\)"):
        s.commit(cur, "paint")
