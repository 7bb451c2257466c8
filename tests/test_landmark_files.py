"""Landmark files onto a case: TPTBox POI JSON (local grid in another orientation, global
RAS and LPS, the docker layout) and the project's own files, with clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_spine import make_phantom
from napari_spine.errors import SpineIOError
from napari_spine.geometry import voxel_to_world, world_to_voxel
from napari_spine.io.export import export_landmarks
from napari_spine.io.landmarks import read_landmark_file


@pytest.fixture(scope="module")
def case():
    return make_phantom((20, 90, 60), (1.2, 1.5, 0.8), levels=("L1", "L4"), axcodes="LPS", seed=2)


def _poi_grid():
    """A POI grid unlike the case's: PIR order, 0.7 x 2 x 1.1 mm, rotated 10 degrees, shifted."""
    t = np.deg2rad(10)
    # columns: voxel axes P, I, R in RAS world, then a rotation about the S axis
    base = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], dtype=float)
    rz = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    rot = rz @ base
    zoom = np.array([0.7, 2.0, 1.1])
    origin = np.array([12.5, -40.0, 33.0])
    aff = np.eye(4)
    aff[:3, :3] = rot * zoom
    aff[:3, 3] = origin
    return rot, zoom, origin, aff


def test_a_local_poi_file_on_another_grid_lands_on_the_same_anatomy(case, tmp_path):
    rot, zoom, origin, aff = _poi_grid()
    world = voxel_to_world(case.affine, case.landmarks.coords)
    local = world_to_voxel(aff, world)
    pts: dict = {}
    for (x, y, z), sid in zip(local, case.landmarks.structure_ids):
        sid = int(sid)
        vert, loc = (sid - 100, 100) if sid > 100 else (sid, 50)
        pts.setdefault(str(vert), {})[str(loc)] = [x, y, z]
    head = {"direction": ["P", "I", "R"], "zoom": zoom.tolist(), "origin": origin.tolist(),
            "rotation": rot.tolist(), "shape": [50, 60, 70], "format": "POI",
            "level_one_info": "Vertebra_Instance", "level_two_info": "Location"}
    path = tmp_path / "sub-01_poi.json"
    path.write_text(json.dumps([head, pts]))
    lm = read_landmark_file(path, case)
    # every point back at its voxel (order by structure, as a dictionary keeps one per level)
    want = {int(s): c for s, c in zip(case.landmarks.structure_ids, case.landmarks.coords)}
    got = {int(s): c for s, c in zip(lm.structure_ids, lm.coords)}
    assert set(got) == set(want)
    for sid in want:
        assert np.allclose(got[sid], want[sid], atol=1e-9), sid
    names = dict(zip(lm.structure_ids.tolist(), lm.names))
    assert names[22] == "L3 body centre" and names[121] == "L2/L3 disc centre"


@pytest.mark.parametrize("system", ["nib", "itk"])
def test_a_global_poi_file_in_ras_or_lps(case, tmp_path, system):
    world = voxel_to_world(case.affine, case.landmarks.coords[:3])
    if system == "itk":
        world = world * [-1, -1, 1]
    ids = case.landmarks.structure_ids[:3]
    pts = {}
    for w, sid in zip(world, ids):
        pts.setdefault(int(sid) if sid < 100 else int(sid) - 100, {})[50 if sid < 100 else 100] = list(w)
    path = tmp_path / "g.json"
    path.write_text(json.dumps([{"format": "POI_GLOBAL", "coordinate_system": system}, pts]))
    lm = read_landmark_file(path, case)
    got = {int(s): c for s, c in zip(lm.structure_ids, lm.coords)}
    for sid, c in zip(ids, case.landmarks.coords[:3]):
        assert np.allclose(got[int(sid)], c, atol=1e-9)


def test_the_docker_layout_reads_label_as_location_times_256_plus_vertebra(case, tmp_path):
    rot, zoom, origin, aff = _poi_grid()
    target = case.landmarks.coords[0]
    x, y, z = world_to_voxel(aff, voxel_to_world(case.affine, target[None]))[0]
    head = {"direction": ["P", "I", "R"], "zoom": zoom.tolist(), "origin": origin.tolist(),
            "rotation": rot.tolist(), "format": "docker"}
    path = tmp_path / "ctd.json"
    path.write_text(json.dumps([head, {"label": 42 * 256 + 21, "X": x, "Y": y, "Z": z},
                                {"label": 23, "X": x, "Y": y, "Z": z}]))
    lm = read_landmark_file(path, case)
    assert lm.names == ("L2 spinous process", "L4 body centre")  # location 0 is the body centre
    assert lm.structure_ids.tolist() == [21, 23] and np.allclose(lm.coords[0], target)


def test_the_projects_own_files_still_read(case, tmp_path):
    for ext in (".json", ".csv"):
        path = export_landmarks(case, tmp_path / f"lm{ext}")
        lm = read_landmark_file(path, case)
        assert np.allclose(lm.coords, case.landmarks.coords) and lm.names == case.landmarks.names


@pytest.mark.parametrize("doc, words", [
    ([{"format": "POI", "zoom": [1, 1, 1]}, {"20": {"50": [1, 2, 3]}}], "no 'origin'"),
    ([{"format": "POI", "zoom": [1, 1, 1], "origin": [0, 0, 0], "rotation": [[0] * 3] * 3},
      {"20": {"50": [1, 2, 3]}}], "singular"),
    ([{"format": "POI_GLOBAL"}, {"20": {"50": [1, "x", 3]}}], "not three numbers"),
    ([{"format": "POI_GLOBAL"}, {"20": {"50": [1, float("nan"), 3]}}], "not finite"),
    ([{"format": "POI_GLOBAL"}, {"Q9": {"50": [1, 2, 3]}}], "unknown vertebra 'Q9'"),
    ([{"format": "POI_GLOBAL", "coordinate_system": "mni"}, {}], "coordinate_system 'mni'"),
    ([{"format": "docker", "zoom": [1, 1, 1]}, {"X": 1}], "needs label, X, Y and Z"),
    ([{"format": "weird"}], "format 'weird'"),
    ([], "not a TPTBox POI file"),
])
def test_malformed_poi_files_name_the_file_and_the_problem(case, tmp_path, doc, words):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SpineIOError, match=rf"bad\.json: .*{words}"):
        read_landmark_file(path, case)


def test_a_file_that_is_not_json_is_a_clean_error(case, tmp_path):
    path = tmp_path / "bad.json"
    path.write_bytes(b"\xff\xfe not json")
    with pytest.raises(SpineIOError, match=r"bad\.json: not a readable landmark file"):
        read_landmark_file(path, case)
    csv = tmp_path / "x.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(SpineIOError, match=r"x\.csv"):
        read_landmark_file(csv, case)


def test_tptbox_locations_are_named_as_tptbox_numbers_them(case, tmp_path):
    """TPTBox's Location ids (its vert_constants): each point is named by its own subregion."""
    expected = {40: "centre", 41: "vertebral arch", 42: "spinous process", 43: "left transverse process",
                44: "right transverse process", 45: "left superior articular process",
                46: "right superior articular process", 47: "left inferior articular process",
                48: "right inferior articular process", 49: "body", 50: "body centre", 51: "dens",
                52: "superior endplate", 53: "inferior endplate", 60: "spinal cord", 61: "spinal canal",
                62: "location 62", 100: "disc centre"}
    world = voxel_to_world(case.affine, case.landmarks.coords[:1])[0]
    path = tmp_path / "all.json"
    path.write_text(json.dumps([{"format": "POI_GLOBAL"}, {"22": {str(k): list(world) for k in expected}}]))
    lm = read_landmark_file(path, case)
    got = dict(zip(lm.names, lm.structure_ids.tolist()))
    for loc, words in expected.items():
        name = f"L3/L4 {words}" if loc == 100 else f"L3 {words}"
        assert name in got, name
        assert got[name] == (122 if loc == 100 else 22)


@pytest.mark.parametrize("doc", [
    [{"format": "POI"}, {"20": {"50": [1, 2, 3]}}, {"21": {"50": [1, 2, 3]}}],  # a third part
    [{"format": "POI_GLOBAL"}, [["20", "50", [1, 2, 3]]]],  # points not in a dictionary
])
def test_a_poi_file_is_a_header_and_one_dictionary(case, tmp_path, doc):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SpineIOError, match=r"bad\.json: a POI file holds a header and one dictionary"):
        read_landmark_file(path, case)
