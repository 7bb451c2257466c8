"""The correction panel on the product's path: a NIfTI case read from files (strided display
views), landmarks added, loaded and bound whatever the layer order, a shift that renames
them in the same step, and unsaved edits that are asked about before a case goes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_spine._napari.panels import _correction_guard
from napari_spine._napari.panels.correction import CorrectionWidget
from napari_spine.geometry import voxel_to_world

PLUGIN = "napari-spine"


@pytest.fixture
def file_case(make_napari_viewer, phantom_files):
    """A case opened from NIfTI files (LPS), no landmarks; the panel docked first."""
    case0, img, lab = phantom_files
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine correction")
    image, labels = viewer.open(str(img), plugin=PLUGIN)
    viewer.layers.selection.active = labels
    return viewer, w, labels, case0, lab


def _names(points):
    return list(points.features["name"])


def test_a_file_case_gets_landmarks_that_shift_and_undo_with_the_labels(file_case, qtbot):
    viewer, w, labels, case0, _ = file_case
    assert not np.asarray(labels.data).flags.c_contiguous  # the reader's strided view
    assert w.landmarks_box.state.text() == "This case has no landmarks layer."
    assert int(labels.selected_label) == 20  # the first level present (L1), not label 1
    points = w.new_landmarks()
    assert points is not None and len(points.data) == 0 and "0 points" in w.landmarks_box.state.text()
    w.pick("L2")
    body = np.argwhere(np.asarray(labels.data) == 21).mean(axis=0)
    points.add(body)  # as the add tool does: the new point takes the painted structure
    qtbot.waitUntil(lambda: w.session().landmarks is not None and len(w.session().landmarks) == 1, timeout=3000)
    assert _names(points) == ["L2 point"] and list(points.features["structure_id"]) == [21]
    w.levels_box.from_level.setCurrentText("L1")
    assert w.shift(-1) > 0  # L1..L4 one level up: T12..L3
    assert list(points.features["structure_id"]) == [20] and _names(points)[0].startswith("L1")
    step = w.session().history.undo_stack[-1]
    assert step.op.startswith("shift levels -1") and step.landmarks_after is not None  # one step, both
    w.undo()
    assert list(points.features["structure_id"]) == [21] and _names(points) == ["L2 point"]
    assert (np.asarray(labels.data) == 21).sum() == (case0.labels == 21).sum()


def test_a_landmarks_layer_inserted_after_the_labels_is_bound(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine correction")  # the panel first,
    viewer.open_sample(PLUGIN, "ct_lumbar")  # then the case, landmarks layer last (as the launcher)
    labels, points = list(viewer.layers)[1], list(viewer.layers)[2]
    viewer.layers.selection.active = labels
    qtbot.waitUntil(lambda: w.session() is not None and w.session().landmarks is not None, timeout=3000)
    first = _names(points)[0]
    assert first.startswith("T10")
    assert w.shift(-1) > 0
    assert _names(points)[0].startswith("T9")  # never "T10 body centre" on what is now T9
    w.undo()
    assert _names(points)[0] == first


def test_poi_and_project_landmark_files_load_onto_a_file_case(file_case, tmp_path):
    viewer, w, labels, case0, _ = file_case
    case = w.ws.case_of(labels)
    world = voxel_to_world(case.affine, case0.landmarks.coords[:2])
    sids = case0.landmarks.structure_ids[:2]
    pts: dict = {}
    for s, p in zip(sids, world):  # L1 body centre and the L1/L2 disc: one vertebra, two locations
        pts.setdefault(str(int(s) % 100), {})["50" if s < 100 else "100"] = list(p)
    doc = [{"format": "POI_GLOBAL", "coordinate_system": "nib"}, pts]
    path = tmp_path / "sub-01_desc-poi.json"
    path.write_text(json.dumps(doc))
    assert w.load_landmarks(str(path)) == 2
    points = w.ws.landmarks_layer(case)
    assert points is not None and np.allclose(points.data, case0.landmarks.coords[:2])
    saved = w.save_landmarks()
    assert [p.suffix for p in saved] == [".json", ".csv"]
    assert w.load_landmarks(str(saved[0])) == 2  # a step: the same points again
    assert w.load_landmarks(str(tmp_path / "missing.json")) == 0
    assert "missing.json" in w.landmarks_box.message.text()


def test_leaving_a_case_with_unsaved_edits_asks_and_keeps_or_saves_or_discards(make_napari_viewer, tmp_path,
                                                                              monkeypatch, qtbot):
    from napari_spine._napari.panels.dataset import DatasetWidget  # noqa: F401 - the panel exists

    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine correction")
    w.set_output(tmp_path / "out")
    viewer.open_sample(PLUGIN, "ct_lumbar")
    labels = list(viewer.layers)[1]
    viewer.layers.selection.active = labels
    s = w.session()
    w.struct_a.setCurrentText("T10")
    w.struct_b.setCurrentText("0")
    w.buttons["Relabel A as B"].click()
    assert s.unsaved == 1
    key = w._key(labels)
    asked = []

    def answer(reply):
        def ask(parent, case, n):
            asked.append((case, n))
            return reply
        return ask

    monkeypatch.setattr(_correction_guard, "ask_unsaved", answer("cancel"))
    assert not w.ws.may_replace() or not w.confirm_leave(key)  # cancel keeps the case
    assert asked[-1] == ("phantom-ct", 1) and key in w.sessions
    monkeypatch.setattr(_correction_guard, "ask_unsaved", answer("save"))
    assert w.confirm_leave(key)
    assert (tmp_path / "out" / "phantom-ct_labels.nii.gz").exists() and not s.journal.has_pending()
    # a new session on the same layer, an edit, then "keep": the journal offers it next time
    s2 = w.session()
    w.buttons["Relabel A as B"].click()  # T10 is gone: relabel L1 instead
    w.struct_a.setCurrentText("L1")
    w.buttons["Relabel A as B"].click()
    assert s2.unsaved >= 1
    monkeypatch.setattr(_correction_guard, "ask_unsaved", answer("keep"))
    assert w.confirm_leave(key) and s2.journal.has_pending() and not s2.journal.holds_lock
    # and "discard" deletes this session's own edits
    s3 = w.session()
    assert s3.pending  # kept edits are offered
    w.restore_pending()
    w.struct_a.setCurrentText("L2")
    w.buttons["Relabel A as B"].click()
    monkeypatch.setattr(_correction_guard, "ask_unsaved", answer("discard"))
    assert w.confirm_leave(key) and not s3.journal.has_pending()


def test_closing_napari_with_unsaved_edits_asks_first(make_napari_viewer, monkeypatch, qtbot):
    viewer = make_napari_viewer(show=True)
    _, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine correction")
    viewer.open_sample(PLUGIN, "ct_lumbar")
    labels = list(viewer.layers)[1]
    viewer.layers.selection.active = labels
    qtbot.wait(200)
    w.struct_a.setCurrentText("T10")
    w.struct_b.setCurrentText("0")
    w.buttons["Relabel A as B"].click()
    w.check_box.live.start()  # a level check running while napari closes
    asked = []
    monkeypatch.setattr(_correction_guard, "ask_unsaved", lambda p, c, n: asked.append(c) or "cancel")
    win = viewer.window._qt_window
    win.close()
    assert asked == ["phantom-ct"] and win.isVisible()  # Cancel: napari stays open
    monkeypatch.setattr(_correction_guard, "ask_unsaved", lambda p, c, n: asked.append(c) or "keep")
    s = w.session()
    assert w.confirm_close()  # what the close does next time ("Keep in journal")
    assert asked == ["phantom-ct", "phantom-ct"] and s.journal.has_pending() and not s.journal.holds_lock


def _sample_panel(make_viewer):
    """A viewer on the lumbar sample, its labels selected, a correction panel (not docked)."""
    viewer = make_viewer()
    viewer.open_sample(PLUGIN, "ct_lumbar")
    labels = list(viewer.layers)[1]
    viewer.layers.selection.active = labels
    return viewer, labels, CorrectionWidget(viewer)


def test_a_second_panel_on_the_same_case_is_read_only_and_says_why(make_napari_viewer, qtbot):
    viewer, labels, w1 = _sample_panel(make_napari_viewer)
    assert w1.session().read_only is None
    other, labels2, w2 = _sample_panel(make_napari_viewer)  # another napari on the same case
    assert w2.session().read_only is not None and w2.banner.kind == "read-only"
    assert "open in another session (process" in w2.banner.text.text()
    assert not labels2.editable and not w2.levels_box.isEnabled()
    for s in w1.sessions.values():
        s.close()  # the first napari closes
    w2.retry_session()
    assert w2.session().read_only is None and labels2.editable and w2.banner.kind == ""


def test_the_level_check_after_a_stroke_measures_only_what_the_stroke_touched(file_case, qtbot, monkeypatch):
    import napari_spine.correction.validate as validate_mod
    from napari_spine.correction import validate_sequence

    viewer, w, labels, case0, _ = file_case
    qtbot.waitUntil(lambda: w.check_box.cache.index is not None, timeout=5000)  # the first, full measure
    qtbot.waitUntil(lambda: not w.check_box.live.task.busy, timeout=5000)
    assert not w.findings or all("L2" not in f.message for f in w.findings)
    full_passes = []
    real = validate_mod.structure_stats
    monkeypatch.setattr(validate_mod, "structure_stats", lambda lab: full_passes.append(1) or real(lab))
    labels.selected_label, labels.brush_size, labels.n_edit_dim, labels.mode = 0, 40, 3, "erase"
    while (np.asarray(labels.data) == 21).any():  # erase L2, dab by dab
        labels.paint(tuple(int(v) for v in np.argwhere(np.asarray(labels.data) == 21)[0]), 0)
    qtbot.waitUntil(lambda: any("L2 is missing" in f.message for f in w.findings), timeout=5000)
    assert not full_passes  # no pass over the volume: only what the dab touched was measured again
    assert w.findings == validate_sequence(np.asarray(labels.data), w._spacing())


def test_next_case_in_the_dataset_panel_asks_about_unsaved_edits(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    from napari_spine.testing import trees as syn

    viewer = make_napari_viewer()
    _, data_panel = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine dataset")
    _, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine correction")
    assert data_panel.open(syn.write_ctspine1k(tmp_path / "ct", "hf")) is not None
    data_panel.load_row(0)
    first = data_panel.visible_cases[0].case_id
    qtbot.waitUntil(lambda: data_panel.current is not None and not data_panel.task.busy, timeout=20000)
    labels = [ly for ly in viewer.layers if ly._type_string == "labels"][0]
    viewer.layers.selection.active = labels
    qtbot.waitUntil(lambda: w.session() is not None, timeout=3000)
    present = w.session().present()
    w.struct_a.setCurrentText(ontology_name(present[0]))
    w.struct_b.setCurrentText("0")
    w.buttons["Relabel A as B"].click()
    edited = np.asarray(labels.data).copy()
    asked = []
    monkeypatch.setattr(_correction_guard, "ask_unsaved", lambda p, c, n: asked.append((c, n)) or "cancel")
    data_panel.next_case()
    qtbot.wait(300)
    assert asked == [(first, 1)] and data_panel.current.case_id == first  # Cancel: the case stays
    assert np.array_equal(labels.data, edited)
    monkeypatch.setattr(_correction_guard, "ask_unsaved", lambda p, c, n: asked.append((c, n)) or "keep")
    data_panel.next_case()
    second = data_panel.visible_cases[1].case_id
    qtbot.waitUntil(lambda: data_panel.current.case_id == second and not data_panel.task.busy, timeout=20000)
    assert len(asked) == 2
    data_panel.previous_case()  # back to the first case: its kept edits are offered
    qtbot.waitUntil(lambda: data_panel.current.case_id == first and not data_panel.task.busy, timeout=20000)
    qtbot.waitUntil(lambda: w.session() is not None and w.session().pending, timeout=3000)
    assert w.banner.kind == "pending" and w.restore_pending() > 0
    assert np.array_equal(labels.data, edited)


def ontology_name(sid):
    from napari_spine.anatomy import ontology

    return ontology.name_of(sid)


def test_operations_called_while_edits_are_pending_change_nothing(make_napari_viewer, qtbot):
    viewer, labels, w1 = _sample_panel(make_napari_viewer)
    w1.struct_a.setCurrentText("T10")
    w1.struct_b.setCurrentText("0")
    w1.buttons["Relabel A as B"].click()
    for s in w1.sessions.values():
        s.close()  # the program died
    other, labels2, w2 = _sample_panel(make_napari_viewer)  # another napari on the same case
    loaded = np.asarray(labels2.data).copy()
    assert w2.session().pending
    w2.struct_a.setCurrentText("L1")
    w2.struct_b.setCurrentText("0")
    assert w2._op("relabel", lambda lab, a, b, locked: np.where(lab == a, b, lab), w2._id_a, w2._id_b) == 0
    assert w2.shift(-1) == 0 and w2.apply(np.zeros_like(loaded), "erase all") == 0
    assert "Restore or discard" in w2.levels_box.message.text()
    w2.undo()
    assert np.array_equal(labels2.data, loaded) and w2.session().pending


def test_two_labels_layers_of_one_case_keep_two_journals(make_napari_viewer):
    from napari_spine._napari._layers import case_from_layer, labels_layer_data

    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "ct_lumbar")
    labels = list(viewer.layers)[1]
    case = case_from_layer(labels)
    data, kw, _ = labels_layer_data(case, np.asarray(labels.data).copy(), name="phantom-ct prediction")
    pred = viewer.add_labels(data, **kw)
    w = CorrectionWidget(viewer)
    viewer.layers.selection.active = labels
    a = w.session(labels)
    viewer.layers.selection.active = pred
    b = w.session(pred)
    assert a.read_only is None and b.read_only is None  # a prediction beside the reference: both editable
    assert a.journal.dir != b.journal.dir and "prediction" in b.journal.dir.name
    assert w.session(pred) is b  # and the same session the next time
