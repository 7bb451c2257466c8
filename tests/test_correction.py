"""Correction operations, validator, journal and exports: exact results on synthetic cases."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import nibabel as nib
import numpy as np
import pytest

from napari_spine import ExportError, export_labels, load_case, make_phantom
from napari_spine.correction import (
    CorrectionSession,
    EditJournal,
    PendingEditsError,
    fill_holes,
    interpolate_between_slices,
    keep_largest,
    merge,
    relabel,
    remove_islands,
    revert_structure,
    shift_levels,
    split_by_plane,
    swap_levels,
    validate_sequence,
)
from napari_spine.io.nnunet_raw import export_nnunet_dataset
from napari_spine.synthetic import write_phantom


@pytest.fixture(scope="module")
def lumbar():
    return make_phantom((24, 160, 96), levels=("T12", "L4"), include_canal=True, seed=4)


def _naive_map(labels, mapping):
    out = labels.copy()
    for old, new in mapping.items():
        out[labels == old] = new
    return out


def test_shift_all_levels_down(lumbar):
    lab = lumbar.labels
    out, lm = shift_levels(lab, +1, landmarks=lumbar.landmarks)
    mapping = {19: 20, 20: 21, 21: 22, 22: 23, 23: 24, 119: 120, 120: 121, 121: 122, 122: 123}
    assert np.array_equal(out, _naive_map(lab, mapping))
    assert np.array_equal(lab, lumbar.labels)  # input untouched
    assert list(lm.structure_ids[:3]) == [20, 120, 21]
    assert lm.names[:3] == ("L1 body centre", "L1/L2 disc centre", "L2 body centre")
    assert np.array_equal(lm.coords, lumbar.landmarks.coords)
    back = shift_levels(out, -1)
    assert np.array_equal(back, lab)


def test_shift_from_a_level_onward(lumbar):
    out = shift_levels(lumbar.labels, +1, start="L2")
    mapping = {21: 22, 22: 23, 23: 24, 121: 122, 122: 123}
    assert np.array_equal(out, _naive_map(lumbar.labels, mapping))
    with pytest.raises(ValueError, match="leaves C1-S1"):
        shift_levels(lumbar.labels, -19)


def test_locks_are_respected(lumbar):
    lab = lumbar.labels
    out = shift_levels(lab, +1, start="L3", locked=["L2"])
    assert np.array_equal(out == 21, lab == 21)  # L2 neither moved nor grew
    assert (out == 22).sum() == 0 and (out == 23).sum() == (lab == 22).sum()
    with pytest.raises(ValueError, match="L1 would become L2, but L2 is locked"):
        shift_levels(lab, +1, locked=["L2"])  # the levels above L2 cannot land on it
    with pytest.raises(ValueError, match=r"L3 \(A\) is locked"):
        relabel(lab, "L3", "L2", locked=[22])


def test_relabel_swap_merge(lumbar):
    lab = lumbar.labels
    assert np.array_equal(relabel(lab, 22, 25), _naive_map(lab, {22: 25}))
    assert np.array_equal(relabel(lab, "L3", 0), _naive_map(lab, {22: 0}))
    assert np.array_equal(swap_levels(lab, "L1", "L3"), _naive_map(lab, {20: 22, 22: 20, 120: 122, 122: 120}))
    assert np.array_equal(swap_levels(lab, 20, 22, with_discs=False), _naive_map(lab, {20: 22, 22: 20}))
    assert np.array_equal(merge(lab, "L1/L2", "L1"), _naive_map(lab, {120: 20}))


def test_split_fused_vertebra_by_plane():
    lab = np.zeros((4, 30, 10), np.uint8)
    lab[:, 5:25, 2:8] = 22  # "fused" L3 + L4
    out = split_by_plane(lab, "L3", point=(0, 14.5, 0), normal=(0, 1, 0), new_id="L4")
    assert (out[:, 5:15, 2:8] == 22).all() and (out[:, 15:25, 2:8] == 23).all()
    assert np.count_nonzero(out) == np.count_nonzero(lab)


def test_remove_islands_and_keep_largest(lumbar):
    lab = lumbar.labels.copy()
    lab[2:4, 2:4, 2:4] = 22  # an 8-voxel island of L3 far from L3
    lab[20:22, 2:4, 2:4] = 61  # an island of the canal, locked below
    out = remove_islands(lab, min_volume_mm3=20, spacing=(1, 1, 1), locked=[61])
    assert (out[2:4, 2:4, 2:4] == 0).all() and (out[20:22, 2:4, 2:4] == 61).all()
    assert np.array_equal(out[4:, 4:], lab[4:, 4:])
    only = keep_largest(lab, structures=[22])
    assert (only[2:4, 2:4, 2:4] == 0).all() and (only[20:22, 2:4, 2:4] == 61).all()
    # against a per-label scipy reference
    from scipy import ndimage

    ref = lab.copy()
    for sid in np.unique(lab)[1:]:
        if sid == 61:
            continue
        cc, n = ndimage.label(lab == sid, structure=np.ones((3, 3, 3)))
        for c in range(1, n + 1):
            if (cc == c).sum() < 20:
                ref[cc == c] = 0
    assert np.array_equal(out, ref)


def test_fill_holes_only_fills_background():
    lab = np.zeros((9, 9, 9), np.uint8)
    lab[1:8, 1:8, 1:8] = 22
    lab[3:6, 3:6, 3:6] = 0
    lab[4, 4, 4] = 60  # another structure inside the hole stays
    out = fill_holes(lab)
    assert (out[1:8, 1:8, 1:8] != 0).all() and out[4, 4, 4] == 60


def test_interpolate_between_slices():
    lab = np.zeros((11, 20, 20), np.uint8)
    lab[2, 5:10, 5:10] = 122
    lab[8, 5:10, 5:10] = 122
    out = interpolate_between_slices(lab, "L3/L4", 2, 8, axis=0)
    for k in range(3, 8):
        assert np.array_equal(out[k] == 122, lab[2] == 122)
    lab[8] = 0
    lab[8, 9:16, 9:16] = 122  # moved and grown: intermediate slices lie between the two
    out = interpolate_between_slices(lab, 122, 2, 8)
    assert out[5, 9:10, 9:10].all() and not out[5, 0:4].any()
    with pytest.raises(ValueError, match="both slices"):
        interpolate_between_slices(lab, 122, 2, 9)


def test_validator_clean_and_broken(lumbar):
    lab, sp = lumbar.labels, lumbar.spacing
    assert [f for f in validate_sequence(lab, sp) if f.severity == "error"] == []
    dup = relabel(lab, "L3", "L2")  # a whole sequence error: L2 twice, L3 missing
    kinds = {(f.kind, f.structures) for f in validate_sequence(dup, sp)}
    assert ("duplicate", (21,)) in kinds and ("gap", (22,)) in kinds
    swapped = swap_levels(lab, "L1", "L3", with_discs=False)
    assert any(f.kind == "order" for f in validate_sequence(swapped, sp))
    misplaced = relabel(lab, "L1/L2", "L3/L4")
    found = [f for f in validate_sequence(misplaced, sp) if f.kind in ("disc", "duplicate")]
    assert found and all(len(f.position) == 3 for f in found)
    # the finding's position is on the structure
    f = next(f for f in validate_sequence(dup, sp) if f.kind == "duplicate")
    assert lab.shape[1] > f.position[1] > 0


def test_journal_record_replay_and_torn_line(tmp_path, lumbar):
    j = EditJournal(tmp_path, "case 1/A", lumbar.labels.shape)
    s = CorrectionSession(lumbar.labels, j)
    a = shift_levels(lumbar.labels, +1)
    assert s.commit(a, "shift +1") is not None
    b = relabel(a, 60, 0)
    s.commit(b, "erase cord")
    assert s.commit(b, "nothing") is None
    assert [e.op for e in j.entries()] == ["shift +1", "erase cord"]
    assert j.has_pending()
    with open(j.dir / "journal.jsonl", "a") as f:
        f.write('{"seq": 3, "op": "torn')  # a crash in the middle of a line
    again = EditJournal(tmp_path, "case 1/A", lumbar.labels.shape)
    assert np.array_equal(again.replay(lumbar.labels), b)
    assert np.array_equal(again.replay(lumbar.labels, upto=1), a)
    again.close()
    assert not again.has_pending()
    r = revert_structure(b, lumbar.labels, 60)
    assert np.array_equal(r == 60, lumbar.labels == 60)


_WRITER = textwrap.dedent("""
    import sys, numpy as np
    from napari_spine import make_phantom, export_labels
    case = make_phantom((96, 200, 160), levels=("T12", "L4"), seed=4)
    a = case.labels
    b = np.where(a == 22, 0, a).astype(np.uint8)
    k = 0
    while True:
        export_labels(case, a if k % 2 == 0 else b, sys.argv[1])
        print(k, flush=True)
        k += 1
""")


def test_export_killed_mid_write_leaves_previous_file(tmp_path):
    target = tmp_path / "labels.nii.gz"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()  # one complete export exists
    time.sleep(0.35)  # then kill it somewhere inside a later write
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    case = make_phantom((96, 200, 160), levels=("T12", "L4"), seed=4)
    data = np.asanyarray(nib.load(target).dataobj)
    a = np.asarray(__import__("napari_spine").geometry.from_display(case.labels, case.source.ornt))
    b = np.where(a == 22, 0, a)
    assert np.array_equal(data, a) or np.array_equal(data, b)


def test_overwrite_original_needs_consent_and_keeps_a_backup(tmp_path):
    case = make_phantom((16, 48, 32), levels=("L3", "L4"))
    ip, lp = write_phantom(case, tmp_path / "c.nii.gz", tmp_path / "c_seg.nii.gz")
    loaded = load_case(ip, lp)
    before = lp.read_bytes()
    edited = relabel(loaded.labels, 22, 0)
    with pytest.raises(ExportError, match="original file"):
        export_labels(loaded, edited, lp)
    assert lp.read_bytes() == before
    export_labels(loaded, edited, lp, overwrite_original=True)
    backups = list(tmp_path.glob("c_seg.orig-*.nii.gz"))
    assert len(backups) == 1 and backups[0].read_bytes() == before
    assert 22 not in np.unique(np.asanyarray(nib.load(lp).dataobj))


def test_nnunet_raw_dataset(tmp_path):
    cases = [make_phantom((16, 96, 64), levels=("L1", "L4"), axcodes=ax, seed=i, case_id=f"c{i}")
             for i, ax in enumerate(("RAS", "PIR"))]
    root = export_nnunet_dataset(cases, tmp_path, dataset_id=501, name="Spine")
    assert root.name == "Dataset501_Spine"
    doc = json.loads((root / "dataset.json").read_text())
    assert doc["numTraining"] == 2 and doc["file_ending"] == ".nii.gz"
    values = sorted(doc["labels"].values())
    assert values == list(range(len(values)))  # consecutive, as nnU-Net requires
    back = {int(k): v for k, v in doc["napari_spine"]["label_to_canonical"].items()}
    for i, case in enumerate(cases):
        lab = nib.load(root / "labelsTr" / f"Spine_{i:03d}.nii.gz")
        img = nib.load(root / "imagesTr" / f"Spine_{i:03d}_0000.nii.gz")
        assert np.allclose(lab.affine, case.source.affine) and np.allclose(img.affine, case.source.affine)
        lut = np.zeros(256, np.uint8)
        for k, canon_id in back.items():
            lut[k] = canon_id
        canon = lut[np.asanyarray(lab.dataobj)]
        expect = np.asarray(__import__("napari_spine").geometry.from_display(case.labels, case.source.ornt))
        assert np.array_equal(canon, expect)
        assert np.array_equal(np.asanyarray(img.dataobj),
                              __import__("napari_spine").geometry.from_display(case.image, case.source.ornt))
    assert doc["labels"]["L1"] == {canon: k for k, canon in back.items()}[20]


# -- the journal under real-world use ----------------------------------------------------------
def _two_subjects(tmp_path):
    """Two cases whose files share a stem (``ct``) in different subject folders."""
    from napari_spine import make_phantom

    a = make_phantom((16, 64, 40), levels=("T12", "L3"), seed=1).labels
    b = make_phantom((16, 64, 40), levels=("L1", "L4"), seed=2).labels
    src_a, src_b = tmp_path / "sub-01" / "ct.nii.gz", tmp_path / "sub-02" / "ct.nii.gz"
    return (a, src_a), (b, src_b)


def test_same_stem_in_two_folders_has_two_journals(tmp_path):
    (a, src_a), (b, src_b) = _two_subjects(tmp_path)
    ja = EditJournal(tmp_path / "j", "nifti-ct", a.shape, source=src_a)
    s = CorrectionSession(a, ja)
    edited = relabel(a, 20, 0)  # subject 1 loses L1
    assert s.commit(edited, "erase L1") is not None  # ... then the program dies
    jb = EditJournal(tmp_path / "j", "nifti-ct", b.shape, source=src_b)
    assert ja.dir != jb.dir
    assert not jb.has_pending()  # subject 2 is not offered subject 1's edits
    sb = CorrectionSession(b, jb)
    assert not sb.pending and np.array_equal(sb.restore().labels, b)
    assert (b == 20).sum() > 0 and np.array_equal(EditJournal(tmp_path / "j", "nifti-ct", a.shape,
                                                              source=src_a).replay(a), edited)


def test_a_declined_restore_never_comes_back(tmp_path, lumbar):
    src = tmp_path / "case.nii.gz"
    first = CorrectionSession(lumbar.labels, EditJournal(tmp_path, "c", lumbar.labels.shape, source=src))
    old_edit = relabel(lumbar.labels, 60, 0)
    first.commit(old_edit, "erase cord")
    first.close()  # crash: these edits are pending
    second = CorrectionSession(lumbar.labels, EditJournal(tmp_path, "c", lumbar.labels.shape, source=src))
    assert second.pending
    second.decline()  # the user says no
    new_edit = relabel(lumbar.labels, 61, 0)
    second.commit(new_edit, "erase canal")
    second.close()  # crash again
    third = EditJournal(tmp_path, "c", lumbar.labels.shape, source=src)
    assert [e.op for e in third.entries()] == ["erase canal"]
    assert np.array_equal(third.replay(lumbar.labels), new_edit)  # the cord is back
    # editing without answering is refused: only Discard deletes pending edits
    fourth = CorrectionSession(lumbar.labels, third)
    assert fourth.pending
    other = relabel(lumbar.labels, 20, 0)
    with pytest.raises(PendingEditsError, match=r"case\.nii\.gz: unsaved edits of an earlier session wait "
                                                r"\(1 edit \(last: erase canal, .*\)\): restore or discard"):
        fourth.commit(other, "erase L1")
    assert fourth.pending and [e.op for e in EditJournal(tmp_path, "c", lumbar.labels.shape,
                                                          source=src).entries()] == ["erase canal"]


def test_a_torn_last_line_does_not_swallow_the_next_edit(tmp_path, lumbar):
    src = tmp_path / "case.nii.gz"
    s = CorrectionSession(lumbar.labels, EditJournal(tmp_path, "c", lumbar.labels.shape, source=src))
    a = relabel(lumbar.labels, 60, 0)
    s.commit(a, "one")
    s.close()
    j = EditJournal(tmp_path, "c", lumbar.labels.shape, source=src)
    with open(j._log, "a") as f:
        f.write('{"seq": 2, "op": "to')  # the crash tore this line
    s2 = CorrectionSession(lumbar.labels, j)
    s2.restore()
    b = relabel(a, 61, 0)
    s2.commit(b, "two")  # appended after the torn fragment
    back = EditJournal(tmp_path, "c", lumbar.labels.shape, source=src)
    assert [e.op for e in back.entries()] == ["one", "two"]
    assert np.array_equal(back.replay(lumbar.labels), b)


def test_commit_cost_does_not_grow_with_the_journal(tmp_path, monkeypatch):
    """3,000 commits: the journal is read once, never again per commit (counted, not timed)."""
    labels = np.zeros((8, 8, 8), np.uint8)
    j = EditJournal(tmp_path, "c", labels.shape, source=tmp_path / "x.nii.gz")
    reads = {"n": 0}
    real = EditJournal.entries

    def counting(self):
        reads["n"] += 1
        return real(self)

    monkeypatch.setattr(EditJournal, "entries", counting)
    s = CorrectionSession(labels, j)
    cur = labels.copy()
    for k in range(3000):
        cur[k % 8, (k // 8) % 8, (k // 64) % 8] = 1 + k % 7
        s.commit(cur, "paint")
    assert reads["n"] <= 2  # has_pending at the start, the sequence number once
    assert len(real(j)) == 3000 and [e.seq for e in real(j)][-3:] == [2998, 2999, 3000]


def test_a_full_disk_while_journalling_names_the_journal(tmp_path, lumbar, monkeypatch):
    import errno

    from napari_spine.correction import JournalError
    from napari_spine.correction import journal as journal_mod

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    s = CorrectionSession(lumbar.labels, EditJournal(tmp_path, "c", lumbar.labels.shape,
                                                     source=tmp_path / "x.nii.gz"))
    monkeypatch.setattr(journal_mod.np, "savez_compressed", full)
    # the system's reason in words, not the errno's repr
    with pytest.raises(JournalError, match=rf"{tmp_path}.*\(No space left on device\); save the labels"):
        s.commit(relabel(lumbar.labels, 60, 0), "x")


@pytest.fixture(scope="module")
def with_sacrum():
    return make_phantom((12, 200, 80), levels=("T12", "S1"), include_canal=False, seed=3)


def test_a_shift_keeps_the_sacrum_unless_it_is_named(with_sacrum):
    lab = with_sacrum.labels
    assert 26 in lab and 24 in lab  # S1 and L5
    with pytest.raises(ValueError, match="L5 would become S1, but S1 is an anchor.*switch on L6"):
        shift_levels(lab, +1, "L2")
    out = shift_levels(lab, +1, "L2", transitional=["L6"])  # six lumbar vertebrae
    assert np.array_equal(out, _naive_map(lab, {21: 22, 22: 23, 23: 24, 24: 25, 121: 122, 122: 123,
                                                123: 124, 124: 125}))
    assert np.array_equal(out == 26, lab == 26)  # S1 left alone
    up = shift_levels(lab, -1)  # the whole case up one: the sacrum stays, L5 becomes L4
    assert np.array_equal(up == 26, lab == 26) and (up == 24).sum() == 0
    assert (up == 18).sum() == (lab == 19).sum()  # T12 -> T11
    named = shift_levels(lab, -1, end="S1")  # named as the range end: S1 moves too
    assert (named == 26).sum() == 0 and (named == 24).sum() == (lab == 26).sum()
    with pytest.raises(ValueError, match="S1 would become L5, but L5 is outside the range"):
        shift_levels(lab, -1, "S1")


def test_a_shift_into_a_gap_and_a_range_end(with_sacrum):
    lab = relabel(with_sacrum.labels, "L5", 0)  # the model missed L5: L4 sits on the sacrum
    lab = relabel(lab, 124, 0)
    out = shift_levels(lab, +1, "L2")  # no L6 needed: L5 is free
    assert np.array_equal(out, _naive_map(lab, {21: 22, 22: 23, 23: 24, 121: 122, 122: 123, 123: 124}))
    with pytest.raises(ValueError, match="L2 would become L3, but L3 is outside the range"):
        shift_levels(lab, +1, "L1", "L2")
    ranged = shift_levels(lab, +1, "L3", "L4")
    assert np.array_equal(ranged, _naive_map(lab, {22: 23, 23: 24, 122: 123, 123: 124}))
    with pytest.raises(ValueError, match="To level L1 is above From level L3"):
        shift_levels(lab, +1, "L3", "L1")
    with pytest.raises(ValueError, match="L6 is not a vertebral level of the sequence.*transitional"):
        shift_levels(lab, +1, "L6")


@pytest.mark.parametrize("order", ["C", "F", "view"])
def test_an_in_place_shift_equals_the_copy_and_records_only_what_changed(lumbar, order):
    from napari_spine.correction import CorrectionSession

    base = lumbar.labels
    if order == "F":
        lab = np.asfortranarray(base)
    elif order == "view":  # as load_case gives: a strided view in display order
        lab = np.ascontiguousarray(np.transpose(base, (2, 1, 0))).transpose(2, 1, 0)
    else:
        lab = base.copy()
    expected = shift_levels(base, +1, "L1")
    s = CorrectionSession(lab)
    changes = shift_levels(lab, +1, "L1", in_place=True)
    assert np.array_equal(lab, expected)  # the same voxels, in the caller's array
    truth = np.flatnonzero(np.ascontiguousarray(base).ravel() != np.ascontiguousarray(expected).ravel())
    assert np.array_equal(np.sort(changes.index.astype(np.int64)), truth)  # exactly the changed voxels
    assert np.array_equal(changes.old, np.ascontiguousarray(base).ravel()[changes.index])
    step = s.commit(lab, "shift", where=changes.index)
    assert step.voxels == truth.size
    s.undo(lab)
    assert np.array_equal(lab, base)


def test_relabel_in_place_over_many_slabs_keeps_locks(lumbar):
    from napari_spine.correction import relabel_in_place

    base = lumbar.labels
    lab = np.ascontiguousarray(np.transpose(base, (1, 0, 2))).transpose(1, 0, 2)  # strided
    lut = np.arange(256, dtype=np.uint8)
    lut[[20, 21, 22]] = [21, 22, 23]
    changes = relabel_in_place(lab, lut, locked={22}, slab_voxels=3000)  # dozens of slabs
    expected = _naive_map(base, {20: 21, 21: 22})  # 22 is locked: it keeps its id, and 21 may
    expected[base == 21] = 21  # not become the locked 22 either
    assert np.array_equal(lab, expected)
    assert changes.index.size == int((base == 20).sum())


def test_interpolation_follows_the_linear_blend_of_distances():
    """Squares of half-width 2 (slice 0) and 8 (slice 6) about one centre: on slice k the
    boundary lies where the blended signed distances cross zero, at half-width 2 + 6 k / 6."""
    lab = np.zeros((7, 41, 41), np.uint8)
    lab[0, 18:23, 18:23] = 22  # half-width 2
    lab[6, 12:29, 12:29] = 22  # half-width 8
    out = interpolate_between_slices(lab, "L3", 0, 6, axis=0)
    for k in range(1, 6):
        row = out[k, 20] == 22
        half = (row.sum() - 1) / 2
        assert abs(half - (2 + k)) <= 0.5, (k, half)  # 2 + 6 * (k / 6)
        assert row[20 - int(half): 21 + int(half)].all()  # centred


def test_relabel_in_place_reaches_the_first_plane_and_records_nothing_for_no_change():
    from napari_spine.correction import relabel_in_place

    lab = np.zeros((5, 4, 3), np.uint8)
    lab[0, 0, 0] = 20  # the very first voxel
    lab[4, 3, 2] = 20  # and the very last
    lut = np.arange(256, dtype=np.uint8)
    same = relabel_in_place(lab, lut, slab_voxels=12)
    assert same.index.size == 0 and same.old.size == 0 and np.array_equal(lab, lab)
    lut[20] = 21
    ch = relabel_in_place(lab, lut, slab_voxels=12)  # one plane per slab
    assert sorted(ch.index.tolist()) == [0, lab.size - 1] and (lab == 21).sum() == 2


def test_a_shift_may_land_on_c1_and_on_s1():
    from napari_spine import make_phantom

    neck = make_phantom((8, 160, 60), levels=("C2", "C6"), include_canal=False, seed=2)
    with pytest.raises(ValueError, match="C2/C3 has no counterpart"):  # there is no C1/C2 disc
        shift_levels(neck.labels, -1)
    bones = np.where(neck.labels >= 100, 0, neck.labels).astype(np.uint8)  # vertebrae only
    up = shift_levels(bones, -1)  # C2 -> C1: the first level of the sequence is allowed
    assert (up == 1).sum() == (bones == 2).sum()
    low = make_phantom((8, 160, 60), levels=("L2", "L5"), include_canal=False, seed=2)
    down = shift_levels(low.labels, +1)  # L5 -> S1: the last level is allowed
    assert (down == 26).sum() == (low.labels == 24).sum()


def test_size_and_spacing_warnings_fire_on_the_levels_that_earn_them():
    """L1-L5 as boxes in a column, 6 rows each with 2 rows between them: L3 five times the
    median volume, L4 a fifth of it, 12 more rows before L5. Exactly those warn; the
    oversized L3 touching the edge of the field of view is excused."""
    lab = np.zeros((20, 80, 60), np.uint8)
    boxes = {20: (10, 10), 21: (10, 10), 22: (10, 50), 23: (5, 4), 24: (10, 10)}  # (axis 0, axis 2)
    rows = {20: 2, 21: 10, 22: 18, 23: 26, 24: 46}  # centroid rows 4.5, 12.5, 20.5, 28.5, 48.5
    for sid, (a0, a2) in boxes.items():  # centred on (10, 30) across the column
        lab[10 - a0 // 2:10 - a0 // 2 + a0, rows[sid]:rows[sid] + 6, 30 - a2 // 2:30 - a2 // 2 + a2] = sid
    findings = validate_sequence(lab, (1.0, 1.0, 1.0))
    sizes = {f.structures: f.message for f in findings if f.kind == "size"}
    assert set(sizes) == {(22,), (23,)}  # volumes 600, 600, 3000, 120, 600: median 600
    assert sizes[(22,)].startswith("L3 is 5.0x the median vertebra volume (3.0 mL)")
    assert sizes[(23,)].startswith("L4 is 0.2x the median vertebra volume (0.1 mL)")
    steps = [f for f in findings if f.kind == "spacing"]  # steps 8, 8, 8, 20 mm: median 8
    assert [(f.structures, f.message) for f in steps] == [
        ((23, 24), "20 mm between L4 and L5 (typical 8 mm): a level may be unlabelled")]
    cut = lab.copy()
    cut[cut == 22] = 0
    cut[0:10, 18:24, 5:55] = 22  # as large, but cut by the first plane of the volume
    assert not [f for f in validate_sequence(cut, (1.0, 1.0, 1.0)) if f.kind == "size" and f.structures == (22,)]
