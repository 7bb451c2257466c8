from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt

from napari_spine._napari.panels.qa import QAWidget
from napari_spine.correction import relabel

PLUGIN = "napari-spine"


def _setup(make_napari_viewer, db):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "ct_lumbar")
    labels = viewer.layers[1]
    cand = relabel(np.asarray(labels.data), "L3", 0)
    viewer.add_labels(cand, name="prediction", scale=labels.scale, translate=labels.translate,
                      metadata=dict(labels.metadata))
    _, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine QA review")
    assert isinstance(w, QAWidget)
    w.db_path.setText(str(db))
    w.reference.setCurrentText(labels.name)
    w.candidate.setCurrentText("prediction")
    return viewer, w


def test_table_sorted_worst_first_and_jump(make_napari_viewer, tmp_path):
    viewer, w = _setup(make_napari_viewer, tmp_path / "r.sqlite")
    w.compute(sync=True)
    assert w.table.item(0, 0).text() == "L3" and w.table.item(0, 1).text() == "0.000"
    assert w.table.item(1, 1).text() == "1.000"
    assert any("L3 is missing" in w.checks.item(i).text() for i in range(w.checks.count()))
    assert "disagreement" in viewer.layers
    dis = viewer.layers["disagreement"].data
    assert (dis == 1).sum() == (np.asarray(viewer.layers[1].data) == 22).sum() and not (dis == 2).any()
    row = next(i for i in range(w.table.rowCount()) if w.table.item(i, 0).text() == "L1")
    w.jump_to_row(row)
    labels = viewer.layers[1]
    shown = int(np.round(labels.world_to_data(viewer.dims.point)[0]))
    assert (np.asarray(labels.data)[shown] == 20).any()


def test_review_persists_across_a_viewer_restart(make_napari_viewer, tmp_path):
    db = tmp_path / "r.sqlite"
    viewer, w = _setup(make_napari_viewer, db)
    w.compute(sync=True)
    w.reviewer.setText("ana")
    w.status.setCurrentText("needs correction")
    w.comment.setText("L3 missed by the model")
    w.table.item(0, 5).setCheckState(Qt.CheckState.Checked)
    w.table.item(0, 6).setText("whole level missing")
    assert w.save_review()
    key = w.case_key()
    viewer.close()
    viewer2, w2 = _setup(make_napari_viewer, db)
    w2.select_case(key)
    assert w2.status.currentText() == "needs correction" and w2.comment.text() == "L3 missed by the model"
    w2.compute(sync=True)
    assert w2.table.item(0, 5).checkState() == Qt.CheckState.Checked
    assert w2.table.item(0, 6).text() == "whole level missing"
    csv_path, html_path = w2.write_report(tmp_path)
    assert "needs correction" in html_path.read_text() and "whole level missing" in csv_path.read_text()


def test_refuses_labels_on_different_grids(make_napari_viewer, tmp_path):
    viewer, w = _setup(make_napari_viewer, tmp_path / "r.sqlite")
    viewer.add_labels(np.zeros((4, 4, 4), np.uint8), name="other")
    w._fill_layer_choices()
    w.candidate.setCurrentText("other")
    w.compute(sync=True)
    assert "not on the same grid" in w.summary.text()


def test_queue_next_previous_claims(make_napari_viewer, tmp_path):
    from napari_spine.qa.review import ReviewDB

    db = ReviewDB(tmp_path / "r.sqlite")
    db.add_cases([("ds/a", "ds", "a", 0.2), ("ds/b", "ds", "b", 0.9), ("ds/c", "ds", "c", 0.5)])
    viewer, w = _setup(make_napari_viewer, tmp_path / "r.sqlite")
    w.reviewer.setText("ana")
    assert w.step_queue(+1) == "ds/b"  # most suspicious first
    assert db.get("ds/b").claimed_by == "ana" and db.get("ds/b").status == "in review"
    assert w.step_queue(+1) == "ds/c"
    assert w.step_queue(-1) == "ds/b"


def test_queue_a_dataset_and_open_cases_from_it(make_napari_viewer, tmp_path):
    from napari_spine.testing import trees as syn

    root = syn.write_ctspine1k(tmp_path / "ct", "hf", names={"MSD-T10": ["liver_1", "liver_2"]})
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine QA review")
    w.db_path.setText(str(tmp_path / "r.sqlite"))
    assert w.queue_dataset(root) == 2 and w.queue.count() == 2
    w.reviewer.setText("ana")
    key = w.step_queue(+1)
    assert key in ("ctspine1k/liver_1", "ctspine1k/liver_2")
    assert len(viewer.layers) == 2 and w.reference.currentText().endswith("labels")
    w.step_queue(+1)
    assert len(viewer.layers) == 2  # the previous queued case was replaced
