from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from napari_spine._napari.panels.correction import CorrectionWidget

PLUGIN = "napari-spine"


@pytest.fixture
def setup(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "ct_lumbar")
    layers = list(viewer.layers)  # the layer objects the viewer holds
    viewer.layers.selection.active = layers[1]
    _, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine correction")
    assert isinstance(w, CorrectionWidget)
    w.set_output(tmp_path / "out")
    return viewer, w, layers


def test_pick_by_name_and_step(setup):
    viewer, w, layers = setup
    labels = layers[1]
    assert w.pick("l4-l5") == 123 and labels.selected_label == 123
    assert "L4/L5" in w.painting.text()
    w.step_level(+1)
    assert labels.selected_label == 24  # L5 follows the L4/L5 disc
    w.step_level(-1)
    assert labels.selected_label == 123
    assert w.pick("not a bone") is None and "No structure" in w.status.text()


def test_shift_moves_labels_and_landmarks_and_undoes(setup):
    viewer, w, layers = setup
    labels, points = layers[1], layers[2]
    before = labels.data.copy()
    before_ids = np.asarray(points.features["structure_id"]).copy()
    assert w.shift(+1) == 0 and "leaves C1-S1" in w.status.text()  # S1 has nowhere to go
    assert w.shift(-1) > 0
    assert (labels.data == 16).sum() == (before == 17).sum() and (labels.data == 24).sum() == (before == 26).sum()
    assert list(points.features["structure_id"][:2]) == [int(before_ids[0]) - 1, int(before_ids[1]) - 1]
    assert points.features["name"][0].startswith("T9")
    labels.undo()
    assert np.array_equal(labels.data, before)  # napari's undo restores the exact array
    w.lock("L3")
    w.shift(-1)
    assert np.array_equal(labels.data == 22, before == 22)


def test_validator_list_and_jump(setup):
    viewer, w, layers = setup
    labels = layers[1]
    assert all("No problems" in w.problems.item(i).text() for i in range(w.problems.count()))
    w.struct_a.setCurrentText("L3")
    w.struct_b.setCurrentText("L2")
    w.buttons["Relabel A as B"].click()
    texts = [w.problems.item(i).text() for i in range(w.problems.count())]
    assert any("L2 appears in" in t for t in texts) and any("L3 is missing" in t for t in texts)
    row = next(i for i, f in enumerate(w.findings) if f.kind == "gap")
    world = w.jump_to(row)
    shown = int(np.round(labels.world_to_data(viewer.dims.point)[0]))
    assert abs(shown - w.findings[row].position[0]) <= 1 and world is not None


def test_paint_is_journaled_and_restorable(setup, qtbot, tmp_path):
    viewer, w, layers = setup
    labels = layers[1]
    labels.brush_size = 5
    labels.selected_label = 25
    labels.paint((48, 20, 20), 25)
    qtbot.waitUntil(lambda: len(w.session().journal.entries()) >= 1, timeout=3000)
    # once painting pauses, the lock list and the level check include the new structure
    qtbot.waitUntil(lambda: any(w.locks.item(i).text() == "L6" for i in range(w.locks.count())), timeout=3000)
    journal = w.session().journal
    assert journal.has_pending()
    edited = labels.data.copy()
    # a new viewer on the same case (as after a crash) offers and applies the restore
    labels.data = w.session().baseline.copy()  # the case as loaded again
    w2 = CorrectionWidget(viewer)
    w2.set_output(tmp_path / "out")
    assert not w2.restore_btn.isHidden() and "Restore 1" in w2.restore_btn.text()
    assert w2.restore_pending() > 0
    assert np.array_equal(labels.data, edited)


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
