"""The pieces of level identification, each against values worked out by hand: components
and their centroids in mm, the column's direction and local tangents, extents and depths,
specks, fragments and partial levels, contact and merging, waists, cut positions, the
sacrum's top, the anchors, the numbering's confidences, and the discs' names.

Spacings are anisotropic (a different size on every axis) so that a row reported in mm, or
an index taken on the wrong axis, shows."""

from __future__ import annotations

import numpy as np
import pytest

from napari_spine.anatomy import levels as lv
from napari_spine.anatomy import ontology

BODY, DISC, VERT = ontology.GENERIC_VERTEBRAL_BODY, ontology.GENERIC_DISC, ontology.GENERIC_VERTEBRA


def body(mask: np.ndarray, start=(0, 0, 0), sp=(1.0, 1.0, 1.0), *, edge=False, note="") -> lv._Body:
    """A body from a mask placed at ``start`` (voxels), its centroid worked out here."""
    mask = np.asarray(mask, bool)
    crop = tuple(slice(s, s + n) for s, n in zip(start, mask.shape))
    cen = (np.argwhere(mask).mean(axis=0) + np.asarray(start)) * np.asarray(sp, float)
    return lv._Body(crop, mask, cen, note=note, edge=edge)


def block(shape, start, sp=(1.0, 1.0, 1.0), **kw) -> lv._Body:
    return body(np.ones(shape, bool), start, sp, **kw)


# -- sequences, coordinates, components ----------------------------------------------------------
def test_the_default_sequence_is_the_usual_spine():
    want = (*[f"C{i}" for i in range(1, 8)], *[f"T{i}" for i in range(1, 13)],
            *[f"L{i}" for i in range(1, 6)], "S1")
    assert lv._sequence() == want == lv.standard_levels()
    assert lv._sequence(6, 13) == (*want[:19], "T13", *want[19:24], "L6", "S1")
    assert lv._sequence(1, 1) == (*want[:8], "L1", "S1")


def test_body_coordinates_are_offset_by_the_crop_then_scaled():
    m = np.zeros((2, 3, 2), bool)
    m[1, 2, 0] = True
    b = lv._Body((slice(4, 6), slice(10, 13), slice(7, 9)), m, np.zeros(3))
    assert b.coords_mm(np.array([0.5, 2.0, 3.0])).tolist() == [[2.5, 24.0, 21.0]]
    assert b.voxels == 1 and b.edge is False and b.note == ""


def test_components_centroids_in_mm_and_the_row_edges():
    lab = np.zeros((6, 20, 9), np.uint8)
    lab[1:3, 0:4, 2:4] = BODY  # reaches row 0: a partial level
    lab[1:3, 8:10, 0:2] = BODY  # at the edge of axis 2 only: whole
    lab[3:5, 16:20, 5:9] = VERT  # reaches the last row
    lab[0:2, 12:14, 6:8] = DISC
    lab[5, 5, 5] = 7  # another structure: not a body, not a disc
    sp = np.array([0.5, 2.0, 3.0])
    bodies, discs = lv._components(lab, (BODY, VERT), DISC, sp)
    got = sorted((tuple(b.centroid.round(6)), b.edge, b.voxels) for b in bodies)
    assert got == [((0.75, 3.0, 7.5), True, 16), ((0.75, 17.0, 1.5), False, 8), ((1.75, 35.0, 19.5), True, 32)]
    assert [(tuple(d.centroid), d.voxels) for d in discs] == [((0.25, 25.0, 19.5), 8)]
    assert all(b.mask.shape == tuple(s.stop - s.start for s in b.crop) for b in bodies)


# -- directions, extents, depths -----------------------------------------------------------------
def test_the_axis_of_two_points_points_inferior():
    assert lv._axis(np.array([[0.0, 5.0, 0.0]])).tolist() == [0.0, 1.0, 0.0]
    d = lv._axis(np.array([[0.0, 10.0, 4.0], [0.0, 4.0, 12.0]]))  # listed bottom first
    assert np.allclose(d, [0.0, 0.6, -0.8])


def test_tangents_are_the_chords_through_the_neighbours():
    axis = np.array([0.0, 1.0, 0.0])
    c = np.array([[0.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 20.0, 10.0], [0.0, 20.0, 20.0]])
    t = lv._tangents(c, axis)
    assert np.allclose(t, [[0, 1, 0], [0, 2 / np.sqrt(5), 1 / np.sqrt(5)], [0, 1 / np.sqrt(5), 2 / np.sqrt(5)], [0, 0, 1]])
    # a chord pointing up the column is turned round
    assert np.allclose(lv._tangents(c[::-1], axis)[0], [0, 0, -1])
    # one body, or neighbours at the same place: the column's own direction, never a NaN
    assert lv._tangents(c[:1], axis).tolist() == [[0.0, 1.0, 0.0]]
    assert lv._tangents(np.array([[1.0, 2.0, 3.0]] * 2), axis).tolist() == [[0.0, 1.0, 0.0]] * 2
    short = lv._tangents(np.array([[0.0, 0.0, 0.0], [0.0, 0.3, 0.4]]), axis)  # a 0.5 mm chord
    assert np.allclose(short, [[0, 0.6, 0.8]] * 2)


def test_extent_is_the_1st_to_99th_percentile():
    pts = np.zeros((101, 3))
    pts[:, 2] = np.arange(101) + 50.0
    assert lv._extent(pts, np.array([0.0, 0.0, 1.0])) == (51.0, 149.0)
    assert lv._extent(pts, np.array([0.0, 0.0, -1.0])) == (-149.0, -51.0)


def test_depth_is_measured_across_the_tangent_in_the_sagittal_plane():
    s = np.arange(101.0)
    # along AP with an upright column
    pts = np.stack([np.full(101, 3.0), np.full(101, 40.0), 20.0 + s], axis=1)
    assert lv._depth(pts, np.array([0.0, 1.0, 0.0])) == pytest.approx(98.0)
    # a tilted column (tangent 0.6 down, 0.8 forward): across it is (0, -0.8, 0.6)
    t = np.array([0.0, 0.6, 0.8])
    pts = np.array([5.0, 30.0, 10.0]) + s[:, None] * [0.0, -0.8, 0.6]
    assert lv._depth(pts, t) == pytest.approx(98.0)
    along = np.array([5.0, 30.0, 10.0]) + s[:, None] * t  # points along the tangent: no depth
    assert lv._depth(along, t) == pytest.approx(0.0, abs=1e-9)
    assert lv._depth(pts, np.array([0.0, 0.0, 1.0])) == 0.0  # a column lying along AP: none


def test_level_records_cannot_be_changed_after_the_fact():
    info = lv.LevelInfo(20, "L1", 0.9, "given", 10, (0.0, 1.0, 2.0))
    with pytest.raises(AttributeError):
        info.name = "L2"


# -- specks, fragments, partial levels -----------------------------------------------------------
SP = np.array([0.5, 2.0, 3.0])  # mm per voxel along display axes 0, 1, 2


def column(heights, gap=2, top=5, width=10, sp=SP):
    """Blocks ``width`` x h x ``width`` voxels down one column (rows from ``top``), ``gap``
    empty rows apart; none reaches the edge of a (width + 4, ..., width + 4) volume."""
    out, row = [], top
    for h in heights:
        out.append(block((width, h, width), (2, row, 2), sp))
        row += h + gap
    return out, (width + 4, row + top, width + 4)


def test_a_fragment_is_judged_against_two_neighbours_on_each_side():
    # voxel counts 3000, 200, 200, 1500, 200, 100, 5000, 200 (10 x h x 10 blocks): each small
    # one is under 30 % of the median of its neighbours (two above, two below); 1500 is not
    # (median of 200, 200, 200, 100 is 200) and neither are the ends (3000: median of 200,
    # 200 is 200; 5000: of 1500, 200, 200 is 200 ... both far above)
    bodies, shape = column([30, 2, 2, 15, 2, 1, 50, 2])
    res = lv.LevelResult(labels=np.zeros(shape, np.uint8))
    out = lv._clean(bodies, shape, SP, 1, res)
    assert [b.voxels for b in out] == [3000, 1500, 5000]
    starts = np.cumsum([5, *[h + 2 for h in [30, 2, 2, 15, 2, 1, 50]]])
    rows = starts + (np.array([30, 2, 2, 15, 2, 1, 50, 2]) - 1) / 2  # centroid rows
    assert res.ignored == [f"a piece of {100 * h} voxels at row {rows[i]:.0f}"
                           for i, h in ((1, 2), (2, 2), (4, 2), (5, 1), (7, 2))]
    assert not res.merges and not res.warnings


def test_a_piece_under_the_minimum_is_a_speck_and_one_at_it_is_not():
    bodies, shape = column([3, 3, 3], gap=3, width=2)  # 12 voxels each
    bodies[1] = block((2, 3, 2), (2, 11, 2), SP)
    bodies[1].mask[0, 0, 0] = False  # 11 voxels
    res = lv.LevelResult(labels=np.zeros(shape, np.uint8))
    out = lv._clean(bodies, shape, SP, 12, res)
    assert [b.voxels for b in out] == [12, 12]
    # its centroid row: rows 11..13 minus one voxel of row 11
    row = (11 * 3 + 12 * 4 + 13 * 4) / 11
    assert res.ignored == [f"a speck of 11 voxels at row {row:.0f}"] and f"{row:.0f}" == "12"
    out = lv._clean(column([3, 3], gap=3, width=2)[0], shape, SP, 12, res)
    assert [b.voxels for b in out] == [12, 12]


def test_a_fragment_touching_a_body_is_merged_and_the_centroid_weighted():
    host = block((10, 20, 10), (2, 10, 2), SP)  # rows 10..29: centroid row 19.5, 2000 voxels
    frag = block((10, 3, 10), (2, 30, 2), SP)  # rows 30..32: row 31, 300 voxels (< 30 % of 2000)
    shape = (14, 50, 14)
    res = lv.LevelResult(labels=np.zeros(shape, np.uint8))
    out = lv._clean([frag, host], shape, SP, 1, res)
    assert len(out) == 1 and out[0] is host and host.voxels == 2300
    want_row = (19.5 * 2000 + 31 * 300) / 2300  # 21.0
    assert host.centroid == pytest.approx([6.5 * 0.5, want_row * 2.0, 6.5 * 3.0])
    assert res.merges == ["a fragment of 300 voxels merged into the body at row 21"]
    assert host.crop == (slice(2, 12), slice(10, 33), slice(2, 12))
    assert host.mask.shape == (10, 23, 10) and host.mask.all()


def test_merging_keeps_every_voxel_where_it_was():
    host = body(np.eye(4, dtype=bool)[:, :, None].repeat(3, axis=2), (3, 10, 5))
    frag_mask = np.zeros((2, 2, 2), bool)
    frag_mask[1, 0, 1] = frag_mask[0, 1, 0] = True
    frag = body(frag_mask, (6, 14, 7))
    before = {tuple(p) for b in (host, frag) for p in np.argwhere(b.mask) + [s.start for s in b.crop]}
    lv._merge(host, frag)
    after = {tuple(p) for p in np.argwhere(host.mask) + [s.start for s in host.crop]}
    assert after == before and host.voxels == 14
    assert host.crop == (slice(3, 8), slice(10, 16), slice(5, 9)) and host.mask.shape == (5, 6, 4)


def test_small_pieces_at_the_ends_of_the_field_of_view_are_partial_levels():
    shape = (14, 60, 14)
    top_edge = block((10, 2, 10), (2, 0, 2), SP)  # rows 0..1: above every body, at the edge
    b1 = block((10, 15, 10), (2, 5, 2), SP)
    b2 = block((10, 15, 10), (2, 25, 2), SP)
    bottom_edge = block((10, 2, 10), (2, 58, 2), SP)  # the last rows
    res = lv.LevelResult(labels=np.zeros(shape, np.uint8))
    out = lv._clean([b2, bottom_edge, b1, top_edge], shape, SP, 1, res)
    assert out[:2] == [b1, b2] and {id(b) for b in out[2:]} == {id(top_edge), id(bottom_edge)}
    assert top_edge.note == bottom_edge.note == "partial at the edge of the field of view"
    assert b1.note == b2.note == "" and not res.ignored


def test_small_pieces_inside_the_field_of_view_are_ignored():
    shape = (14, 60, 14)
    b1 = block((10, 15, 10), (2, 5, 2), SP)  # centroid row 12
    b2 = block((10, 15, 10), (2, 25, 2), SP)
    above = block((10, 2, 10), (2, 1, 2), SP)  # above the bodies, but not at any edge
    # at the lateral edge (axis 2 starts at 0), beside the top body's centre row, not past it
    beside = body(np.ones((2, 3, 1), bool), (6, 11, 0), SP)
    res = lv.LevelResult(labels=np.zeros(shape, np.uint8))
    out = lv._clean([b1, b2, above, beside], shape, SP, 1, res)
    assert out == [b1, b2]
    assert sorted(res.ignored) == ["a piece of 200 voxels at row 2", "a piece of 6 voxels at row 12"]


# -- contact -------------------------------------------------------------------------------------
def test_contact_is_within_one_voxel_and_the_most_contact_wins():
    frag = block((2, 2, 2), (5, 5, 5))
    near = block((2, 1, 2), (5, 7, 5))  # the next row: 4 voxels face to face
    diag = block((1, 1, 1), (7, 4, 7))  # one voxel corner to corner
    far = block((2, 2, 2), (5, 8, 5))  # one empty row between
    assert lv._touching(frag, [far]) is None
    assert lv._touching(frag, [diag]) is diag  # a single voxel of contact counts
    assert lv._touching(frag, [diag, near, far]) is near
    twin = block((2, 1, 2), (5, 4, 5))  # the same contact above: the first listed (the upper) wins
    assert lv._touching(frag, [twin, near]) is twin and lv._touching(frag, [near, twin]) is near


def test_contact_does_not_reach_two_voxels_in_any_direction():
    # a hollow 5-voxel cube around a one-voxel body at its centre, two voxels from every face
    shell = np.ones((5, 5, 5), bool)
    shell[1:4, 1:4, 1:4] = False
    frag = body(shell, (3, 4, 5))
    inner = block((1, 1, 1), (5, 6, 7))
    assert lv._touching(frag, [inner]) is None
    inner2 = block((1, 1, 1), (4, 6, 7))  # one voxel from the shell's inner face
    assert lv._touching(frag, [inner, inner2]) is inner2


# -- waists ----------------------------------------------------------------------------------------
def profile(areas, lo=0.0, step=1.0):
    """Positions along the column whose histogram (bins of ``step`` from ``lo``) is ``areas``:
    ``areas[i]`` points at the start of bin ``i``; the last bin's start is the maximum."""
    return np.concatenate([np.full(int(a), lo + i * step) for i, a in enumerate(areas)])


def test_a_waist_is_cut_at_its_bin_centre_wherever_the_column_lies():
    areas = [100] * 10 + [10] + [100] * 10  # 20 mm long: the waist 10.5 mm from the top
    assert lv._waists(profile(areas), 1.0) == [10.5]
    assert lv._waists(profile(areas, lo=-100.0), 1.0) == [-89.5]
    assert lv._waists(profile(areas, lo=-100.0, step=0.5), 0.5, min_len=4.0) == [-94.75]
    assert lv._waists(profile([100] * 21), 1.0) == []  # no waist: no cut
    assert lv._waists(profile([100] * 7 + [10] + [100] * 7), 1.0) == []  # 14 mm: too short for two


def test_a_waist_exactly_the_minimum_length_from_both_ends():
    areas = [100] * 8 + [10] + [100] * 9  # 17 mm: the waist's centre 8.5 mm from either end
    assert lv._waists(profile(areas), 1.0, min_len=8.5) == [8.5]
    assert lv._waists(profile(areas), 1.0, min_len=8.6) == []


def test_a_dip_near_either_end_is_an_endplate_not_a_waist():
    assert lv._waists(profile([100] * 3 + [5] + [100] * 20), 1.0) == []
    assert lv._waists(profile([100] * 20 + [5] + [100] * 3), 1.0) == []


def test_the_waist_must_be_deep_against_the_largest_sections_within_three_lengths():
    # the largest section below the waist is the last bin: the whole column is histogrammed
    areas = [100] * 10 + [10] + [12] * 9 + [30]
    assert lv._waists(profile(areas), 1.0) == [10.5]
    # above the waist: 20s for 24 mm, then 100s; below it: 50s. The 100s count when one of
    # them is within 24 mm (3 x the minimum length) of the waist, not when they start 25 mm away
    assert lv._waists(profile([100] * 8 + [20] * 23 + [10] + [50] * 24), 1.0) == [31.5]
    assert lv._waists(profile([100] * 8 + [20] * 24 + [10] + [50] * 24), 1.0) == []
    # exactly 40 % is not deep enough
    assert lv._waists(profile([100] * 10 + [40] + [100] * 10), 1.0) == []
    assert lv._waists(profile([100] * 10 + [39] + [100] * 10), 1.0) == [10.5]


def test_one_waist_per_length_keeping_the_deepest_point():
    areas = [100] * 10 + [10, 100, 8] + [100] * 10  # two dips 2 mm apart: one waist, the deeper
    assert lv._waists(profile(areas), 1.0) == [12.5]
    areas = [100] * 10 + [8, 100, 10] + [100] * 10
    assert lv._waists(profile(areas), 1.0) == [10.5]
    areas = [100] * 10 + [8] + [100] * 7 + [8] + [100] * 10  # 8 mm apart: two waists
    assert lv._waists(profile(areas), 1.0) == [10.5, 18.5]
    areas = [100] * 10 + [8] + [100] * 6 + [7] + [100] * 10  # 7 mm apart and deeper: moved
    assert lv._waists(profile(areas), 1.0) == [17.5]


def test_a_slope_out_of_a_waist_is_not_another_waist():
    areas = [100] * 10 + [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15] + [100] * 10
    assert lv._waists(profile(areas), 1.0) == [10.5]
    assert lv._waists(profile(areas[::-1]), 1.0) == [20.5]


def test_waists_in_the_first_and_last_inner_bins_of_thick_slices():
    assert lv._waists(profile([100, 5, 100, 100], step=8.0), 8.0) == [12.0]
    last = np.r_[profile([100, 100, 5], step=8.0), [31.0] * 100]  # the last bin: 24 .. 32
    assert lv._waists(last, 8.0) == [20.0]


# -- where a fused body is cut -------------------------------------------------------------------
def test_cuts_at_the_discs_nearest_the_even_spacing():
    proj = np.linspace(10, 70, 61)
    discs = [28.0, 35.0, 49.0, 56.0, 14.9, 65.1]  # inside 15 .. 65 (a quarter body from each end)
    assert lv._cuts(proj, 10.0, 70.0, 3, discs, 20.0) == ([28.0, 49.0], "at the discs inside it")
    assert lv._cuts(proj, 10.0, 70.0, 2, [35.0], 20.0) == ([35.0], "at the discs inside it")


def test_discs_at_a_quarter_body_from_the_ends_are_not_inside():
    proj = np.linspace(10, 70, 61)
    cuts, how = lv._cuts(proj, 10.0, 70.0, 3, [15.0, 40.0, 65.0], 20.0)
    assert how == "at its narrowest cross-sections" and len(cuts) == 2
    cuts, how = lv._cuts(proj, 10.0, 70.0, 3, [11.0, 40.0, 12.0], 20.0)
    assert how == "at its narrowest cross-sections"


def narrowing(spots, lo=10.0, hi=70.0, base=40):
    """Positions 0.5 mm apart from ``lo`` to ``hi``, ``base`` of them at each; ``spots`` maps
    a position to its own count (a narrow or a wide cross-section)."""
    pos = np.arange(lo, hi + 0.25, 0.5)
    return np.concatenate([np.full(spots.get(float(p), base), p) for p in pos])


def test_without_discs_the_cut_is_the_narrowest_section_near_the_even_spacing():
    # k = 2 on 10 .. 70: the window is 40 +- 0.35 x 30 (29.5 .. 50.5)
    proj = narrowing({46.0: 5, 53.0: 1})  # the narrowest, 53, is outside the window
    assert lv._cuts(proj, 10.0, 70.0, 2, [], 5.0) == ([46.25], "at its narrowest cross-sections")
    proj = narrowing({31.0: 5, 28.0: 1})
    assert lv._cuts(proj, 10.0, 70.0, 2, [], 5.0) == ([31.25], "at its narrowest cross-sections")
    # k = 3: two windows, around 30 and 50 (+- 7)
    proj = narrowing({24.0: 2, 42.0: 1, 55.0: 3})
    assert lv._cuts(proj, 10.0, 70.0, 3, [], 5.0) == ([24.25, 55.25], "at its narrowest cross-sections")


def test_the_cross_sections_are_smoothed_over_a_tenth_of_a_body():
    # a one-bin notch (noise) against a 3 mm valley: unsmoothed the notch wins; smoothed over
    # 2 mm (a tenth of a 20 mm body) the valley does
    spots = {43.0: 0, **{p: 25 for p in np.arange(34.0, 37.0, 0.5)}}
    proj = narrowing(spots)
    (cut,), _ = lv._cuts(proj, 10.0, 70.0, 2, [], 20.0)
    assert 34.0 <= cut <= 37.0
    (cut,), _ = lv._cuts(proj, 10.0, 70.0, 2, [], 5.0)  # a 0.5 mm window: no smoothing
    assert cut == 43.25


def test_cut_pieces_keep_their_voxels_centroids_and_row_edges():
    sp = np.array([0.5, 2.0, 3.0])
    b = block((2, 40, 2), (3, 10, 4), sp)  # rows 10 .. 49 of a 50-row volume
    proj = b.coords_mm(sp) @ np.array([0.0, 1.0, 0.0])  # rows x 2 mm
    top, bottom = lv._cut(b, proj, [59.0], sp, 50)  # rows 10 .. 29 | 30 .. 49
    assert (top.voxels, bottom.voxels) == (80, 80)
    assert top.centroid == pytest.approx([3.5 * 0.5, 19.5 * 2, 4.5 * 3])
    assert bottom.centroid == pytest.approx([3.5 * 0.5, 39.5 * 2, 4.5 * 3])
    assert (bool(top.edge), bool(bottom.edge)) == (False, True) and top.note == "split from a fused body"
    assert (top.mask | bottom.mask).all() and not (top.mask & bottom.mask).any()
    _, bottom = lv._cut(b, proj, [59.0], sp, 51)  # one row short of the end: whole
    assert not bottom.edge
    b1 = block((2, 40, 2), (3, 1, 4), sp)  # from row 1: the top piece is whole, from row 0 not
    assert lv._cut(b1, b1.coords_mm(sp)[:, 1], [41.0], sp, 60)[0].edge == False  # noqa: E712
    b0 = block((2, 40, 2), (3, 0, 4), sp)
    assert lv._cut(b0, b0.coords_mm(sp)[:, 1], [41.0], sp, 60)[0].edge == True  # noqa: E712
    assert len(lv._cut(b, proj, [0.0, 59.0], sp, 50)) == 2  # a cut above the body: no empty piece


def test_the_pitch_skips_pairs_with_a_fused_body():
    bs = [block((1, 1, 1), (0, r, 0)) for r in (0, 30, 65, 100, 150)]
    axis = np.array([0.0, 1.0, 0.0])
    # 1.6 x 20 = 32: the third body is fused, its pairs (35, 35) do not count: median of 30, 50
    assert lv._pitch(bs, axis, np.array([20.0, 20.0, 32.0, 20.0, 20.0]), 20.0) == 40.0
    assert lv._pitch(bs, axis, np.array([20.0, 20.0, 31.9, 20.0, 20.0]), 20.0) == 35.0
    assert lv._pitch(bs, axis, np.array([20.0, 40.0, 20.0, 40.0, 20.0]), 20.0) == 25.0  # none: 1.25 x
    assert lv._pitch(bs[:2], axis, np.array([20.0, 20.0]), 20.0) == 30.0


def test_the_profile_counts_equal_slabs_top_first():
    m = np.zeros((3, 9, 3), bool)
    m[:, :3] = True  # 9 a row in the top third, 3 a row below
    m[1, 3:] = True
    b = body(m, (0, 4, 0), (2.0, 0.5, 1.0))
    assert lv._profile(b, np.array([2.0, 0.5, 1.0]), np.array([0.0, 1.0, 0.0])).tolist() == [27.0, 9.0, 9.0]


# -- the sacrum's top, the sacrum and C2 ---------------------------------------------------------
def rows_body(areas, top=0, sp=(1.0, 1.0, 1.0), **kw) -> lv._Body:
    """A body with ``areas[i]`` voxels in row ``top + i`` (filled in a 40 x 40 plane)."""
    m = np.zeros((40, len(areas), 40), bool)
    for i, a in enumerate(areas):
        plane = np.zeros(1600, bool)
        plane[: int(a)] = True
        m[:, i, :] = plane.reshape(40, 40)
    return body(m, (0, top, 0), sp, **kw)


DOWN = np.array([0.0, 1.0, 0.0])


def sacrum_top(areas, ref=10.0, top=0, n_rows=200):
    return lv._sacrum_top(rows_body(areas, top), DOWN, ref, 1.0, np.ones(3), n_rows)


def test_a_narrow_top_on_the_sacrum_is_split_off_at_its_waist():
    pieces = sacrum_top([16] * 10 + [4] + [100] * 29, top=5)
    assert [p.voxels for p in pieces] == [164, 2900]
    assert [p.note for p in pieces] == ["split from the top of the sacrum", "sacrum"]
    assert pieces[0].centroid[1] < pieces[1].centroid[1]


def test_a_sacrum_as_wide_at_its_top_is_left_whole():
    assert len(sacrum_top([75] * 10 + [4] + [100] * 29)) == 1  # exactly 75 % of what lies below
    assert len(sacrum_top([74] * 10 + [4] + [100] * 29)) == 2
    assert len(sacrum_top([76] * 10 + [4] + [100] * 29)) == 1  # with the waist row it would be under


def test_what_lies_below_the_cut_is_half_a_body():
    # the row 5 mm under the cut is wide: it counts (80 < 75 % of (4 x 100 + 1000) / 5) ...
    assert len(sacrum_top([80] * 10 + [4] + [100] * 4 + [1000] + [100] * 24)) == 2
    assert len(sacrum_top([80] * 10 + [4] + [100] * 5 + [1000] + [100] * 23)) == 1  # 6 mm: not
    # ... and the cut row itself does not (70 < 75, but not < 75 % of 84)
    assert len(sacrum_top([70] * 10 + [4] + [100] * 29)) == 2


def test_a_sacrum_shorter_than_two_bodies_is_not_cut():
    assert len(sacrum_top([16] * 10 + [4] + [100] * 9, top=50)) == 1  # 20 rows
    # exactly two bodies (ref 9.75: the last bin centre 19.5 below the top) is long enough
    pieces = lv._sacrum_top(rows_body([16] * 9 + [4] + [100] * 11, top=50), DOWN, 9.75, 1.0, np.ones(3), 200)
    assert [p.voxels for p in pieces] == [148, 1100]


def test_the_sacrum_is_large_wedge_shaped_and_whole():
    bodies = [rows_body([100] * 10, top=20 * i) for i in range(3)]
    wedge = [400] * 10 + [300] * 10 + [230] * 10  # 9300 voxels, the last third 57.5 % of the first
    heights = np.full(4, 10.0)
    for last, want in ((rows_body(wedge, top=60), "sacrum"),
                       (rows_body([400] * 10 + [300] * 10 + [240] * 10, top=60), ""),  # 60 %: no wedge
                       (rows_body(wedge, top=60, edge=True), ""),  # cut by the field of view
                       (rows_body([50] * 10 + [40] * 10 + [29] * 10, top=60), "")):  # small
        ordered = [*bodies, last]
        lv._mark_sacrum_and_c2(ordered, heights, 10.0, np.ones(3), DOWN)
        assert last.note == want
    # 1.5 x the median of the others exactly is large enough
    last = rows_body([65] * 10 + [50] * 10 + [35] * 10, top=60)  # 1500 voxels
    lv._mark_sacrum_and_c2([*bodies, last], heights, 10.0, np.ones(3), DOWN)
    assert last.note == "sacrum"
    last = rows_body([65] * 10 + [50] * 10 + [35] * 9 + [34], top=60)  # 1499 voxels
    lv._mark_sacrum_and_c2([*bodies, last], heights, 10.0, np.ones(3), DOWN)
    assert last.note == ""
    # fewer than three bodies: nothing is marked
    two = [rows_body([100] * 10), rows_body(wedge, top=20)]
    lv._mark_sacrum_and_c2(two, heights[:2], 10.0, np.ones(3), DOWN)
    assert two[1].note == ""


def test_c2_is_tall_and_narrows_upwards():
    rest = [rows_body([100] * 10, top=40 + 20 * i) for i in range(3)]
    dens = [20] * 10 + [60] * 10 + [100] * 10  # top third 20 % of the bottom third
    for h0, areas, edge, want in ((20.0, dens, False, "C2"), (13.5, dens, False, "C2"),
                                  (13.4, dens, False, ""), (28.0, dens, False, "C2"),
                                  (28.1, dens, False, ""),
                                  (20.0, [55] * 10 + [60] * 10 + [100] * 10, False, ""),  # 55 %
                                  (20.0, [54] * 10 + [60] * 10 + [100] * 10, False, "C2"),
                                  (20.0, dens, True, "")):
        first = rows_body(areas, top=5, edge=edge)
        ordered = [first, *rest]
        lv._mark_sacrum_and_c2(ordered, np.array([h0, 10.0, 10.0, 10.0]), 10.0, np.ones(3), DOWN)
        assert first.note == want, (h0, areas[0], edge)


# -- anchors -------------------------------------------------------------------------------------
def five_bodies(sp=(1.0, 1.0, 1.0), rows=18):
    return [block((4, rows, 4), (2, 5 + 25 * i, 2), sp) for i in range(5)]  # centroid rows 13.5 + 25 i


def rib(points, shape=(10, 140, 10)):
    m = np.zeros(shape, bool)
    for p in points:
        m[p] = True
    return m


def test_the_lowest_rib_names_the_body_at_its_head():
    bodies = five_bodies()
    ribs = {11: rib([(9, 40, 9)]), 12: rib([(9, 60, 9)])}  # one voxel each: the head is itself
    assert lv._rib_anchor(bodies, np.ones(3), ribs, DOWN) == ("ribs", 2, "T12")
    assert lv._rib_anchor(bodies, np.ones(3), {12: rib([])}, DOWN) is None
    # the head is the nearest 5 % of the rib: 5 points near the second body, the rest far out
    m = rib([(3, 36 + j, 7) for j in range(5)], (10, 140, 40))  # 5 points by the second body
    m[3, 118, 9] = True  # the sixth nearest, by the fifth body: it would pull the mean past 51
    m[0:2, 0:47, 39] = True  # the other 94 points of the rib, far from every body
    ribs = {12: m}
    assert lv._rib_anchor(bodies, np.ones(3), ribs, DOWN)[1] == 1


def test_two_bodies_are_enough_for_the_ribs():
    two = five_bodies()[:2]
    found = lv._anatomical_anchor(two, np.ones(3), {12: rib([(9, 38, 9)])})
    assert found == ("ribs", 1, "T12")
    assert lv._anatomical_anchor(two[:1], np.ones(3), {12: rib([(9, 10, 9)])}) is None


@pytest.mark.parametrize("rows, whole, want", [
    (17, False, (0, "C3", "cervical-sized bodies (16 mm): the top one taken as C3")),
    (19, False, (4, "T12", "thoracic-sized bodies (18 mm): the lowest taken as T12")),
    (24, False, (4, "T12", "thoracic-sized bodies (23 mm): the lowest taken as T12")),
    (26, False, (4, "L5", "lumbar-sized bodies (25 mm): the lowest taken as L5")),
    (24, True, (0, "C3", "cervical-sized vertebrae (23 mm): the top one taken as C3")),
    (26, True, (4, "T12", "thoracic-sized vertebrae (25 mm): the lowest taken as T12")),
    (35, True, (4, "L5", "lumbar-sized vertebrae (34 mm): the lowest taken as L5")),
])
def test_the_assumed_anchor_follows_the_body_height(rows, whole, want):
    assert lv._assumed_anchor(five_bodies(rows=rows), np.ones(3), whole) == want


def test_the_assumed_anchor_measures_whole_bodies_only():
    bodies = five_bodies(rows=30)  # lumbar-sized ...
    for b in bodies[:3]:  # ... but three partial ones at the edges, 5 rows each
        b.mask[:, 5:] = False
        b.edge = True
    assert lv._assumed_anchor(bodies, np.ones(3), False)[1] == "L5"
    for b in bodies:
        b.edge = True  # all partial: measured all the same
    assert lv._assumed_anchor(bodies, np.ones(3), False)[1] == "C3"


# -- numbering -----------------------------------------------------------------------------------
def test_confidence_falls_with_distance_splits_and_edges():
    bodies = five_bodies()
    bodies[2].note = "split from a fused body"
    bodies[3].edge = True
    res = lv.LevelResult(labels=np.zeros((10, 140, 10), np.uint8))
    names, conf, why = lv._number(bodies, "L1", np.ones(3), None, False, res)
    assert names == ["L1", "L2", "L3", "L4", "L5"] and why == "numbered from L1 as given"
    assert conf == [0.95, 0.94, 0.83, 0.87, 0.91]
    assert (res.anchor, res.anchor_source) == ("L1", "given")
    low = [block((1, 1, 1), (0, 5 * i, 0)) for i in range(120)]  # far from the anchor: a floor
    assert lv._number(low, "C1", np.ones(3), None, False, res)[1][-1] == 0.05


def test_numbering_from_c1_t13_and_l6():
    res = lv.LevelResult(labels=np.zeros((10, 140, 10), np.uint8))
    assert lv._number(five_bodies(), "C1", np.ones(3), None, False, res)[0] == ["C1", "C2", "C3", "C4", "C5"]
    assert lv._number(five_bodies(), "T12", np.ones(3), None, False, res)[0] == ["T12", "L1", "L2", "L3", "L4"]
    assert lv._number(five_bodies(), "T13", np.ones(3), None, False, res)[0] == ["T13", "L1", "L2", "L3", "L4"]
    assert lv._number(five_bodies(), "L5", np.ones(3), None, False, res)[0] == ["L5", "S1", None, None, None]
    assert lv._number(five_bodies(), "L6", np.ones(3), None, False, res)[0] == ["L6", "S1", None, None, None]


def sacrum_and_ribs(n_lumbar, rib_number=12):
    """Bodies down to a sacrum, a rib at the body ``n_lumbar + 1`` above it."""
    bodies = [block((4, 18, 4), (2, 5 + 25 * i, 2)) for i in range(n_lumbar + 3)]
    bodies[-1].note = "sacrum"
    k = len(bodies) - 2 - n_lumbar  # the last rib-bearing body
    row = 5 + 25 * k + 9
    return bodies, {rib_number: rib([(9, row, 9)], (10, 25 * len(bodies) + 10, 10))}


@pytest.mark.parametrize("n_lumbar, warn", [(5, False), (6, True), (4, True), (1, True)])
def test_the_sacrum_and_the_last_rib_count_the_lumbar_spine(n_lumbar, warn):
    bodies, ribs = sacrum_and_ribs(n_lumbar)
    res = lv.LevelResult(labels=np.zeros((1, 1, 1), np.uint8))
    names, _, why = lv._number(bodies, None, np.ones(3), ribs, False, res)
    assert names[-1] == "S1" and why == "counted from the sacrum"
    assert names[-2] == f"L{n_lumbar}" and names[-2 - n_lumbar] == "T12"
    assert res.warnings == ([] if not warn else
                            [f"12 rib-bearing and {n_lumbar} lumbar vertebrae above the sacrum "
                             "(transitional anatomy)"])


def test_a_rib_above_t12_does_not_count_the_lumbar_spine():
    bodies, ribs = sacrum_and_ribs(6, rib_number=11)
    res = lv.LevelResult(labels=np.zeros((1, 1, 1), np.uint8))
    names, _, _ = lv._number(bodies, None, np.ones(3), ribs, False, res)
    assert names[-2:] == ["L5", "S1"] and not res.warnings


def test_seven_lumbar_bodies_are_numbered_as_six_at_most():
    bodies, ribs = sacrum_and_ribs(7)
    res = lv.LevelResult(labels=np.zeros((1, 1, 1), np.uint8))
    names, _, _ = lv._number(bodies, None, np.ones(3), ribs, False, res)
    assert names[-3:] == ["L5", "L6", "S1"]


def test_written_levels_report_display_voxels():
    sp = np.array([0.5, 2.0, 3.0])
    bodies = five_bodies(sp)
    res = lv.LevelResult(labels=np.zeros((10, 140, 10), np.uint8))
    lv._write_bodies(bodies, ["L1", "L2", "L3", None, None], [0.9] * 5, "why", sp, res)
    assert [lvl.centroid for lvl in res.levels] == [(3.5, 13.5 + 25 * i, 3.5) for i in range(3)]
    assert res.bodies == [(20, 13.5), (21, 38.5), (22, 63.5)]
    assert res.warnings == ["2 body component(s) below S1 left unassigned"]
    res = lv.LevelResult(labels=np.zeros((10, 140, 10), np.uint8))
    lv._write_bodies(bodies, [None, "C1", "C2", "C3", "C4"], [0.9] * 5, "why", sp, res)
    assert res.warnings == ["1 body component(s) above C1 left unassigned"]
    assert res.levels[0].reason == "why"
    bodies[2].note = "split from a fused body"
    lv._write_bodies(bodies, [None, "C1", "C2", "C3", "C4"], [0.9] * 5, "why", sp, res)
    assert res.levels[5].reason == "why; split from a fused body"


# -- discs ---------------------------------------------------------------------------------------
def test_discs_take_the_name_of_the_body_above_and_report_rows():
    sp = np.array([0.5, 2.0, 3.0])
    bodies = five_bodies(sp)
    discs = [block((4, 4, 4), (2, 24 + 25 * i, 2), sp) for i in range(4)]  # rows 25.5 + 25 i
    beside = block((2, 2, 2), (8, 37, 8), sp)  # a row above the second body's centre, beside it
    res = lv.LevelResult(labels=np.zeros((10, 140, 10), np.uint8))
    lv._name_discs([*discs[::-1], beside], bodies, ["L1", "L2", "L3", "L4", "L5"], sp, res)
    assert res.discs == [(120, 25.5), (120, 37.5), (121, 50.5), (122, 75.5), (123, 100.5)]
    assert not res.warnings


def test_a_disc_above_the_first_body_is_named_from_the_sequence():
    bodies = five_bodies()[1:]
    disc = [block((4, 4, 4), (2, 10, 2))]  # above the first body
    for first, want, warn in (("L1", 119, ["the disc at row 12 has no body above it: named T12/L1 "
                                             "from the sequence"]),
                              ("S1", 124, ["the disc at row 12 has no body above it: named L5/S1 from "
                                           "the sequence"]),
                              ("C2", None, ["the disc at row 12 has no body above it: named C1/C2 from "
                                            "the sequence", "a disc at row 12 has no level above it; "
                                            "left unassigned"]),
                              ("C1", None, ["a disc at row 12 has no level above it; left unassigned"])):
        res = lv.LevelResult(labels=np.zeros((10, 140, 10), np.uint8))
        seq = list(lv._sequence(6, 13))
        names = [first] + [None] * 3 if first in ("S1",) else seq[seq.index(first):seq.index(first) + 4]
        lv._name_discs(disc, bodies, names, np.ones(3), res)
        assert [d for d, _ in res.discs] == ([] if want is None else [want]), first
        assert res.warnings == warn, first


def test_the_smallest_piece_counted_is_the_minimum_volume():
    lab = np.zeros((6, 60, 10), np.uint8)
    lab[1:5, 5:15, 1:9] = BODY  # 320 voxels, 20 mm tall and 24 mm deep
    lab[1:5, 25:35, 1:9] = BODY
    lab[2, 40:45, 2] = BODY  # 5 voxels: 15 mm3 at 0.5 x 2 x 3 mm
    lab[2, 17:22, 2] = DISC  # 5 voxels
    sp = (0.5, 2.0, 3.0)
    res = lv.identify_levels(lab, "L1", spacing=sp, min_volume_mm3=15.0)
    assert [v for v, _ in res.bodies] == [20, 21] and [d for d, _ in res.discs] == [120]
    assert res.ignored == ["a piece of 5 voxels at row 42"] and not res.splits
    res = lv.identify_levels(lab, "L1", spacing=sp, min_volume_mm3=18.0)  # 6 voxels
    assert [v for v, _ in res.bodies] == [20, 21] and res.discs == []
    assert res.ignored == ["a speck of 5 voxels at row 42"]
    one = np.zeros((3, 30, 3), np.uint8)
    one[1, 3, 1] = one[1, 20, 1] = BODY
    assert [v for v, _ in lv.identify_levels(one, "L2", min_volume_mm3=0.0).bodies] == [21, 22]


# -- what a split reports --------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["touching", "bridge"])
def test_splits_report_the_fused_bodys_row_and_height(how):
    import re

    from test_levels_anatomy import LUMBAR, spine

    sp = (1.5, 0.8, 1.2)
    truth, sem = spine(LUMBAR, sacrum=True, touching=(0, 5), bridge=how == "bridge", spacing=sp)
    res = lv.identify_levels(sem, spacing=sp)
    rows = []
    for upper, lower in (("T12", "L1"), ("L5", "S1")):
        fused = np.isin(truth, [ontology.vertebra_id(upper), ontology.vertebra_id(lower)])
        rows.append(f"{np.argwhere(fused)[:, 1].mean():.0f}")  # in display rows, not mm
    assert len(res.splits) == 2, res.splits  # nothing else is reported as split
    for text, row in zip(sorted(res.splits, key=lambda t: int(re.search(r"row (\d+)", t)[1])), rows):
        assert f"at row {row} split into 2 " in text, (text, row)
        m = re.match(r"a body of (\d+) mm", text)
        if m:  # two 26 mm bodies measured between their 1st and 99th percentile, plus a row
            assert 50 <= int(m[1]) <= 53, text
    assert not res.merges and not res.ignored and not res.warnings


# -- boundaries the first round let through ------------------------------------------------------
def test_a_piece_of_exactly_30_percent_of_its_neighbours_is_a_body():
    bodies, shape = column([10, 10, 3, 10, 10])  # 1000, 1000, 300, 1000, 1000 voxels
    res = lv.LevelResult(labels=np.zeros(shape, np.uint8))
    assert [b.voxels for b in lv._clean(bodies, shape, SP, 1, res)] == [1000, 1000, 300, 1000, 1000]
    bodies, shape = column([10, 10, 3, 10, 10])
    bodies[2].mask[0, 0, 0] = False  # 299
    assert [b.voxels for b in lv._clean(bodies, shape, SP, 1, res)] == [1000, 1000, 1000, 1000]


def test_a_piece_beside_the_lowest_body_is_not_past_it():
    shape = (14, 60, 14)
    b1 = block((10, 15, 10), (2, 5, 2), SP)
    b2 = block((10, 15, 10), (2, 25, 2), SP)  # centroid row 32
    beside = body(np.ones((2, 3, 1), bool), (6, 31, 0), SP)  # at the lateral edge, row 32
    res = lv.LevelResult(labels=np.zeros(shape, np.uint8))
    assert lv._clean([b1, b2, beside], shape, SP, 1, res) == [b1, b2]
    assert res.ignored == ["a piece of 6 voxels at row 32"]


def test_three_bodies_are_enough_to_find_the_sacrum():
    bodies = [rows_body([100] * 10, top=20 * i) for i in range(2)]
    last = rows_body([400] * 10 + [300] * 10 + [230] * 10, top=40)
    lv._mark_sacrum_and_c2([*bodies, last], np.full(3, 10.0), 10.0, np.ones(3), DOWN)
    assert last.note == "sacrum"


def test_the_sacrums_top_window_is_closed_at_both_ends():
    # ref 12.5: the cut is looked for between 7.5 and 17.5 mm below the top, both included
    pieces = lv._sacrum_top(rows_body([16] * 7 + [4] + [100] * 32), DOWN, 12.5, 1.0, np.ones(3), 200)
    assert [p.voxels for p in pieces] == [116, 3200]
    pieces = lv._sacrum_top(rows_body([16] * 17 + [4] + [100] * 28), DOWN, 12.5, 1.0, np.ones(3), 200)
    assert [p.voxels for p in pieces] == [276, 2800]


def test_a_one_bin_notch_is_not_smoothed_for_a_small_body():
    proj = narrowing({43.0: 0, 43.5: 10})
    assert lv._cuts(proj, 10.0, 70.0, 2, [], 5.0) == ([43.25], "at its narrowest cross-sections")


@pytest.mark.parametrize("deep", [1, 4])
def test_bodies_a_few_mm_deep_are_not_split_by_shape(deep):
    lab = np.zeros((4, 80, 6), np.uint8)
    for top in (5, 30, 55):
        lab[1:3, top:top + 20, 1:1 + deep] = BODY  # 20 mm tall, at most 3 mm deep in AP
    res = lv.identify_levels(lab, "L1", min_volume_mm3=1.0)
    assert [v for v, _ in res.bodies] == [20, 21, 22] and not res.splits


def test_bodies_much_taller_than_their_depth_are_split_by_shape():
    # three pairs of bodies fused without a waist: 31 rows (1 mm) tall, 17 mm deep. The median
    # height looks like one body, but it is over 2.2 x 0.8 x the depth: each is cut in two.
    # Their height: 30 mm between the first and the last row, plus a row
    lab = np.zeros((4, 120, 24), np.uint8)
    for top in (5, 42, 79):
        lab[1:3, top:top + 31, 2:19] = BODY
    res = lv.identify_levels(lab, "T10", min_volume_mm3=1.0)
    assert [v for v, _ in res.bodies] == [17, 18, 19, 20, 21, 22]
    assert res.splits == [f"a body of 31 mm at row {top + 15} split into 2 at its narrowest cross-sections"
                          for top in (5, 42, 79)]


def test_a_split_piece_at_the_last_row_is_a_partial_level():
    lab = np.zeros((4, 110, 24), np.uint8)
    for top in (5, 42, 79):
        lab[1:3, top:top + 31, 2:19] = BODY  # the last pair reaches the last row
    res = lv.identify_levels(lab, "T10", min_volume_mm3=1.0)
    assert [v for v, _ in res.bodies] == [17, 18, 19, 20, 21, 22]
    # from the given anchor: 0.95, less 0.01 a level, 0.1 for a split, 0.05 at the edge
    assert [lvl.confidence for lvl in res.levels] == [0.85, 0.84, 0.83, 0.82, 0.81, 0.75]



def test_of_two_equally_deep_dips_the_first_is_the_waist():
    assert lv._waists(profile([100] * 10 + [8, 100, 8] + [100] * 10), 1.0) == [10.5]


def test_a_narrower_body_fused_onto_the_sacrum_is_split_off_and_reported():
    sp = np.array([1.0, 2.0, 1.0])
    # four single bodies (10 rows of 2 mm), a fused pair (20 rows), then L5 (10 rows, narrowing
    # to its lower endplate) on a sacrum wide at its top and tapering
    bodies = [rows_body([100] * 10, top=2 + 12 * i, sp=sp) for i in range(4)]
    pair = rows_body([100] * 20, top=50, sp=sp)
    sacrum = list(np.linspace(800, 20, 40).astype(int))
    last = rows_body([40] * 8 + [30, 25] + sacrum, top=74, sp=sp)
    res = lv.LevelResult(labels=np.zeros((40, 200, 40), np.uint8))
    out = lv._split_fused([*bodies, pair, last], [], sp, 200, res)
    row = (40 * sum(range(74, 82)) + 30 * 82 + 25 * 83) / 375  # the L5 piece's centroid row
    # the pair: 19 rows of 2 mm between its first and last row, plus a row: 40 mm
    assert res.splits == [f"a body fused onto the sacrum at row {row:.0f} split off at its narrowest "
                          "cross-section",
                          "a body of 40 mm at row 60 split into 2 at its narrowest cross-sections"]
    assert [b.note for b in out[4:6]] == ["split from a fused body"] * 2
    assert [(b.voxels, b.note) for b in out[6:]] == [(375, "split from the top of the sacrum"),
                                                     (sum(sacrum), "sacrum")]


@pytest.mark.parametrize("deep, split", [(5, False), (6, True)])
def test_a_mask_5_mm_deep_is_judged_by_its_shape(deep, split):
    # 20 mm tall bodies: deeper than 5 mm, over 2.2 x 0.8 x their depth, they look fused
    lab = np.zeros((4, 80, 10), np.uint8)
    for top in (5, 30, 55):
        lab[1:3, top:top + 20, 1:1 + deep] = BODY  # depth between the extreme voxels: deep - 1
    res = lv.identify_levels(lab, "T1", min_volume_mm3=1.0)
    assert bool(res.splits) is split


def test_partial_levels_do_not_set_the_typical_height():
    # three whole 20 mm bodies between two 5 mm slivers cut by the field of view: measured
    # against the slivers the whole bodies would look fused
    lab = np.zeros((4, 96, 20), np.uint8)
    lab[1:3, 0:5, 2:18] = BODY
    for top in (12, 40, 68):
        lab[1:3, top:top + 20, 2:18] = BODY
    lab[1:3, 91:96, 2:18] = BODY
    res = lv.identify_levels(lab, "T11", min_volume_mm3=1.0)
    assert [v for v, _ in res.bodies] == [18, 19, 20, 21, 22] and not res.splits


def test_a_body_half_again_as_tall_is_still_one_body():
    # bodies of 20 rows 1 row apart, one of 31 (1.55 x): under 1.6 x it is one body, even
    # though with the disc space (31 + 1) / (20 + 1) would round to two levels
    lab = np.zeros((4, 190, 40), np.uint8)
    top = 2
    for h in (20, 20, 20, 31, 20, 20, 20, 20):
        lab[1:3, top:top + h, 2:38] = BODY
        top += h + 1
    res = lv.identify_levels(lab, "T6", min_volume_mm3=1.0)
    assert [v for v, _ in res.bodies] == list(range(13, 21)) and not res.splits


def test_a_wide_disc_space_counts_in_the_number_of_fused_levels():
    # 10-row bodies 10 rows apart; one pair fused without its disc (21 rows): counted with the
    # disc space, (21 + 10) / (10 + 10) rounds to two levels; without it, to one
    lab = np.zeros((4, 130, 20), np.uint8)
    for top, h in ((5, 10), (25, 10), (45, 21), (76, 10), (96, 10)):
        lab[1:3, top:top + h, 2:18] = BODY
    res = lv.identify_levels(lab, "L1", min_volume_mm3=1.0)
    assert [v for v, _ in res.bodies] == [20, 21, 22, 23, 24, 26]
    assert len(res.splits) == 1


def test_a_sacrum_is_large_against_the_median_of_the_bodies_above():
    bodies = [rows_body([100] * 10, top=0), rows_body([300] * 10, top=20), rows_body([300] * 10, top=40)]
    # 4000 voxels: 1.5 x the median (3000) would be 4500; the first two alone give 2000
    last = rows_body([180] * 10 + [130] * 10 + [90] * 10, top=60)
    lv._mark_sacrum_and_c2([*bodies, last], np.full(4, 10.0), 10.0, np.ones(3), DOWN)
    assert last.voxels == 4000 and last.note == ""


@pytest.mark.parametrize("bad", ["L7", "T14", "S2", "C0"])
def test_anchors_past_the_longest_spine_are_refused(bad):
    with pytest.raises(ValueError, match=f"anchor '{bad}' is not a level"):
        lv.identify_levels(np.zeros((2, 2, 2), np.uint8), bad)


def test_bodies_past_s1_are_said_below_it():
    res = lv.LevelResult(labels=np.zeros((10, 140, 10), np.uint8))
    lv._write_bodies(five_bodies(), ["L3", "L4", "L5", "S1", None], [0.9] * 5, "why", np.ones(3), res)
    assert res.warnings == ["1 body component(s) below S1 left unassigned"]


def test_a_column_seen_only_in_partial_levels_is_still_measured():
    # both bodies are cut by the field of view: the typical height comes from them all
    lab = np.zeros((4, 70, 40), np.uint8)
    lab[1:3, 0:10, 2:38] = BODY
    lab[1:3, 20:70, 2:38] = BODY  # 50 mm against a median of 30: two levels
    res = lv.identify_levels(lab, "L1", min_volume_mm3=1.0)
    assert [v for v, _ in res.bodies] == [20, 21, 22]
    assert res.splits == ["a body of 50 mm at row 44 split into 2 at its narrowest cross-sections"]
