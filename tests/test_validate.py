"""The level-sequence validator at the edges of each rule, and its statistics against a
brute-force count (every voxel, scipy's 26-connected components)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from napari_spine.correction.validate import Finding, structure_stats, validate_sequence

L1, L2, L3, L4, L5, L6, S1, T12, T13 = 20, 21, 22, 23, 24, 25, 26, 19, 28
DISC = 100  # disc below a vertebra: vertebra id + 100


def _box(lab, sid, rows, cols=(4, 10), slices=(2, 6)):
    lab[slices[0]:slices[1], rows[0]:rows[1], cols[0]:cols[1]] = sid


def _column(levels, *, shape=(8, 120, 14), start=4, height=6, gap=4, **kw):
    """Vertebrae of equal size stacked down the rows, ``gap`` rows apart."""
    lab = np.zeros(shape, np.uint8)
    for k, sid in enumerate(levels):
        top = start + k * (height + gap)
        _box(lab, sid, (top, top + height), **kw)
    return lab


def _kinds(findings):
    return sorted((f.kind, f.structures) for f in findings)


def test_stats_equal_a_brute_force_count():
    lab = np.zeros((7, 30, 11), np.uint16)
    lab[1:3, 2:6, 3:5] = L1
    lab[5, 20:22, 8] = L1  # a second, smaller piece
    lab[0, 10:12, 3:5] = 300  # an id past 255, one voxel deep on the first face of axis 0
    lab[3:5, 27:30, 4:6] = L2  # on the last face of axis 1
    lab[2:4, 14:16, 10] = L3  # on the last face of axis 2 only
    stats = structure_stats(lab)
    assert set(stats) == {L1, L2, L3, 300}
    for sid, st in stats.items():
        idx = np.argwhere(lab == sid)
        assert st.voxels == len(idx)
        np.testing.assert_allclose(st.centroid, idx.mean(axis=0))
        comp, n = ndimage.label(lab == sid, np.ones((3, 3, 3)))
        sizes = sorted(np.bincount(comp.ravel())[1:].tolist(), reverse=True)
        assert list(st.components) == sizes
        first = np.argwhere(comp == 1 + int(np.argmax(np.bincount(comp.ravel())[1:])))
        np.testing.assert_allclose(st.component_centroids[0], first.mean(axis=0))
        on_face = any(np.take(lab, k, axis=a).__eq__(sid).any() for a in range(3) for k in (0, lab.shape[a] - 1))
        assert st.touches_edge == on_face, sid
    assert stats[L1].components == (16, 2) and not stats[L1].touches_edge
    assert stats[L3].touches_edge and stats[300].touches_edge
    assert structure_stats(np.zeros((3, 4, 5), np.uint8)) == {}


def test_findings_and_stats_are_frozen():
    st = structure_stats(_column([L1, L2]))[L1]
    with pytest.raises(dataclasses.FrozenInstanceError):
        st.voxels = 1
    f = Finding("gap", "error", (L2,), "x", (0.0, 0.0, 0.0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.kind = "order"


def test_a_clean_column_with_its_discs_has_no_finding():
    lab = _column([L1, L2, L3, L4])
    for k, upper in enumerate([L1, L2, L3]):  # each disc in the gap below its vertebra
        top = 4 + k * 10 + 6
        _box(lab, upper + DISC, (top + 1, top + 3))
    lab[0, 0, 0] = 0
    assert validate_sequence(lab) == []


def test_unknown_labels_are_named():
    lab = _column([L1, L2])
    lab[0, 0, 0] = 250
    got = [f for f in validate_sequence(lab) if f.kind == "unknown"]
    assert len(got) == 1 and got[0].structures == (250,) and "label 250 is not a known structure" in got[0].message


@pytest.mark.parametrize("second,spacing,duplicate", [
    (20, 1.0, True),  # exactly 0.2 x the first piece and 50 mm3 at 2.5 mm3 per voxel: reported
    (19, 1.0, False),  # just under 0.2 x
    (30, 0.5, False),  # 0.3 x the first, but 3.75 mm3: a speck
])
def test_a_second_piece_is_a_duplicate_from_a_fifth_of_the_first_and_50_mm3(second, spacing, duplicate):
    lab = np.zeros((6, 80, 60), np.uint8)
    lab[1, 2:12, 2:12] = L1  # 100 voxels
    lab[4, 60, 30:30 + second] = L1  # a separate piece far below
    _box(lab, L2, (20, 26))
    _box(lab, L3, (35, 41))
    sp = (1.0, 1.0, 2.5) if spacing == 1.0 else (0.5, 0.5, 0.5)
    got = [f for f in validate_sequence(lab, sp) if f.kind == "duplicate"]
    assert bool(got) == duplicate
    if duplicate:
        assert got[0].message == "L1 appears in 2 separate places"
        np.testing.assert_allclose(got[0].position, (4.0, 60.0, 30 + (second - 1) / 2))


def test_the_50_mm3_floor_follows_the_voxel_size():
    lab = np.zeros((6, 80, 60), np.uint8)
    lab[1, 2:12, 2:12] = L1  # 100 voxels
    lab[4, 60, 30:60] = L1  # 30 voxels: over 0.2 x 100, under 50 voxels
    _box(lab, L2, (20, 26))
    assert not [f for f in validate_sequence(lab, (1.0, 1.0, 1.0)) if f.kind == "duplicate"]
    assert [f for f in validate_sequence(lab, (2.0, 2.0, 2.0)) if f.kind == "duplicate"]  # 240 mm3


def test_a_gap_is_placed_between_its_neighbours():
    lab = _column([L1, L3, L4], gap=14)
    gaps = [f for f in validate_sequence(lab) if f.kind == "gap"]
    assert [g.structures for g in gaps] == [(L2,)] and gaps[0].message == "L2 is missing between L1 and L3"
    st = structure_stats(lab)
    np.testing.assert_allclose(gaps[0].position, (np.array(st[L1].centroid) + st[L3].centroid) / 2)


def test_transitional_levels_are_never_gaps():
    lab = _column([T12, L1, L2, L3, L4, L5, S1])  # no T13, no L6
    assert not [f for f in validate_sequence(lab) if f.kind == "gap"]
    lab = _column([L4, L5, S1])
    assert not validate_sequence(lab)


def test_levels_out_of_order_including_the_same_row():
    lab = _column([L2, L1, L3])  # L2 drawn above L1
    order = [f for f in validate_sequence(lab) if f.kind == "order"]
    assert [f.structures for f in order] == [(L1, L2)] and order[0].message == "L2 lies above L1"
    side = np.zeros((8, 40, 40), np.uint8)  # L1 and L2 side by side: same centroid row
    side[2:6, 10:16, 2:8] = L1
    side[2:6, 10:16, 20:26] = L2
    side[2:6, 26:32, 10:16] = L3
    assert [f.structures for f in validate_sequence(side) if f.kind == "order"] == [(L1, L2)]


@pytest.mark.parametrize("disc_rows,finding", [
    ((11, 13), None),  # in the gap: fine
    ((6, 9), "error"),  # centred on L1's own centroid row (7): not below it
    ((16, 19), "error"),  # centred on L2's centroid row (17): not above it
])
def test_a_disc_must_lie_between_its_two_vertebrae(disc_rows, finding):
    lab = np.zeros((8, 60, 30), np.uint8)
    _box(lab, L1, (4, 11))  # centroid row 7
    _box(lab, L2, (14, 21))  # centroid row 17
    _box(lab, L3, (24, 31))
    lab[2:6, disc_rows[0]:disc_rows[1], 20:26] = L1 + DISC
    discs = [f for f in validate_sequence(lab) if f.kind == "disc"]
    if finding is None:
        assert discs == []
    else:
        assert [(f.severity, f.structures) for f in discs] == [("error", (L1 + DISC,))]
        assert discs[0].message == "disc L1/L2 is not between L1 and L2"


def test_a_disc_below_the_last_vertebra_and_one_without_its_vertebra():
    lab = np.zeros((8, 60, 30), np.uint8)
    _box(lab, L1, (4, 11))
    _box(lab, L2, (14, 21))
    lab[2:6, 24:26, 4:10] = L2 + DISC  # below the last one: nothing to be above
    lab[2:6, 40:42, 4:10] = L4 + DISC  # L4 is not labelled
    lab[2:6, 50:52, 4:10] = DISC  # the generic disc: not checked here
    discs = [(f.severity, f.structures, f.message) for f in validate_sequence(lab) if f.kind == "disc"]
    assert discs == [("warning", (L4 + DISC,), "disc L4/L5 without vertebra L4")]
    lab[2:6, 2:4, 4:10] = L2 + DISC  # and a piece above L2 as well: not between
    assert [f.structures for f in validate_sequence(lab) if f.kind == "disc"][0] == (L2 + DISC,)


def _sized(volumes, *, spacing=(1.0, 1.0, 1.0)):
    """Vertebrae L1... with these voxel counts (4 x 5 x n boxes, 10 rows apart)."""
    lab = np.zeros((6, 12 + 10 * len(volumes), 420), np.uint8)
    for k, v in enumerate(volumes):
        lab[1:5, 5 + 10 * k:10 + 10 * k, 2:2 + v // 20] = L1 + k
    return [f for f in validate_sequence(lab, spacing) if f.kind == "size"]


def test_size_warnings_at_a_quarter_and_four_times_the_median():
    assert _sized([2000, 2000, 500]) == []  # exactly a quarter: not reported
    assert _sized([2000, 2000, 2000, 8000]) == []  # exactly four times: not reported
    small = _sized([2000, 2000, 480], spacing=(1.0, 1.0, 2.0))
    assert [f.structures for f in small] == [(L3,)]
    assert small[0].message == "L3 is 0.2x the median vertebra volume (1.0 mL)"
    big = _sized([2000, 2000, 2000, 8200])
    assert [f.structures for f in big] == [(L4,)] and "4.1x" in big[0].message


def test_sizes_need_three_whole_vertebrae():
    assert _sized([2000, 200]) == []
    assert [f.structures for f in _sized([2000, 2000, 200])] == [(L3,)]


def _spaced(rows, spacing=(1.0, 1.0, 1.0), levels=(L1, L2, L3, L4)):
    lab = np.zeros((4, max(rows) + 8, 8), np.uint8)
    for sid, r in zip(levels, rows):
        lab[1:3, r:r + 2, 2:4] = sid
    return [f for f in validate_sequence(lab, spacing) if f.kind == "spacing"]


def test_a_long_step_between_neighbouring_levels():
    assert _spaced([2, 12, 22, 40]) == []  # 18 rows = 1.8 x the median step of 10: not more
    got = _spaced([2, 12, 22, 42])
    assert [f.structures for f in got] == [(L3, L4)]
    assert got[0].message == "20 mm between L3 and L4 (typical 10 mm): a level may be unlabelled"
    np.testing.assert_allclose(got[0].position, (1.5, 32.5, 2.5))
    fine = _spaced([2, 12, 22, 42], spacing=(0.05, 0.05, 0.05))  # the same at 0.05 mm voxels
    assert [f.structures for f in fine] == [(L3, L4)] and "1 mm between" in fine[0].message
    assert _spaced([2, 12, 22, 42], levels=(L1, L2, L3, L5)) == []  # not neighbours: a gap, not spacing
    assert _spaced([2, 12]) == []  # two levels: no median to compare with


def test_the_fifth_of_the_first_piece_binds_when_it_is_above_50_mm3():
    lab = np.zeros((6, 80, 60), np.uint8)
    lab[0:5, 2:22, 2:12] = L1  # 1000 voxels
    lab[3, 60, 0:50] = L1  # 50 voxels: over 50 mm3, under 0.2 x 1000
    lab[5, 70, 0:60:2] = 0
    _box(lab, L2, (30, 36))
    assert not [f for f in validate_sequence(lab) if f.kind == "duplicate"]
    lab[1, 60, 0:60] = L1  # a third piece, of 60: still under 200
    assert not [f for f in validate_sequence(lab) if f.kind == "duplicate"]


def test_the_count_of_places_leaves_out_the_specks():
    lab = np.zeros((6, 80, 60), np.uint8)
    lab[1, 2:12, 2:12] = L1  # 100 voxels
    lab[4, 60, 10:35] = L1  # 25: a second place (>= 20 = 0.2 x 100 and >= 50 mm3 at 2.5 mm3)
    lab[4, 75, 40:50] = L1  # 10: a speck, not a place
    _box(lab, L2, (20, 26))
    got = [f for f in validate_sequence(lab, (1.0, 1.0, 2.5)) if f.kind == "duplicate"]
    assert [f.message for f in got] == ["L1 appears in 2 separate places"]


def test_the_size_message_gives_millilitres():
    got = _sized([2000, 2000, 2000, 8330], spacing=(2.0, 2.0, 3.0))  # 8320 voxels of 12 mm3
    assert [f.message for f in got] == ["L4 is 4.2x the median vertebra volume (99.8 mL)"]


def test_a_long_step_among_three_levels():
    got = _spaced([2, 4, 24], levels=(L1, L2, L3))  # steps 2 and 20: 20 > 1.8 x 11
    assert [f.structures for f in got] == [(L2, L3)]


def test_no_spacing_warning_when_the_typical_step_is_zero():
    """Levels drawn around one centre (the median step is 0): no step is called long."""
    lab = np.zeros((4, 60, 24), np.uint8)
    lab[1:3, 10:12, 10:14] = L1
    lab[1:3, 10:12, 4:6] = L2
    lab[1:3, 10:12, 18:20] = L2
    lab[1:3, 10:12, 1:3] = L3
    lab[1:3, 10:12, 21:23] = L3
    lab[1:3, 40:42, 10:14] = L4
    assert not [f for f in validate_sequence(lab) if f.kind == "spacing"]
