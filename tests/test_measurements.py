"""Spine measurements against analytic phantoms (wedge bodies, lordotic and scoliotic
columns at several orientations and voxel sizes) and one real TotalSegmentator case."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from measure_phantoms import Body, column, fitted_grid, rasterize
from napari_spine import SpineCase
from napari_spine.case import Landmarks
from napari_spine.measurements import genant_grade, measure_case, measure_labels

# (sagittal, coronal, axial) tilt, voxel size, array axis k -> world axis order[k], flips
ORIENTATIONS = [
    ((0, 0, 0), (1.0, 1.0, 1.0), (0, 1, 2), (1, 1, 1)),
    ((12, 0, 0), (0.8, 0.8, 2.0), (2, 0, 1), (-1, 1, -1)),
    ((0, 9, 0), (2.0, 0.7, 0.7), (1, 2, 0), (1, -1, 1)),
    ((0, 0, 14), (0.6, 1.5, 0.6), (0, 2, 1), (-1, -1, 1)),
    ((-11, 7, 13), (1.2, 1.2, 1.2), (2, 1, 0), (1, 1, -1)),
    ((9, -8, -12), (0.7, 2.5, 0.7), (1, 0, 2), (-1, 1, 1)),
]


def _heights(row):
    return np.array([row["height_posterior_mm"], row["height_middle_mm"], row["height_anterior_mm"]])


@pytest.mark.parametrize("rot, spacing, order, flips", ORIENTATIONS)
def test_wedge_heights_volume_and_grade_at_any_orientation(rot, spacing, order, flips):
    body = Body(22, (4.3, -7.4, 30.2), Ha=15.0, Hp=27.0, sagittal_deg=rot[0], coronal_deg=rot[1],
                axial_deg=rot[2])
    affine, shape = fitted_grid([body], spacing, order=order, flips=flips)
    (row,) = measure_labels(rasterize([body], affine, shape), affine).bodies
    truth = np.array([body.height_at(f) for f in (0.15, 0.50, 0.85)])  # 25.2, 21.0, 16.8
    assert np.all(np.abs(_heights(row) - truth) <= max(spacing)), (_heights(row), truth)
    assert row["volume_ml"] == pytest.approx(body.volume_mm3 / 1000, rel=0.04)
    assert row["extent_mm"] >= max(_heights(row))
    # anterior 16.8 of posterior 25.2: a 33 % loss, a moderate anterior wedge
    assert row["ratio_min_max"] == pytest.approx(16.8 / 25.2, abs=0.04)
    assert (row["genant_grade"], row["shape"]) == (2, "wedge")


def test_a_whole_vertebra_is_measured_on_its_body():
    alone = Body(21, (0, 0, 0), Ha=26, Hp=28, sagittal_deg=8)
    whole = Body(21, (0, 0, 0), Ha=26, Hp=28, sagittal_deg=8, arch=True)
    rows = []
    for b in (alone, whole):
        affine, shape = fitted_grid([whole], (0.9, 0.9, 1.5), order=(1, 2, 0))
        rows.append(measure_labels(rasterize([b], affine, shape), affine).bodies[0])
    assert "body cut" in rows[1]["notes"] and "body cut" not in rows[0]["notes"]
    assert np.all(np.abs(_heights(rows[1]) - _heights(rows[0])) <= 1.5)
    assert rows[1]["volume_ml"] == pytest.approx(alone.volume_mm3 / 1000, rel=0.06)
    assert rows[1]["depth_mm"] == pytest.approx(alone.D, abs=2.0)


SAGITTAL = [-10, -2, 6, 14, 22, 35]  # L1..L5, S1: lordosis L1-S1 = 45 deg (same wedges)


@pytest.mark.parametrize("spacing, order, flips", [
    ((1.0, 1.0, 1.0), (1, 2, 0), (1, -1, 1)),
    ((0.7, 0.7, 2.5), (1, 2, 0), (1, 1, 1)),  # 2.5 mm left-right
    ((0.6, 0.6, 1.25), (0, 1, 2), (1, -1, 1)),  # 1.25 mm slices
    ((2.0, 0.6, 0.6), (2, 0, 1), (-1, 1, -1)),  # 2 mm anteroposterior
])
@pytest.mark.parametrize("arch", [False, True])
def test_lumbar_lordosis_of_a_tilted_column(spacing, order, flips, arch):
    bodies = column((20, 21, 22, 23, 24, 26), SAGITTAL, Ha=26, Hp=28, arch=arch)
    affine, shape = fitted_grid(bodies, spacing, order=order, flips=flips)
    angles = {a["angle"]: a for a in measure_labels(rasterize(bodies, affine, shape), affine).angles}
    assert angles["lumbar lordosis L1-S1"]["angle_deg"] == pytest.approx(45.0, abs=1.0)
    for up, low in zip(("L1", "L2", "L3", "L4"), ("L2", "L3", "L4", "L5")):  # 8 deg each
        assert angles[f"segmental {up}-{low}"]["angle_deg"] == pytest.approx(8.0, abs=2.0)


def test_a_kyphotic_column_has_negative_lordosis():
    bodies = column((20, 21, 22, 23, 24, 26), [-s for s in SAGITTAL], Ha=27, Hp=27)
    affine, shape = fitted_grid(bodies, (1.0, 1.0, 1.0))
    angles = {a["angle"]: a for a in measure_labels(rasterize(bodies, affine, shape), affine).angles}
    assert angles["lumbar lordosis L1-S1"]["angle_deg"] == pytest.approx(-45.0, abs=1.0)


@pytest.mark.parametrize("spacing, order", [((1.0, 1.0, 1.0), (0, 1, 2)), ((0.7, 0.7, 2.5), (2, 1, 0))])
def test_cobb_angle_and_end_vertebrae_of_a_scoliotic_column(spacing, order):
    coronal = [-4, -13, -3, 9, 2, 0]  # most tilted: L2 (-13) and L4 (+9): Cobb 22
    bodies = column((20, 21, 22, 23, 24, 26), None, coronal, Ha=27, Hp=27)
    affine, shape = fitted_grid(bodies, spacing, order=order, flips=(-1, 1, 1))
    m = measure_labels(rasterize(bodies, affine, shape), affine)
    (cobb,) = [a for a in m.angles if a["angle"] == "Cobb"]
    assert cobb["angle_deg"] == pytest.approx(22.0, abs=1.0)
    assert (cobb["from"], cobb["to"]) == ("L2 superior", "L4 inferior")


def test_the_table_does_not_depend_on_the_array_axis_order():
    bodies = column((20, 21, 22), [0, 6, 12], [3, 0, -3], Ha=22, Hp=27)
    affine, shape = fitted_grid(bodies, (0.9, 1.1, 1.4))
    labels = rasterize(bodies, affine, shape)
    base = measure_labels(labels, affine)
    # the same voxels, stored transposed and flipped: the affine follows the array
    perm, flip = (2, 0, 1), 1
    moved = np.flip(labels.transpose(perm), axis=flip)
    a2 = affine.copy()
    a2[:, :3] = affine[:, list(perm)]
    a2[:3, 3] += a2[:3, flip] * (moved.shape[flip] - 1)
    a2[:3, flip] *= -1
    other = measure_labels(np.ascontiguousarray(moved), a2)
    for r1, r2 in zip(base.bodies + base.angles, other.bodies + other.angles):
        for k, v in r1.items():
            if isinstance(v, float):
                assert r2[k] == pytest.approx(v, abs=0.05), k
            else:
                assert r2[k] == v, k


def test_genant_grades_and_a_crushed_body_against_its_neighbours():
    assert [genant_grade(x) for x in (0.0, 0.19, 0.2, 0.249, 0.25, 0.399, 0.4, 0.9)] == [0, 0, 1, 1, 2, 2, 3, 3]
    bodies = column((20, 21, 22), Ha=27, Hp=27)
    bodies[1] = Body(21, bodies[1].centre, Ha=15, Hp=15)  # all three heights down to 15 of 27
    affine, shape = fitted_grid(bodies, (1.0, 1.0, 1.0))
    rows = measure_labels(rasterize(bodies, affine, shape), affine).bodies
    l2 = rows[1]
    assert l2["ratio_min_max"] > 0.9 and l2["ratio_neighbours"] == pytest.approx(15 / 27, abs=0.05)
    assert (l2["genant_grade"], l2["shape"]) == (3, "crush")
    assert rows[0]["genant_grade"] == 0 and rows[2]["genant_grade"] == 0


def test_disc_heights_and_disc_height_index():
    top = Body(22, (0, 0, 20), Ha=26, Hp=26)
    disc = Body(122, (0, 0, 0), Ha=11, Hp=7, W=44, D=32)  # L3/L4, higher in front
    low = Body(23, (0, 0, -20), Ha=26, Hp=26)
    affine, shape = fitted_grid([top, disc, low], (0.8, 0.8, 1.0), order=(0, 2, 1))
    m = measure_labels(rasterize([top, disc, low], affine, shape), affine)
    (row,) = m.discs
    assert row["level"] == "L3/L4"
    truth = np.array([disc.height_at(f) for f in (0.15, 0.5, 0.85)])
    assert np.all(np.abs(_heights(row) - truth) <= 1.0)
    assert row["disc_height_index"] == pytest.approx(9.0 / 26.0, abs=0.04)


def test_trabecular_intensity_leaves_the_cortex_out():
    body = Body(22, (0, 0, 0), Ha=26, Hp=26)
    affine, shape = fitted_grid([body], (1.0, 1.0, 1.0))
    labels = rasterize([body], affine, shape)
    from scipy import ndimage

    inside = ndimage.distance_transform_edt(labels > 0)
    image = np.where(inside > 2, 150, 900).astype(np.int16)  # a 2 mm cortex at 900 HU
    case = SpineCase.from_arrays(image, affine, labels, modality="CT")
    (row,) = measure_case(case).bodies
    assert row["hu_mean"] == 150.0 and row["hu_median"] == 150.0 and row["hu_voxels"] > 1000


def test_a_body_cut_by_the_field_of_view_is_listed_not_measured():
    bodies = column((20, 21, 22), Ha=27, Hp=27)
    affine, shape = fitted_grid(bodies, (1.0, 1.0, 1.0))  # array axis 2 runs superiorly
    labels = np.ascontiguousarray(rasterize(bodies, affine, shape)[:, :, 12:-12])  # L1, L3 cut
    affine = affine.copy()
    affine[:3, 3] += 12 * affine[:3, 2]
    rows = measure_labels(labels, affine).bodies
    assert [r["level"] for r in rows] == ["L1", "L2", "L3"]
    for cut in (rows[0], rows[2]):
        assert "field of view" in cut["notes"] and "height_middle_mm" not in cut
    assert rows[1]["height_middle_mm"] == pytest.approx(27.0, abs=1.0)
    assert rows[1]["ratio_neighbours"] is None  # its neighbours were not measured


def _trapezoid(cx, cy, Ha, Hp, D):
    """Outline (row, col) of a sagittal body: anterior on the left (smaller column)."""
    return np.array([[cy - Hp / 2, cx + D / 2], [cy + Hp / 2, cx + D / 2],
                     [cy + Ha / 2, cx - D / 2], [cy - Ha / 2, cx - D / 2]])


def test_contours_and_a_2d_mask_give_the_same_heights():
    rows, cols = 120, 90
    outline = _trapezoid(45.0, 60.0, 18.0, 26.0, 34.0)
    from skimage.draw import polygon

    mask = np.zeros((1, rows, cols), dtype=np.uint8)
    rr, cc = polygon(outline[:, 0], outline[:, 1], (rows, cols))
    mask[0, rr, cc] = 22
    affine = np.diag([-1.0, -1.0, -1.0, 1.0])[[0, 2, 1, 3]]  # (L, I, P) display axes
    affine = np.array([[-1.0, 0, 0, 0], [0, 0, -1.0, 0], [0, -1.0, 0, 0], [0, 0, 0, 1]])
    lm = Landmarks(np.c_[np.zeros(4), outline], np.full(4, 22))
    case = SpineCase.from_arrays(np.zeros((1, rows, cols), np.float32), affine, mask, landmarks=lm)
    truth = np.array([26 + (18 - 26) * f for f in (0.15, 0.5, 0.85)])
    from_mask = measure_case(case, source="mask")
    from_contour = measure_case(case, source="landmarks")
    assert from_contour.source == "landmarks"
    assert np.all(np.abs(_heights(from_mask.bodies[0]) - truth) <= 1.0)
    assert np.all(np.abs(_heights(from_contour.bodies[0]) - truth) <= 0.5)


def test_csv_and_json_exports_hold_the_table(tmp_path):
    bodies = column((20, 21, 22), [0, 5, 10], Ha=24, Hp=27)
    affine, shape = fitted_grid(bodies, (1.0, 1.0, 1.0))
    m = measure_labels(rasterize(bodies, affine, shape), affine, case="phantom/1")
    path = m.write_csv(tmp_path / "m.csv")
    m.write_csv(path, append=True)
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 2 * len(m.rows())
    l2 = [r for r in rows if r["kind"] == "body" and r["level"] == "L2"][0]
    assert float(l2["height_middle_mm"]) == m.bodies[1]["height_middle_mm"]
    import json

    doc = json.loads(m.write_json(tmp_path / "m.json").read_text())
    assert doc["bodies"][1]["height_middle_mm"] == m.bodies[1]["height_middle_mm"]
    assert {a["angle"] for a in doc["angles"]} >= {"segmental L1-L2", "segmental L2-L3"}


def test_lines_sit_on_their_bodies():
    bodies = column((20, 21), [0, 10], Ha=22, Hp=27)
    affine, shape = fitted_grid(bodies, (1.0, 1.0, 1.0))
    labels = rasterize(bodies, affine, shape)
    m = measure_labels(labels, affine)
    assert len(m.lines) == 6
    for line in m.lines:
        mid = np.round(line["voxels"].mean(0)).astype(int)
        assert labels[tuple(mid)] == line["structure_id"]
        length = np.linalg.norm((line["voxels"][1] - line["voxels"][0]) @ affine[:3, :3].T)
        assert length == pytest.approx(line["value"], abs=0.01)


def test_real_totalsegmentator_case_is_internally_consistent(realdata):
    from napari_spine import load_case

    folder = realdata / "totalseg_small"
    case = load_case(folder / "example_ct_sm.nii.gz", folder / "multilabel" / "example_seg.nii.gz")
    m = measure_case(case)
    by_level = {r["level"]: r for r in m.bodies}
    assert set(by_level) == {"T11", "T12", "L1", "L2"}
    measured = [r for r in m.bodies if "height_middle_mm" in r]
    assert measured, m.bodies
    voxel_ml = float(np.prod(case.spacing)) / 1000
    for r in measured:
        assert 0 < min(_heights(r)) and max(_heights(r)) <= r["extent_mm"]
        assert r["volume_ml"] == pytest.approx(r["voxels"] * voxel_ml, abs=1e-3)
        assert 15 <= r["height_middle_mm"] <= 40 and 50 < r["hu_mean"] < 400  # an adult lumbar body
    for r in m.bodies:
        if r not in measured:
            assert "field of view" in r["notes"]


def test_the_canal_bounds_the_body_when_the_labels_have_it():
    whole = Body(21, (0.3, 0.2, 0.1), Ha=26, Hp=28, sagittal_deg=8, arch=True)
    a = whole.axes[:, 1]
    canal = Body(61, tuple(np.asarray(whole.centre) - a * (whole.D / 2 + 6)), Ha=60, Hp=60, W=20, D=10,
                 sagittal_deg=8)
    affine, shape = fitted_grid([whole, canal], (0.9, 0.9, 1.5), order=(1, 2, 0))
    labels = rasterize([canal, whole], affine, shape)
    from napari_spine.measurements._structures import cut_body, label_clouds

    clouds = label_clouds(labels, affine, [21, 61])
    body, cut = cut_body(clouds[21], whole.axes[:, 2], canal=clouds[61])
    assert cut
    depth = (body.points - np.asarray(whole.centre)) @ a
    assert depth.min() >= -whole.D / 2 - 1.0  # nothing behind the posterior wall (the canal's front)
    assert len(body) * body.voxel_volume == pytest.approx(whole.volume_mm3, rel=0.06)
    row = measure_labels(labels, affine).bodies[0]
    assert row["depth_mm"] == pytest.approx(whole.D, abs=2.0)
