"""Manual rulers: values against analytic geometry (anisotropic and oblique grids, where
voxel-space arithmetic gives other numbers), Cobb pairing, and saving with the landmarks."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from napari_spine.errors import ExportError
from napari_spine.io.export import export_landmarks, read_landmarks, read_rulers
from napari_spine.measurements.rulers import (
    Ruler,
    angle_deg,
    cobb_deg,
    distance_mm,
    rulers_from_shapes,
    shape_texts,
)
from napari_spine.synthetic import make_phantom


def _oblique(scale, deg=30.0, origin=(10.0, -20.0, 5.0)) -> np.ndarray:
    t = np.radians(deg)
    rot = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    a = np.eye(4)
    a[:3, :3] = rot @ np.diag(scale)
    a[:3, 3] = origin
    return a


def test_distance_is_in_millimetres_on_any_grid():
    aff = _oblique((0.6, 0.8, 1.5))
    # (5, 5, 2) voxels are (3, 4, 3) mm whatever the rotation: sqrt(34), not sqrt(54) voxels
    assert distance_mm(aff, (1, 2, 3), (6, 7, 5)) == pytest.approx(np.sqrt(34), abs=1e-9)


def test_angle_uses_the_voxel_size():
    aff = _oblique((1.0, np.sqrt(3.0), 2.0), deg=-70)
    # rays (1, 0, 0) and (1, 1, 0) voxels: 45 degrees in voxels, 60 degrees in millimetres
    assert angle_deg(aff, (5, 4, 4), (4, 4, 4), (5, 5, 4)) == pytest.approx(60.0, abs=1e-9)
    assert angle_deg(aff, (4, 4, 4), (4, 4, 4), (5, 5, 4)) is None


@pytest.mark.parametrize("tilt_a, tilt_b, expected", [(12.0, -11.0, 23.0), (50.0, -50.0, 80.0),
                                                      (5.0, 5.0, 0.0)])
def test_cobb_is_the_acute_angle_between_the_lines_however_drawn(tilt_a, tilt_b, expected):
    aff = _oblique((0.7, 0.7, 2.0), deg=0)
    def line(deg, centre):  # a line in the coronal plane (display axes 0 and 1), 20 mm long
        d = np.array([np.cos(np.radians(deg)), np.sin(np.radians(deg)), 0.0]) * 10 / 0.7
        return np.asarray(centre) - d, np.asarray(centre) + d
    a0, a1 = line(tilt_a, (30, 20, 8))
    b0, b1 = line(tilt_b, (30, 70, 8))
    assert cobb_deg(aff, a0, a1, b0, b1) == pytest.approx(expected, abs=1e-9)
    assert cobb_deg(aff, a1, a0, b0, b1) == pytest.approx(expected, abs=1e-9)  # drawn backwards


def test_cobb_lines_pair_in_drawing_order_and_show_the_same_value():
    aff = np.diag([1.0, 1.0, 1.0, 1.0])
    shapes = [np.array([[0, 0, 0], [10, 0, 0]]),            # distance 10
              np.array([[0, 0, 5], [10, 0, 5]]),            # Cobb line 1 (horizontal)
              np.array([[0, 0, 0], [5, 0, 0], [5, 5, 0]]),  # angle 90 at the middle point
              np.array([[0, 0, 9], [10, 10, 9]]),           # Cobb line 2: 45 against line 1
              np.array([[0, 3, 3], [4, 3, 3]])]             # a Cobb line still alone
    kinds = ["distance", "cobb", "angle", "cobb", "cobb"]
    rulers = rulers_from_shapes(shapes, kinds)
    assert [r.kind for r in rulers] == ["distance", "cobb", "angle", "cobb"]
    assert [r.value(aff) for r in rulers[:3]] == pytest.approx([10.0, 45.0, 90.0])
    assert rulers[3].value(aff) is None
    texts = shape_texts(shapes, kinds, aff)
    assert texts[0] == "10.0 mm" and texts[1] == texts[3] == "Cobb 45.0°" and texts[2] == "90.0°"
    assert "second line" in texts[4]
    with pytest.raises(ValueError, match="unknown ruler kind"):
        rulers_from_shapes(shapes[:1], ["area"])


def test_rulers_are_saved_with_the_landmarks_and_land_on_the_same_anatomy(tmp_path):
    case = make_phantom((24, 80, 48), (1.5, 1.0, 0.8), levels=("L2", "L5"), axcodes="PIR", seed=2)
    rulers = [Ruler("distance", np.array([[3.0, 10.0, 7.0], [20.0, 61.0, 40.0]]), "canal"),
              Ruler("angle", np.array([[3.0, 10, 7], [12, 40, 20], [20, 12, 40]])),
              Ruler("cobb", np.array([[2.0, 10, 8], [20, 14, 8], [2, 60, 8], [20, 52, 8]]))]
    expected = [r.value(case.affine) for r in rulers]
    assert expected[0] == pytest.approx(np.linalg.norm(np.array([17, 51, 33]) * (1.5, 1.0, 0.8)))
    j = export_landmarks(case, tmp_path / "lm.json", rulers=rulers)
    c = export_landmarks(case, tmp_path / "lm.csv", rulers=rulers)
    doc = json.loads(j.read_text())
    assert [r["kind"] for r in doc["rulers"]] == ["distance", "angle", "cobb"]
    assert [r["value"] for r in doc["rulers"]] == pytest.approx(expected, abs=1e-3)
    assert len(read_landmarks(j, case)) == len(case.landmarks)  # the landmarks are still there
    side = tmp_path / "lm_rulers.csv"
    assert len(list(csv.DictReader(side.open()))) == 2 + 3 + 4  # a row a point
    # the same anatomy on another grid: the same patient stored in another axis order
    other = make_phantom((24, 80, 48), (1.5, 1.0, 0.8), levels=("L2", "L5"), axcodes="LAS", seed=2)
    for path in (j, c):
        back = read_rulers(path, case)
        assert [r.kind for r in back] == ["distance", "angle", "cobb"]
        assert back[0].label == "canal"
        for r, orig in zip(back, rulers, strict=True):
            assert np.allclose(r.points, orig.points, atol=1e-6)
        moved = read_rulers(path, other)
        assert [r.value(other.affine) for r in moved] == pytest.approx(expected, abs=1e-6)


def test_rulers_alone_are_saved_and_a_broken_ruler_file_is_named(tmp_path):
    case = make_phantom((16, 48, 32), levels=("L3", "L4"))
    only = Ruler("distance", np.array([[1.0, 2, 3], [4, 5, 6]]))
    path = export_landmarks(case.with_landmarks(None), tmp_path / "r.json", rulers=[only])
    assert len(read_rulers(path, case)) == 1
    doc = json.loads(path.read_text())
    doc["rulers"][0].pop("points_ras_mm")
    path.write_text(json.dumps(doc))
    with pytest.raises(ExportError, match="r.json"):
        read_rulers(path, case)
    assert read_rulers(export_landmarks(case, tmp_path / "n.json"), case) == []


def test_drawn_again_the_rulers_are_the_same():
    from napari_spine.measurements.rulers import shapes_of

    rulers = [Ruler("cobb", np.arange(12.0).reshape(4, 3)), Ruler("angle", np.ones((3, 3)) * [1, 2, 3]),
              Ruler("distance", np.array([[0.0, 0, 0], [1, 2, 3]]))]
    drawn = shapes_of(rulers)
    assert [(t, k) for _, t, k in drawn] == [("line", "cobb"), ("line", "cobb"), ("path", "angle"),
                                             ("line", "distance")]
    again = rulers_from_shapes([p for p, _, _ in drawn], [k for _, _, k in drawn])
    assert [r.kind for r in again] == ["cobb", "angle", "distance"]
    for a, b in zip(again, rulers, strict=True):
        assert np.array_equal(a.points, b.points)


def test_a_landmarks_file_that_is_not_json_is_named(tmp_path):
    case = make_phantom((16, 48, 32), levels=("L3", "L4"))
    bad = tmp_path / "lm.json"
    bad.write_text("{ not json")
    with pytest.raises(ExportError, match="lm.json"):
        read_rulers(bad, case)


def test_degenerate_and_mismatched_rulers_are_refused_or_empty():
    import dataclasses

    aff = np.eye(4)
    z = np.zeros(3)
    assert cobb_deg(aff, z, z, z, (1, 0, 0)) is None  # the first line has no length
    assert cobb_deg(aff, z, (1, 0, 0), z, z) is None  # the second has none
    assert angle_deg(aff, (1, 0, 0), z, z) is None
    # a path of four points: the angle is at its second point, between the first and third
    path = np.array([[1.0, 0, 0], [0, 0, 0], [0, 1, 0], [5, 5, 5]])
    angle = rulers_from_shapes([path], ["angle"])[0]
    assert angle.value(aff) == pytest.approx(90.0) and len(angle.points) == 3  # saved: three
    with pytest.raises(ValueError):
        rulers_from_shapes([path, path], ["angle"])  # a kind for every shape
    r = Ruler("distance", np.array([[1.0, 2, 3], [6, 7, 5]]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.kind = "angle"  # a ruler does not change under the code holding it
    row = r.row(_oblique((0.6, 0.8, 1.5)))
    assert row["value"] == 5.831 and row["unit"] == "mm"  # sqrt(34), to the micrometre
    assert Ruler("distance", np.array([z, (1.0, 1, 1)])).row(aff)["value"] == 1.732  # not 1.7321
