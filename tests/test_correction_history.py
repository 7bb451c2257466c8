"""One history for labels, landmarks and locks: a scripted session against a model of
full states, the journal replayed at every step, and a process killed after a chosen
journal write."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from napari_spine import make_phantom
from napari_spine.correction import CorrectionSession, EditJournal, shift_levels
from napari_spine.correction.history import same_landmarks
from napari_spine.testing.sessions import run_session

SHAPE = (10, 96, 48)


def _case():
    return make_phantom(SHAPE, levels=("T12", "L4"), include_canal=True, seed=7)


def _session(tmp_path, labels):
    """A session on ``labels`` journalled in ``tmp_path`` for the file ``c.nii.gz`` there
    (a second call is the same case opened again)."""
    return CorrectionSession(labels, EditJournal(tmp_path, "c", labels.shape, source=tmp_path / "c.nii.gz"))


def _one_edit(tmp_path):
    """The phantom, a journalled session with one paint step, and the painted labels."""
    case = _case()
    s = _session(tmp_path, case.labels)
    cur = case.labels.copy()
    cur[1, 2, 3] = 22
    s.commit(cur, "first")
    return case, s, cur


def _reopened(tmp_path, case):
    return EditJournal(tmp_path, "c", case.labels.shape, source=tmp_path / "c.nii.gz")


def _same(state_labels, lm, locks, snap):
    return (np.array_equal(state_labels, snap.labels) and same_landmarks(lm, snap.landmarks)
            and set(locks) == set(snap.locks))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_fifty_random_operations_history_and_journal_agree(tmp_path, seed):
    case = _case()
    journal = EditJournal(tmp_path, "c", case.labels.shape, source=tmp_path / f"c{seed}.nii.gz")
    s = CorrectionSession(case.labels, journal, landmarks=case.landmarks)
    cur = case.labels.copy()
    kinds = []

    def check(i, snap):
        kinds.append(snap.kind)
        # the live state is the model's state ...
        assert _same(cur, s.landmarks, s.locked, snap), f"operation {i} ({snap.kind}): live state differs"
        # ... and so is the journal replayed on the loaded case
        done = EditJournal(tmp_path, "c", case.labels.shape, source=tmp_path / f"c{seed}.nii.gz").replay_state(
            case.labels, case.landmarks)
        assert not done.dropped
        assert _same(done.state.labels, done.state.landmarks, done.state.locks, snap), \
            f"operation {i} ({snap.kind}): the journal replays to another state"

    run_session(s, cur, seed, n_ops=50, after=check)
    assert {"undo", "redo", "shift", "paint"} <= set(kinds)


def test_undo_of_a_shift_brings_the_landmarks_back():
    case = _case()
    s = CorrectionSession(case.labels, landmarks=case.landmarks)
    cur = case.labels.copy()
    new, lm = shift_levels(cur, +1, landmarks=case.landmarks)
    cur[...] = new
    step = s.commit(cur, "shift +1", landmarks=lm)
    assert step.landmarks_after is not None and list(s.landmarks.structure_ids[:1]) == [20]
    assert s.undo(cur) is step
    assert np.array_equal(cur, case.labels) and same_landmarks(s.landmarks, case.landmarks)
    assert s.redo(cur) is step and np.array_equal(cur, new) and same_landmarks(s.landmarks, lm)
    locked = s.set_locks({21})
    assert s.locked == {21} and s.undo(cur) is locked and s.locked == frozenset()
    assert np.array_equal(cur, new)  # a lock change touches no voxel


def test_counts_follow_the_steps_without_a_pass_over_the_volume():
    case = _case()
    s = CorrectionSession(case.labels)
    cur = case.labels.copy()
    run_session(s, cur, seed=11, n_ops=40)
    expected = np.bincount(cur.ravel(), minlength=len(s.counts))
    expected[0] = 0
    assert np.array_equal(s.counts[: len(expected)], expected[: len(s.counts)])
    assert s.present() == [int(i) for i in np.unique(cur) if i]


def test_a_restore_replays_undos_and_can_be_undone(tmp_path):
    case = _case()
    src = tmp_path / "c.nii.gz"
    s = CorrectionSession(case.labels, EditJournal(tmp_path, "c", SHAPE, source=src), landmarks=case.landmarks)
    cur = case.labels.copy()
    snaps = run_session(s, cur, seed=5, n_ops=30)
    s.close()  # the program dies here (its case lock goes with it); a new session on the same case
    again = CorrectionSession(case.labels, EditJournal(tmp_path, "c", SHAPE, source=src), landmarks=case.landmarks)
    assert again.pending
    state = again.restore()
    assert _same(state.labels, state.landmarks, state.locks, snaps[-1])
    assert again.history.undo_stack and [x.op for x in again.history.undo_stack] == \
        [x.op for x in s.history.undo_stack]
    live = state.labels
    while again.undo(live) is not None:
        pass
    assert np.array_equal(live, case.labels) and same_landmarks(again.landmarks, case.landmarks)


def test_a_torn_last_line_is_dropped_with_a_message(tmp_path):
    case = _case()
    src = tmp_path / "c.nii.gz"
    s = CorrectionSession(case.labels, EditJournal(tmp_path, "c", SHAPE, source=src))
    cur = case.labels.copy()
    cur[0, :3, :3] = 22
    s.commit(cur, "paint")
    with open(s.journal.dir / "journal.jsonl", "a") as f:
        f.write('{"seq": 2, "kind": "undo", "op": "pa')  # the crash tore the undo's line
    s.close()
    again = CorrectionSession(case.labels, EditJournal(tmp_path, "c", SHAPE, source=src))
    state = again.restore()
    assert np.array_equal(state.labels, cur)  # the undo never completed
    assert len(again.dropped) == 1 and "line 2" in again.dropped[0] and "cut off by a crash" in again.dropped[0]


_CHILD = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from napari_spine import make_phantom
    from napari_spine.correction import CorrectionSession, EditJournal
    from napari_spine.testing.sessions import run_session

    folder, seed, target, torn = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
    case = make_phantom({shape}, levels=("T12", "L4"), include_canal=True, seed=7)
    journal = EditJournal(folder, "c", case.labels.shape, source=folder + "/c.nii.gz")
    events = []

    def fault(stage):
        events.append(stage)
        if target >= 0 and len(events) == target:
            if torn:  # the process dies in the middle of writing the next line
                with open(journal.dir / "journal.jsonl", "a") as f:
                    f.write('{{"seq": 99, "kind": "do", "op": "pai')
            os.kill(os.getpid(), signal.SIGKILL)

    journal.fault = fault
    s = CorrectionSession(case.labels, journal, landmarks=case.landmarks)
    cur = case.labels.copy()
    run_session(s, cur, seed, n_ops=50)
""").format(shape=SHAPE)


def test_killed_right_after_a_journal_write_restores_the_last_completed_operation(tmp_path):
    """20 seeds: the process is killed (SIGKILL) right after a randomly chosen journal write,
    sometimes in the middle of the next line; the restore equals the state after the last
    operation whose line was complete."""
    case = _case()
    plans = []
    for seed in range(20):
        # the same seeded script in this process: the journal writes it makes, and the
        # model's state after each operation
        journal = EditJournal(tmp_path / f"dry{seed}", "c", SHAPE, source=tmp_path / "dry.nii.gz")
        events = []
        journal.fault = events.append
        marks = []
        s = CorrectionSession(case.labels, journal, landmarks=case.landmarks)
        snaps = run_session(s, case.labels.copy(), seed, n_ops=50, after=lambda i, snap: marks.append(len(events)))
        rng = np.random.default_rng(1000 + seed)
        target, torn = int(rng.integers(1, marks[-1] + 1)), bool(rng.integers(2))
        folder = tmp_path / f"kill{seed}"
        cmd = [sys.executable, "-c", _CHILD, str(folder), str(seed), str(target), "1" if torn else "0"]
        plans.append((seed, marks, snaps, target, torn, folder,
                      subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    for seed, marks, snaps, target, torn, folder, proc in plans:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == -signal.SIGKILL, err
        # an operation is complete when all its journal lines are on disk ("logged")
        done_ops = [i for i, m in enumerate(marks) if m <= target]
        j = EditJournal(folder, "c", SHAPE, source=folder / "c.nii.gz")
        events_at_target_end = target in marks  # the kill came right after an operation's last write
        expect = snaps[done_ops[-1]] if done_ops else None
        again = CorrectionSession(case.labels, j, landmarks=case.landmarks)
        state = again.restore() if again.pending else None
        got = state if state is not None else None
        if expect is None:
            assert got is None or np.array_equal(got.labels, case.labels)
            continue
        assert got is not None, f"seed {seed}: nothing to restore after {target} journal writes"
        assert _same(got.labels, got.landmarks, got.locks, expect), \
            f"seed {seed}: killed after write {target} ({'torn' if torn else 'clean'}, " \
            f"end of an operation: {events_at_target_end}): restored state differs"
        if torn:
            assert any("cut off by a crash" in d for d in again.dropped)


def test_the_undo_stack_keeps_a_memory_budget_and_at_least_one_step():
    from napari_spine.correction.history import History, Step

    def step(n):  # n voxels: 8 + 1 + 1 bytes each
        return Step(f"s{n}", np.arange(n, dtype=np.int64), np.zeros(n, np.uint8), np.ones(n, np.uint8))

    h = History(max_bytes=100)
    h.push(step(5))  # 50 bytes
    h.push(step(5))  # 100 bytes: exactly the budget, both kept
    assert [s.voxels for s in h.undo_stack] == [5, 5] and step(5).nbytes == 50
    h.push(step(3))  # 130 bytes: the oldest goes
    assert [s.op for s in h.undo_stack] == ["s5", "s3"]
    h.push(step(20))  # larger than the budget alone: kept, as the only step
    assert [s.op for s in h.undo_stack] == ["s20"]


def test_a_step_says_what_it_changed():
    from napari_spine.correction.history import Step

    empty = np.empty(0, np.uint8)
    lm = _case().landmarks
    assert Step("paint", np.array([1, 2]), np.zeros(2, np.uint8), np.ones(2, np.uint8)).describe() == \
        "paint (2 voxels)"
    assert Step("locks", np.empty(0, np.int64), empty, empty, None, None, frozenset(), frozenset({22})).describe() \
        == "locks (locks)"
    assert Step("move", np.empty(0, np.int64), empty, empty, lm, lm).describe() == "move (landmarks)"
    assert Step("none", np.empty(0, np.int64), empty, empty).describe() == "none (no change)"


def test_restore_without_pending_edits_gives_a_copy_of_the_state(tmp_path):
    case = _case()
    for journal in (None, EditJournal(tmp_path, "c", SHAPE, source=tmp_path / "none.nii.gz")):
        s = CorrectionSession(case.labels, journal, landmarks=case.landmarks)
        state = s.restore()  # nothing pending: the loaded case, as a copy
        assert np.array_equal(state.labels, case.labels) and same_landmarks(state.landmarks, case.landmarks)
        state.labels[...] = 0
        assert np.array_equal(s.recorded, case.labels)  # the session's own labels are untouched


def test_a_journal_of_another_grid_is_refused_naming_its_source(tmp_path):
    from napari_spine.correction import JournalError

    case = _case()
    src = tmp_path / "case.nii.gz"
    s = CorrectionSession(case.labels, EditJournal(tmp_path, "c", SHAPE, source=src))
    cur = case.labels.copy()
    cur[0, :2, :2] = 22
    s.commit(cur, "paint")
    other = EditJournal(tmp_path, "c", (SHAPE[0], SHAPE[1], SHAPE[2] + 1), source=src)
    with pytest.raises(JournalError, match=r"case\.nii\.gz.*labels are"):
        other.replay_state(np.zeros((SHAPE[0], SHAPE[1], SHAPE[2] + 1), np.uint8))


def test_same_landmarks_with_none_on_either_side():
    lm = make_phantom((10, 64, 32), levels=("L1", "L2"), seed=1).landmarks
    assert same_landmarks(None, None)
    assert not same_landmarks(None, lm) and not same_landmarks(lm, None)
    moved = type(lm)(lm.coords + 1, lm.structure_ids, lm.names)
    assert same_landmarks(lm, lm) and not same_landmarks(lm, moved)


def test_a_step_cannot_be_changed_once_recorded():
    import dataclasses

    from napari_spine.correction.history import Step

    step = Step("paint", np.array([0]), np.array([0], np.uint8), np.array([3], np.uint8))
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.op = "erase"


def test_counts_follow_a_label_id_above_255():
    """Ids past the first 256 (another tool's label values) are counted from the steps too."""
    labels = _case().labels.astype(np.uint16)
    s = CorrectionSession(labels)
    cur = labels.copy()
    cur[0, :3, :4] = 300
    cur[1, :2, :2] = 257
    s.commit(cur, "paint")
    assert s.counts[300] == 12 and s.counts[257] == 4
    assert 300 in s.present() and 257 in s.present()
    want = np.bincount(cur.ravel().astype(np.int64))
    want[0] = 0
    assert np.array_equal(s.counts[: len(want)], want) and not s.counts[len(want):].any()
    s.undo(cur)
    assert 300 not in s.present() and np.array_equal(cur, labels)


def test_restore_without_a_journal_or_with_nothing_pending_is_the_session_as_it_is(tmp_path):
    case = _case()
    plain = CorrectionSession(case.labels)
    cur = case.labels.copy()
    cur[0, 0, 0] = 21
    plain.commit(cur, "paint")
    st = plain.restore()
    assert np.array_equal(st.labels, cur) and not plain.pending
    journal = EditJournal(tmp_path, "c", case.labels.shape, source=tmp_path / "c.nii.gz")
    s = CorrectionSession(case.labels, journal)
    assert not s.pending
    assert np.array_equal(s.restore().labels, case.labels)


def test_after_a_restore_the_state_is_the_callers_and_nothing_is_pending(tmp_path):
    case = _case()
    first = _session(tmp_path, case.labels)
    cur = case.labels.copy()
    cur[2, 10:12, 10:12] = 22
    first.commit(cur, "paint")
    first.close()  # the first program ended without saving
    again = _session(tmp_path, case.labels)
    assert again.pending
    st = again.restore()
    assert not again.pending and np.array_equal(st.labels, cur)
    st.labels[3, 0, 0] = 23  # the layer paints into the restored array
    assert again.commit(st.labels, "paint") is not None  # the session saw it change


def test_decline_with_nothing_pending_keeps_this_sessions_journal(tmp_path):
    case, s, _ = _one_edit(tmp_path)
    s.decline()  # nothing was pending: this session's own edits stay journalled
    assert not s.pending
    s.close()
    later = _session(tmp_path, case.labels)
    assert later.pending
    later.decline()
    assert not later.pending
    later.close()
    assert not _session(tmp_path, case.labels).pending


def test_a_lock_step_names_what_changed_and_carries_no_voxels():
    case = _case()
    s = CorrectionSession(case.labels)
    before = s.counts.copy()
    lock = s.set_locks({21, 22})
    assert lock.op == "lock L2, lock L3"
    assert lock.index.size == lock.old.size == lock.new.size == 0
    assert np.array_equal(s.counts, before)
    unlock = s.set_locks({22})
    assert unlock.op == "unlock L2" and s.locked == {22}
    assert s.set_locks({22}) is None


def test_keep_locked_leaves_its_inputs_alone():
    case = _case()
    s = CorrectionSession(case.labels)
    s.set_locks({21})
    before = case.labels.copy()
    after = before.copy()
    after[before == 21] = 0
    after[before == 22] = 21
    after_copy = after.copy()
    kept = s.keep_locked(before, after)
    assert np.array_equal(after, after_copy)  # the caller's array is not changed
    assert np.array_equal(kept, before)  # every change touched L2 (21): all undone


def test_journal_entries_are_frozen_once_read(tmp_path):
    import dataclasses

    case = _case()
    s = CorrectionSession(case.labels, EditJournal(tmp_path, "c", case.labels.shape, source=tmp_path / "c.nii.gz"))
    cur = case.labels.copy()
    cur[0, 0, 0] = 21
    s.commit(cur, "paint")
    entry = s.journal.entries()[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.seq = 5


def test_the_journal_folder_is_the_case_name_and_a_hash_of_the_source_path(tmp_path):
    """The on-disk layout (module docs): ``<case id>-<first 12 hex of sha256(full path)>``, so
    a journal written by an earlier version is found again."""
    import hashlib

    src = (tmp_path / "sub-01" / "ct.nii.gz")
    j = EditJournal(tmp_path / "journals", "ct", SHAPE, source=src)
    want = hashlib.sha256(str(src.resolve()).encode()).hexdigest()[:12]
    assert j.dir == tmp_path / "journals" / f"ct-{want}"
    assert EditJournal(tmp_path / "journals", "ct", SHAPE).dir == tmp_path / "journals" / "ct"


def test_a_journal_keeps_its_own_folder_when_another_spelling_exists(tmp_path):
    src = tmp_path / "ct.nii.gz"
    own = EditJournal(tmp_path, "zeta", SHAPE, source=src)
    own.dir.mkdir()
    other = tmp_path / own.dir.name.replace("zeta", "alpha")  # sorts first
    other.mkdir()
    assert EditJournal(tmp_path, "zeta", SHAPE, source=src).dir == own.dir
    # without its own folder, a case renamed since finds the same file's journal
    (own.dir).rmdir()
    assert EditJournal(tmp_path, "zeta", SHAPE, source=src).dir == other


def test_a_journal_without_its_case_record_still_replays(tmp_path):
    case, s, cur = _one_edit(tmp_path)
    (s.journal.dir / "case.json").unlink()  # journals written before the record existed
    done = _reopened(tmp_path, case).replay_state(case.labels)
    assert np.array_equal(done.state.labels, cur)


def test_a_missing_step_file_is_named_and_left_out(tmp_path):
    case, s, cur = _one_edit(tmp_path)
    cur[1, 2, 4] = 23
    s.commit(cur, "second")
    (s.journal.dir / "edits" / "000002.npz").unlink()
    j = _reopened(tmp_path, case)
    assert [e.op for e in j.entries()] == ["first"]
    assert len(j.dropped) == 1 and "000002.npz: missing; step 2 (second)" in j.dropped[0]


def test_a_journal_folder_that_cannot_be_made_gives_the_systems_reason(tmp_path):
    from napari_spine.correction import JournalError

    case = _case()
    blocker = tmp_path / "journals"
    blocker.write_text("a file where the folder should be")
    s = CorrectionSession(case.labels, EditJournal(blocker, "c", case.labels.shape, source=tmp_path / "c.nii.gz"))
    cur = case.labels.copy()
    cur[0, 0, 0] = 21
    with pytest.raises(JournalError, match=r"cannot keep the edit journal here \(Not a directory\)"):
        s.commit(cur, "paint")


def test_declined_edits_are_gone_even_when_the_trash_cannot_be_emptied(tmp_path, monkeypatch):
    """The folder is moved aside in one step; failing to delete it afterwards (a file held
    open on a network share) does not undo the decline or raise."""
    import shutil as shutil_mod

    from napari_spine.correction import journal as journal_mod

    case = _case()
    s = _session(tmp_path, case.labels)
    cur = case.labels.copy()
    cur[0, 0, 0] = 21
    s.commit(cur, "paint")
    real = shutil_mod.rmtree

    def stuck(path, ignore_errors=False, **kw):
        if not ignore_errors:
            raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(journal_mod.shutil, "rmtree", stuck)
    s.close()
    later = _session(tmp_path, case.labels)
    assert later.pending
    later.decline()
    monkeypatch.setattr(journal_mod.shutil, "rmtree", real)
    assert not later.pending
    assert not _session(tmp_path, case.labels).pending


def test_a_journal_whose_case_record_is_unreadable_is_refused(tmp_path):
    from napari_spine.correction import JournalError

    case, s, _ = _one_edit(tmp_path)
    (s.journal.dir / "case.json").write_text("{torn")
    with pytest.raises(JournalError, match="journal is for shape"):
        _reopened(tmp_path, case).replay_state(case.labels)
