from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from app_model.types import KeyBinding

from napari_spine._napari.panels.correction import CorrectionWidget

PLUGIN = "napari-spine"


@pytest.fixture
def setup(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "ct_lumbar")  # T10-S1, with landmarks
    layers = list(viewer.layers)  # the layer objects the viewer holds
    viewer.layers.selection.active = layers[1]
    _, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine correction")
    assert isinstance(w, CorrectionWidget)
    w.set_output(tmp_path / "out")
    return viewer, w, layers


def _ids(points):
    return np.asarray(points.features["structure_id"]).copy()


def test_pick_by_name_and_step(setup):
    viewer, w, layers = setup
    labels = layers[1]
    assert w.pick("l4-l5") == 123 and labels.selected_label == 123
    assert "L4/L5" in w.painting.text()
    w.step_level(+1)
    assert labels.selected_label == 24  # L5 follows the L4/L5 disc
    w.step_level(+1)
    assert labels.selected_label == 124  # L5/S1: no L6 unless switched on
    w.step_level(-1)
    w.step_level(-1)
    assert labels.selected_label == 123
    assert w.pick("not a bone") is None and "No structure" in w.paint_box.message.text()


def test_undo_of_a_shift_restores_labels_and_landmarks(setup):
    viewer, w, layers = setup
    labels, points = layers[1], layers[2]
    before, before_ids = labels.data.copy(), _ids(points)
    assert w.shift(+1) == 0  # the sacrum is the anchor: L5 has nowhere to go ...
    assert "L5 would become S1" in w.levels_box.message.text() and "L6" in w.levels_box.message.text()
    assert w.shift(-1) > 0  # ... and up, every level but S1 moves
    assert (labels.data == 16).sum() == (before == 17).sum()  # T10 -> T9
    assert np.array_equal(labels.data == 26, before == 26)  # S1 stays
    assert _ids(points)[0] == before_ids[0] - 1 and points.features["name"][0].startswith("T9")
    undo = labels.keymap.get(KeyBinding.from_str("Ctrl+Z"))  # napari's undo key on this layer
    assert undo is not None
    undo(labels)
    assert np.array_equal(labels.data, before) and np.array_equal(_ids(points), before_ids)
    assert points.features["name"][0].startswith("T10")
    w.redo()
    assert (labels.data == 16).sum() == (before == 17).sum() and _ids(points)[0] == before_ids[0] - 1


def test_shift_down_from_l2_with_s1_and_l6(setup, tmp_path):
    viewer, w, layers = setup
    labels = layers[1]
    before = labels.data.copy()
    w.from_level.setCurrentText("L2")
    w.levels_box.l6.setChecked(True)  # this spine has six lumbar vertebrae
    assert w.shift(+1) > 0
    assert np.array_equal(labels.data == 26, before == 26)  # S1 left alone
    assert (labels.data == 25).sum() == (before == 24).sum()  # L5 -> L6
    assert np.array_equal(labels.data == 20, before == 20)  # L1 above the range stays
    # the transitional level is remembered with the case
    w2 = CorrectionWidget(viewer)
    w2.set_output(tmp_path / "out")
    assert w2.levels_box.l6.isChecked() and "L6" in [w2.to_level.itemText(i) for i in range(w2.to_level.count())]


def test_unknown_names_are_said_in_the_panel(setup):
    viewer, w, layers = setup
    before = layers[1].data.copy()
    w.struct_a.setCurrentText("L33")
    w.buttons["Relabel A as B"].click()  # no exception reaches Qt
    assert "no structure called 'L33'" in w.levels_box.message.text()
    w.struct_a.setCurrentText("L3")
    w.struct_b.setCurrentText("")
    w.buttons["Swap A and B"].click()
    assert "B: no structure called ''" in w.levels_box.message.text()
    w.lock("L33")
    assert "L33" in w.levels_box.message.text()
    assert np.array_equal(layers[1].data, before)


def test_a_lock_is_a_step_of_the_history(setup):
    viewer, w, layers = setup
    w.lock("L3")
    assert w.locked_ids() == [22]
    w.struct_a.setCurrentText("L3")
    w.buttons["Relabel A as B"].click()
    assert "L3 (A) is locked" in w.levels_box.message.text()
    w.undo()
    assert w.locked_ids() == []
    row = next(i for i in range(w.locks.count()) if w.locks.item(i).text() == "L3")
    assert w.locks.item(row).checkState().name == "Unchecked"  # the list shows the undone lock


def test_validator_runs_in_a_worker_and_jumps(setup, qtbot):
    viewer, w, layers = setup
    labels = layers[1]
    w.struct_a.setCurrentText("L3")
    w.struct_b.setCurrentText("L2")
    w.buttons["Relabel A as B"].click()

    def listed():
        texts = [w.problems.item(i).text() for i in range(w.problems.count())]
        return any("L2 appears in" in t for t in texts) and any("L3 is missing" in t for t in texts)

    qtbot.waitUntil(listed, timeout=10000)
    row = next(i for i, f in enumerate(w.findings) if f.kind == "gap")
    world = w.jump_to(row)
    shown = int(np.round(labels.world_to_data(viewer.dims.point)[0]))
    assert abs(shown - w.findings[row].position[0]) <= 1 and world is not None


def test_a_landmark_move_is_undone(setup):
    viewer, w, layers = setup
    points = layers[2]
    before = np.asarray(points.data).copy()
    moved = before.copy()
    moved[0] += (0, 3, 0)
    points.data = moved  # as dragging the point does
    assert w.session().history.undo_stack[-1].op.startswith("landmark")
    w.undo()
    assert np.allclose(points.data, before)


def test_paint_is_journaled_and_an_undone_edit_never_comes_back(setup, qtbot, tmp_path, make_napari_viewer):
    viewer, w, layers = setup
    labels = layers[1]
    loaded = labels.data.copy()
    labels.brush_size = 5
    labels.selected_label = 25
    labels.paint((48, 20, 20), 25)
    qtbot.waitUntil(lambda: len(w.session().journal.entries()) >= 1, timeout=3000)
    qtbot.waitUntil(lambda: any(w.locks.item(i).text() == "L6" for i in range(w.locks.count())), timeout=3000)
    painted = labels.data.copy()
    labels.paint((48, 60, 60), 25)
    qtbot.waitUntil(lambda: len(w.session().journal.entries()) >= 2, timeout=3000)
    w.undo()  # the second stroke is undone ... then the program dies
    assert np.array_equal(labels.data, painted)
    for s in w.sessions.values():
        s.close()  # as the OS does for a killed process: the case's lock goes
    again = make_napari_viewer()  # napari is started again on the same case
    again.open_sample(PLUGIN, "ct_lumbar")
    labels2 = list(again.layers)[1]
    assert np.array_equal(labels2.data, loaded)
    again.layers.selection.active = labels2
    w2 = CorrectionWidget(again)
    w2.set_output(tmp_path / "out")
    assert not w2.restore_btn.isHidden() and w2.restore_btn.text() == "Restore 2 edits"
    assert w2.restore_pending() > 0
    assert np.array_equal(labels2.data, painted)  # the undone stroke stays undone
    w2.redo()  # and the restored history goes on: the undone stroke can be redone
    assert not np.array_equal(labels2.data, painted) and (labels2.data == 25).sum() > (painted == 25).sum()


def test_save_and_nnunet_export(setup, tmp_path):
    viewer, w, layers = setup
    w.struct_a.setCurrentText("T10")
    w.struct_b.setCurrentText("0")
    w.buttons["Relabel A as B"].click()
    path = w.save_labels()
    assert path is not None and path.exists()
    data = np.asanyarray(nib.load(path).dataobj)
    assert 17 not in data and 18 in data
    assert not w.session().journal.has_pending()  # saved: no restore offered next time
    saved = w.save_landmarks()
    assert [p.suffix for p in saved] == [".json", ".csv"] and all(p.exists() for p in saved)
    assert w.add_to_training() == 1
    root = w.export_training(dataset_id=502, name="Test")
    assert root is not None and (root / "dataset.json").exists()
    assert len(list((root / "labelsTr").glob("*.nii.gz"))) == 1


def test_the_panel_fits_a_laptop_screen(setup, qtbot):
    from qtpy.QtWidgets import QApplication, QScrollArea

    viewer, w, layers = setup
    win = viewer.window._qt_window
    win.resize(1366, 768)
    win.show()
    for _ in range(10):
        QApplication.processEvents()
    area = w.findChild(QScrollArea)
    assert area is not None and w.height() <= 768
    save = w.save_box.export_btn
    area.ensureWidgetVisible(save)
    QApplication.processEvents()
    assert not save.visibleRegion().isEmpty()  # reachable by scrolling
    assert area.horizontalScrollBar().maximum() == 0  # and no sideways scrolling


def test_shortcuts_are_napari_actions_listed_in_the_preferences(setup):
    from napari.components import ViewerModel
    from napari.utils.action_manager import action_manager

    from napari_spine._napari._keys import ACTIONS

    viewer, w, layers = setup
    labels = layers[1]
    for name, (_, _, _, key, description) in ACTIONS.items():
        action = action_manager._actions[name]  # what Preferences > Shortcuts lists
        assert action.keymapprovider is ViewerModel and action.description == description
        assert KeyBinding.from_str(key.replace("-", "+")) in ViewerModel.class_keymap
    # napari's own defaults keep their keys: Alt+Up/Down still move the axis focus
    assert action_manager._shortcuts["napari:focus_axes_up"] and not any(
        k in ("Alt-Up", "Alt-Down") for _, _, _, k, _ in ACTIONS.values())
    step = ViewerModel.class_keymap[KeyBinding.from_str("Ctrl+Alt+Down")]
    labels.selected_label = 22
    step(viewer)
    assert labels.selected_label == 122  # L3 -> the L3/L4 disc
    assert "Ctrl+Alt+" in w.search.toolTip()


def test_bad_slices_and_a_failing_operation_are_said(setup, monkeypatch):
    viewer, w, layers = setup
    w.slice_a.setValue(3)
    w.slice_b.setValue(4000)
    w.buttons["Interpolate A between slices"].click()
    assert "must lie within" in w.levels_box.message.text()

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(w, "_op", broken)  # whatever an operation raises stays in the panel
    w.buttons["Fill holes"].click()
    assert "disk on fire" in w.levels_box.message.text()


def test_the_next_case_in_the_same_layer_gets_its_own_session(setup, qtbot):
    from napari_spine import make_phantom
    from napari_spine._napari._layers import case_from_layer

    viewer, w, layers = setup
    labels = layers[1]
    w.struct_a.setCurrentText("T10")
    w.struct_b.setCurrentText("0")
    w.buttons["Relabel A as B"].click()
    first = w.session()
    assert first.history.can_undo
    case = case_from_layer(labels)
    other = make_phantom(labels.data.shape, levels=("T11", "S1"), axcodes="LPS", case_id="phantom-next", seed=9)
    w.ws.swap_case(case, other)  # what the dataset panel's Next does: the same layers, a new case
    qtbot.waitUntil(lambda: w.session() is not first, timeout=3000)
    s = w.session()
    assert not s.history.can_undo and np.array_equal(s.baseline, labels.data)
    assert "phantom-next" in s.journal.dir.name
    w.labels_layer().data = np.where(labels.data == 18, 0, labels.data).astype(labels.data.dtype)  # another tool
    qtbot.waitUntil(lambda: s.history.can_undo, timeout=3000)
    assert s.history.undo_stack[-1].op == "labels replaced"


def test_a_dicom_case_is_also_saved_as_dicom_seg(make_napari_viewer, tmp_path):
    pytest.importorskip("highdicom")
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from test_dicom import _volume, write_series

    viewer = make_napari_viewer()
    write_series(tmp_path / "dcm", _volume(), (1, 0, 0), (0, 1, 0), (0, 0, 2.0), (0, 0, 0))
    image = viewer.open(str(tmp_path / "dcm"), plugin=PLUGIN)[0]
    _, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine correction")
    w.set_output(tmp_path / "out")
    labels = viewer.add_labels(np.zeros(image.data.shape, np.uint8), name="edit", metadata=dict(image.metadata))
    labels.data[3:9, 2:5, 4:12] = 22
    viewer.layers.selection.active = labels
    assert w.session() is not None and w.save_box.seg_btn.isVisibleTo(w)
    path = w.save_box.save_seg()
    assert path is not None and path.name == "dcm_seg.dcm" and path.exists()
    assert "Saved and verified" in w.save_box.status.text()
    viewer.open_sample(PLUGIN, "ct_lumbar")
    viewer.layers.selection.active = viewer.layers[-2]  # the sample's labels
    assert w.session() is not None and not w.save_box.seg_btn.isVisibleTo(w)
