"""Level-aware edits at their edges, each against a result worked out here: endplates and
transitional levels in a shift, the messages' hints, wide ids, flipped views, anisotropic
split planes, filters and locks of the clean-up tools, and interpolation between slices
against the analytic blend of two discs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from napari_spine.case import Landmarks
from napari_spine.correction import (
    fill_holes,
    interpolate_between_slices,
    keep_largest,
    plane_from_points,
    relabel,
    relabel_in_place,
    remove_islands,
    shift_levels,
    split_by_plane,
    swap_levels,
)
from napari_spine.correction.ops import Changes

T11, T12, T13, L1, L2, L3, L4, L5, L6, S1 = 18, 19, 28, 20, 21, 22, 23, 24, 25, 26
DISC, PLATE = 100, 200


def _stack(ids, shape=(4, 60, 6)):
    lab = np.zeros(shape, np.uint8)
    for k, sid in enumerate(ids):
        lab[:, 2 + 5 * k:5 + 5 * k, 1:5] = sid
    return lab


def _map(lab, table):
    out = lab.copy()
    for a, b in table.items():
        out[lab == a] = b
    return out


def test_a_shift_moves_endplates_and_the_named_end_level():
    lab = _stack([L1, L2, L2 + PLATE, L3])
    got = shift_levels(lab, +1, "L2", "L3")  # L3 is the range's end: it moves too
    assert np.array_equal(got, _map(lab, {L2: L3, L2 + PLATE: L3 + PLATE, L3: L4}))


def test_a_present_t13_is_part_of_the_sequence():
    lab = _stack([T13, L1])
    up = shift_levels(lab, -1)  # T13 -> T12 and L1 -> T13: T13 counts as a level when present
    assert np.array_equal(up, _map(lab, {T13: T12, L1: T13}))
    with pytest.raises(ValueError, match="T13 would become T12"):
        shift_levels(_stack([T12, T13, L1]), -1, "T13", "T13")


def test_naming_an_absent_transitional_level_hints_at_switching_it_on():
    with pytest.raises(ValueError, match=r"From level L6 is not a vertebral level of the sequence "
                                         r"\(switch on the transitional level first\)"):
        shift_levels(_stack([L4, L5]), +1, "L6")
    with pytest.raises(ValueError, match=r"To level L5/S1 is not a vertebral level of the sequence$"):
        shift_levels(_stack([L4, L5]), +1, "L4", "L5/S1")


def test_the_hints_of_a_clash():
    with pytest.raises(ValueError, match=r"L5 would become S1, but S1 is an anchor .*; if this spine has six "
                                         r"lumbar vertebrae, switch on L6"):
        shift_levels(_stack([L4, L5, S1]), +1, "L4", "L5")
    with pytest.raises(ValueError, match=r"T12 would become L1, but L1 is outside the range .*; if this spine "
                                         r"has thirteen thoracic vertebrae, switch on T13"):
        shift_levels(_stack([T11, T12, L1]), +1, "T11", "T12")
    with pytest.raises(ValueError, match=r"L2 would become L1, but L1 is outside the range \(extend the range "
                                         r"to move it too\)$"):
        shift_levels(_stack([L1, L2, L3]), -1, "L2", "L3")  # upwards: no hint
    with pytest.raises(ValueError, match=r"L1 would become L2, but L2 is locked$"):
        shift_levels(_stack([L1, L2]), +1, locked=[L2])


def test_a_disc_without_a_counterpart_is_named():
    lab = _stack([L5, L5 + DISC])  # S1 has no disc below it
    with pytest.raises(ValueError, match=r"L5/S1 has no counterpart at S1$"):
        shift_levels(lab, +1, "L5", "L5")


def test_landmarks_of_ids_outside_the_table_keep_their_ids():
    lab = _stack([L1, L2])
    lm = Landmarks(np.zeros((4, 3)), np.array([L1, -1, 400, L2]), ("L1 centre", "a note", "far", "L2 centre"))
    _, moved = shift_levels(lab, +1, landmarks=lm)
    assert moved.structure_ids.tolist() == [L2, -1, 400, L3]
    assert moved.names == ("L2 centre", "a note", "far", "L3 centre")


def test_changes_are_frozen_and_empty_when_nothing_changes():
    lab = _stack([L1])
    lut = np.arange(256, dtype=np.uint8)
    ch = relabel_in_place(lab, lut)
    assert ch.index.size == ch.old.size == ch.new.size == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        ch.index = None
    assert isinstance(ch, Changes)


def test_a_lock_on_an_id_past_the_table_is_harmless():
    lab = _stack([L1, L2])
    lut = np.arange(256, dtype=np.uint8)
    lut[L1] = L3
    ch = relabel_in_place(lab, lut, locked={256, L2})
    assert ch.index.size == (lab == L3).sum() and (lab == L1).sum() == 0


@pytest.mark.parametrize("slab", [7, 24, 10**6])
def test_in_place_relabel_of_a_flipped_view_reports_indices_of_the_view(slab):
    file = _stack([L1, L2, L3], shape=(3, 20, 5))
    view = file.transpose(2, 1, 0)[::-1, ::-1]  # a display view: permuted and flipped
    before = view.copy()
    lut = np.arange(256, dtype=np.uint8)
    lut[L2] = L4
    ch = relabel_in_place(view, lut, slab_voxels=slab)
    want = np.flatnonzero(before.ravel() == L2)
    assert sorted(ch.index.tolist()) == want.tolist()
    assert np.array_equal(view, _map(before, {L2: L4})) and (file == L4).sum() == want.size
    assert set(ch.old.tolist()) == {L2} and set(ch.new.tolist()) == {L4}


def test_relabel_of_wide_ids_and_ids_given_as_text():
    lab = _stack([L1, L2]).astype(np.uint16)
    lab[0, 0, 0] = 300
    assert relabel(lab, 300, L3)[0, 0, 0] == L3
    assert (relabel(lab, "20", "0") == L1).sum() == 0  # numbers as text are ids; "0" erases
    assert (relabel(lab, L1, 0) == 0).sum() == (lab == 0).sum() + (lab == L1).sum()


def test_swap_without_discs_leaves_the_discs():
    lab = _stack([L1, L1 + DISC, L3, L3 + DISC])
    assert np.array_equal(swap_levels(lab, L1, L3, with_discs=False), _map(lab, {L1: L3, L3: L1}))
    assert np.array_equal(swap_levels(lab, L1, L3), _map(lab, {L1: L3, L3: L1, L1 + DISC: L3 + DISC,
                                                                L3 + DISC: L1 + DISC}))


def test_split_plane_is_placed_in_millimetres():
    """With voxels 1 x 1 x 3 mm, the plane through (0, 10, 4) with normal (0, 1, 1) (in voxel
    index directions, so (0, 1, 3) in mm) puts voxel (r, c) below when
    (r - 10) * 1 + (c - 4) * 3 * 3 > 0."""
    lab = np.zeros((2, 20, 8), np.uint8)
    lab[:, :, :] = L3
    got = split_by_plane(lab, L3, (0, 10, 4), (0, 1, 1), L4, spacing=(1.0, 1.0, 3.0))
    r, c = np.meshgrid(np.arange(20), np.arange(8), indexing="ij")
    want = np.where((r - 10) * 1.0 + (c - 4) * 3.0 * 3.0 > 0, L4, L3)
    assert np.array_equal(got[0], want) and np.array_equal(got[1], want)
    assert np.array_equal(split_by_plane(lab, L5, (0, 10, 4), (0, 1, 0), L4), lab)  # absent: unchanged


def test_plane_from_points_uses_the_first_two_points():
    p, n = plane_from_points([(5, 10, 0), (5, 14, 4), (5, 30, 30), (5, 0, 0)])
    assert p.tolist() == [5, 10, 0] and n.tolist() == [0.0, 4.0, -4.0]
    _, back = plane_from_points([(5, 14, 4), (5, 10, 0)])  # drawn the other way: still inferior
    assert back.tolist() == [0.0, 4.0, -4.0]
    _, flat = plane_from_points([(5, 10, 0), (5, 10, 6)])  # a horizontal line: normal straight down
    assert flat.tolist() == [0.0, 6.0, 0.0]
    with pytest.raises(ValueError, match="coincide in the sagittal plane"):
        plane_from_points([(1, 10, 4), (7, 10, 4)])
    p, n = plane_from_points([(2, 3, 4)])
    assert p.tolist() == [2, 3, 4] and n.tolist() == [0.0, 1.0, 0.0]


def _pieces(dtype=np.uint8):
    lab = np.zeros((6, 40, 10), dtype)
    lab[1:5, 2:12, 2:8] = L1  # 240
    lab[1:3, 20:23, 2:4] = L1  # 12
    lab[4, 30, 5] = L1  # 1
    lab[1:5, 14:18, 2:8] = L2  # 96
    lab[0, 35:37, 0:2] = L2  # 4
    return lab


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_keep_largest_keeps_one_piece_each(dtype):
    lab = _pieces(dtype)
    got = keep_largest(lab)
    want = lab.copy()
    want[1:3, 20:23, 2:4] = 0
    want[4, 30, 5] = 0
    want[0, 35:37, 0:2] = 0
    assert np.array_equal(got, want)
    only_l2 = keep_largest(lab, structures=[L2])
    assert (only_l2 == L1).sum() == (lab == L1).sum() and (only_l2 == L2).sum() == 96
    assert np.array_equal(keep_largest(lab, locked=[L1, L2]), lab)


def test_remove_islands_by_structure_and_lock():
    lab = _pieces()
    got = remove_islands(lab, 13)  # pieces under 13 mm3 go
    assert (got == L1).sum() == 240 and (got == L2).sum() == 96
    only_l1 = remove_islands(lab, 13, structures=[L1])
    assert (only_l1 == L1).sum() == 240 and (only_l1 == L2).sum() == 100
    locked = remove_islands(lab, 13, locked=[L1])
    assert (locked == L1).sum() == 253 and (locked == L2).sum() == 96
    coarse = remove_islands(lab, 13, spacing=(2.0, 2.0, 2.0))  # 8 mm3 a voxel: only the single voxel goes
    assert (coarse == L1).sum() == 252 and (coarse == L2).sum() == 100


def test_fill_holes_per_structure_filter_and_lock():
    lab = np.zeros((5, 30, 9), np.uint16)
    lab[:, 2:9, 1:8] = L1
    lab[2, 5, 4] = 0  # an enclosed hole
    lab[:, 12:19, 1:8] = 300  # a wide id with a hole
    lab[2, 15, 4] = 0
    lab[:, 22:29, 1:8] = L2
    lab[2, 25, 4] = L3  # another structure inside: never overwritten
    got = fill_holes(lab)
    assert got[2, 5, 4] == L1 and got[2, 15, 4] == 300 and got[2, 25, 4] == L3
    assert (got == 0).sum() == (lab == 0).sum() - 2
    only = fill_holes(lab, structures=[300])
    assert only[2, 5, 4] == 0 and only[2, 15, 4] == 300
    locked = fill_holes(lab, locked=[L1])
    assert locked[2, 5, 4] == 0 and locked[2, 15, 4] == 300


def test_interpolation_follows_the_blend_of_two_discs():
    """A disc of radius 2 on slice 0 and of radius 8 on slice 6: slice k holds the points
    where the blended signed distances are <= 0 (the radius grows linearly, 2 + k)."""
    from scipy import ndimage

    n = 25
    yy, xx = np.mgrid[:n, :n]
    disc = lambda r: (yy - 12) ** 2 + (xx - 12) ** 2 <= r * r  # noqa: E731
    lab = np.zeros((7, n, n), np.uint8)
    lab[0][disc(2)] = L3
    lab[6][disc(8)] = L3

    def sdt(m):
        return ndimage.distance_transform_edt(~m) - ndimage.distance_transform_edt(m)

    got = interpolate_between_slices(lab, L3, 0, 6)
    for k in range(1, 6):
        t = k / 6
        want = (1 - t) * sdt(disc(2)) + t * sdt(disc(8)) <= 0
        assert np.array_equal(got[k] == L3, want), k
    assert (got[3] == L3).sum() > (got[1] == L3).sum()  # growing downwards


def test_interpolation_slice_bounds():
    lab = np.zeros((6, 10, 10), np.uint8)
    lab[0, 4:6, 4:6] = L3
    lab[5, 3:7, 3:7] = L3
    out = interpolate_between_slices(lab, L3, 5, 0)  # the last slice is allowed, in any order
    assert (out[1:5] == L3).any()
    with pytest.raises(ValueError, match=r"slices 0 and 6 must lie within 0-5"):
        interpolate_between_slices(lab, L3, 0, 6)
    with pytest.raises(ValueError, match=r"slices -1 and 5 must lie within 0-5"):
        interpolate_between_slices(lab, L3, -1, 5)
    lab[2, 4:6, 4:6] = L3
    assert (interpolate_between_slices(lab, L3, 0, 2)[1] == L3).any()  # one slice between: filled
    with pytest.raises(ValueError, match="no slice between them"):
        interpolate_between_slices(lab, L3, 1, 2)


def test_without_anchors_c1_moves_too():
    lab = _stack([1, 2])  # C1, C2
    assert np.array_equal(shift_levels(lab, +1, anchors=()), _map(lab, {1: 2, 2: 3}))


def test_naming_an_absent_t13_hints_at_switching_it_on():
    with pytest.raises(ValueError, match=r"From level T13 .*\(switch on the transitional level first\)"):
        shift_levels(_stack([T12, L1]), +1, "T13")


def test_landmarks_at_the_edges_of_the_table():
    lab = _stack([L1])
    lm = Landmarks(np.zeros((4, 3)), np.array([0, 255, 256, L1]), ("bg", "top", "past", "L1 centre"))
    _, moved = shift_levels(lab, +1, landmarks=lm)
    assert moved.structure_ids.tolist() == [0, 255, 256, L2]


def test_swapping_l5_with_s1_leaves_the_l5_s1_disc_alone():
    lab = _stack([L5, L5 + DISC, S1])
    assert np.array_equal(swap_levels(lab, L5, S1), _map(lab, {L5: S1, S1: L5}))


def test_plane_from_points_on_vertical_and_shallow_lines():
    _, n = plane_from_points([(5, 10, 4), (5, 14, 4)])  # straight down: normal anterior-posterior
    assert n.tolist() == [0.0, 0.0, 4.0]
    _, n = plane_from_points([(5, 10, 4), (5, 14, 3.5)])  # normal[1] = 0.5: already inferior
    assert n.tolist() == [0.0, 0.5, 4.0]


def test_a_piece_of_exactly_the_minimum_volume_stays():
    lab = np.zeros((4, 20, 20), np.uint8)
    lab[1:3, 2:10, 2:10] = L1
    lab[1:3, 15, 2:8] = L1  # 12 voxels
    assert (remove_islands(lab, 12) == L1).sum() == 128 + 12
    assert (remove_islands(lab, 12.5) == L1).sum() == 128


def test_fill_holes_leaves_background_outside_the_structure_in_its_box():
    lab = np.zeros((3, 12, 12), np.uint8)
    lab[:, 1:10, 1:4] = L1  # an L shape: its box holds background that is no hole
    lab[:, 7:10, 1:10] = L1
    lab[1, 8, 2] = 0  # a real hole
    got = fill_holes(lab)
    assert got[1, 8, 2] == L1 and (got == L1).sum() == (lab == L1).sum() + 1


def test_interpolation_between_inner_slices_and_on_the_zero_level():
    from scipy import ndimage

    n = 25
    yy, xx = np.mgrid[:n, :n]
    disc = lambda r: (yy - 12) ** 2 + (xx - 12) ** 2 <= r * r  # noqa: E731

    def sdt(m):
        return ndimage.distance_transform_edt(~m) - ndimage.distance_transform_edt(m)

    lab = np.zeros((9, n, n), np.uint8)
    lab[1][disc(3)] = L3
    lab[3][disc(4)] = L3  # half-way between them the blend is exactly 0 on a ring
    lab[7][disc(8)] = L3
    got = interpolate_between_slices(lab, L3, 1, 3)
    want = 0.5 * sdt(disc(3)) + 0.5 * sdt(disc(4)) <= 0
    assert ((0.5 * sdt(disc(3)) + 0.5 * sdt(disc(4))) == 0).any()
    assert np.array_equal(got[2] == L3, want)
    assert np.array_equal(np.delete(got, 2, axis=0), np.delete(lab, 2, axis=0))  # only slice 2 changes
    got = interpolate_between_slices(lab, L3, 3, 7)
    for k in range(4, 7):
        t = (k - 3) / 4
        assert np.array_equal(got[k] == L3, (1 - t) * sdt(disc(4)) + t * sdt(disc(8)) <= 0), k
    assert np.array_equal(got[:4], lab[:4]) and np.array_equal(got[7:], lab[7:])
