from __future__ import annotations

import csv

import numpy as np

from napari_spine._napari.panels.measurements import LINES_LAYER, MeasurementsWidget

PLUGIN = "napari-spine"


def _setup(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "ct_lumbar")
    _, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine measurements")
    assert isinstance(w, MeasurementsWidget)
    return viewer, w


def test_measures_the_edited_layer_and_draws_the_lines(make_napari_viewer, tmp_path):
    viewer, w = _setup(make_napari_viewer)
    labels = viewer.layers[1]
    w.start(sync=True)
    levels = [w.bodies.item(i, 0).text() for i in range(w.bodies.rowCount())]
    assert levels == ["T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"]
    assert "bodies" in w.status.text() and w.discs.rowCount() >= 8
    lines = viewer.layers[LINES_LAYER]
    data = np.asarray(labels.data)
    assert len(lines.data) == len(w.result.lines) == 3 * (len(levels) + len(w.result.discs))
    assert np.allclose(lines.scale, labels.scale) and np.allclose(lines.translate, labels.translate)
    for seg, line in zip(lines.data, w.result.lines):  # each line crosses its own structure
        mid = np.round(seg.mean(0)).astype(int)
        assert data[tuple(mid)] == line["structure_id"]
    before = {r["level"]: r for r in w.result.bodies}["L3"]
    # the annotator takes the front third of L3 away: the panel measures the edit
    edited = data.copy()
    l3 = np.argwhere(data == 22)
    front = l3[:, 2] < np.percentile(l3[:, 2], 30)  # display axis 2 runs posteriorly
    edited[tuple(l3[front].T)] = 0
    labels.data = edited
    w.start(sync=True)
    after = {r["level"]: r for r in w.result.bodies}["L3"]
    assert after["depth_mm"] < 0.85 * before["depth_mm"] and after["volume_ml"] < 0.85 * before["volume_ml"]
    assert len(viewer.layers[LINES_LAYER].data) == len(w.result.lines)  # replaced, not added
    path = w.export_to(tmp_path / "m.csv")
    rows = list(csv.DictReader(path.open()))
    assert {r["level"] for r in rows if r["kind"] == "body"} == set(levels)


def test_a_wrong_grid_is_said_not_raised(make_napari_viewer):
    viewer, w = _setup(make_napari_viewer)
    viewer.add_labels(np.zeros((5, 5, 5), np.uint8), name="stray", metadata=dict(viewer.layers[1].metadata))
    w.start(sync=True)
    assert "not on the case's grid" in w.status.text()
    assert w.result is None
    import pytest

    with pytest.raises(ValueError, match="nothing measured"):
        w.export_to("m.csv")


def test_double_click_goes_to_the_body(make_napari_viewer):
    viewer, w = _setup(make_napari_viewer)
    w.start(sync=True)
    labels = viewer.layers[1]
    w._go_to_row(5, 0)  # L3
    z = int(viewer.dims.current_step[0])
    l3 = np.argwhere(np.asarray(labels.data) == 22)
    assert l3[:, 0].min() <= z <= l3[:, 0].max()


def test_rulers_measure_in_millimetres_and_are_saved_with_the_landmarks(make_napari_viewer, tmp_path):
    """Rulers drawn on the lumbar sample (1 mm voxels here, so the analytic values are
    simple) show their values; the case panel saves them with the landmarks."""
    import json

    from napari_spine.io.export import read_rulers

    viewer, w = _setup(make_napari_viewer)
    layer = w.rulers.arm("distance")
    assert layer is not None and layer.mode == "add_line"
    assert viewer.layers.selection.active == layer and np.allclose(layer.scale, viewer.layers[1].scale)
    case = w.ws.case_of(layer)
    s = np.asarray(case.spacing, dtype=float)
    layer.add_lines(np.array([[40.0, 50, 30], [40, 80, 70]]))  # 30 x 40 voxels in one sagittal slice
    assert list(layer.features["ruler"]) == ["distance"]
    expected = float(np.linalg.norm(np.array([0, 30, 40]) * s))
    assert w.rulers.table.item(0, 1).text() == f"{expected:.1f}"
    assert layer.features["text"][0] == f"{expected:.1f} mm"
    w.rulers.arm("angle")
    assert layer.mode == "add_path"
    layer.add_paths(np.array([[40.0, 50, 30], [40, 50, 60], [40, 80, 60]]))  # a right angle
    w.rulers.arm("cobb")
    layer.add_lines(np.array([[20.0, 60, 40], [70, 60, 40]]))  # coronal: along display axis 0
    assert "second line" in layer.features["text"][2]
    layer.add_lines(np.array([[20.0, 150, 40], [70, 150 + 50 * np.tan(np.radians(20)), 40]]))
    values = [w.rulers.table.item(i, 1).text() for i in range(w.rulers.table.rowCount())]
    assert values == [f"{expected:.1f}", "90.0", "20.0"]
    assert layer.features["text"][2] == layer.features["text"][3] == "Cobb 20.0°"
    _, case_panel = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine case")
    path = case_panel.export_landmarks_to(tmp_path / "lm.json")
    doc = json.loads(path.read_text())
    assert [r["kind"] for r in doc["rulers"]] == ["distance", "angle", "cobb"] and doc["landmarks"]
    back = read_rulers(path, case)
    assert [round(r.value(case.affine), 3) for r in back] == [round(expected, 3), 90.0, 20.0]


def test_saved_rulers_are_drawn_again_on_another_viewer(make_napari_viewer, tmp_path):
    viewer, w = _setup(make_napari_viewer)
    layer = w.rulers.arm("cobb")
    layer.add_lines(np.array([[20.0, 60, 40], [70, 60, 40]]))
    layer.add_lines(np.array([[20.0, 150, 40], [70, 150 + 50 * np.tan(np.radians(33)), 40]]))
    w.rulers.arm("distance")
    layer.add_lines(np.array([[40.0, 50, 30], [40, 80, 70]]))
    _, case_panel = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine case")
    path = case_panel.export_landmarks_to(tmp_path / "lm.csv")  # the CSV and its _rulers.csv
    first = [w.rulers.table.item(i, 1).text() for i in range(w.rulers.table.rowCount())]
    viewer2, w2 = _setup(make_napari_viewer)
    assert w2.rulers.load(path) == 2
    again = [w2.rulers.table.item(i, 1).text() for i in range(w2.rulers.table.rowCount())]
    assert again == first == ["33.0", first[1]]
    assert np.allclose(np.vstack(w2.rulers.layer.data), np.vstack(layer.data), atol=1e-6)
    assert w2.rulers.load(tmp_path / "missing.json") == 0
    assert "missing.json" in w2.rulers.message.text()
