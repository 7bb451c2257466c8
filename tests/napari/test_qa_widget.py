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
    names = [w.table.item(i, 0).text() for i in range(w.table.rowCount())]
    assert names[:3] == ["T10", "T10/T11", "T11"]  # the reference's levels, head to foot
    assert "Spinal canal" in names and "L3" in names
    w.worst_first.setChecked(True)
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


def test_review_persists_across_a_viewer_restart(make_napari_viewer, tmp_path, review_location):
    db = review_location  # an SQLite file, and a PostgreSQL server
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


def _review_setup(make_napari_viewer, tmp_path, n=5, shift_case=None):
    """A queued CTSpine1K tree with a batch-predict-shaped predictions folder: every case's
    prediction is its labels with L3 removed (and, for ``shift_case``, numbered one lower)."""
    import napari_spine as ns
    from napari_spine.io.files import safe_name
    from napari_spine.testing import trees as syn

    root = syn.write_ctspine1k(tmp_path / "ct", "hf", names={"MSD-T10": [f"liver_{i}" for i in range(n)]})
    preds = tmp_path / "pred"
    ds = ns.open_dataset(root)
    for k, ref in enumerate(ds.cases):
        case = ds.load_case(ref.case_id)
        pred = relabel(case.labels, "L3", 0) if k % 2 else case.labels.copy()  # a mixed bag
        if ref.case_id == shift_case:
            pred = np.where((pred > 0) & (pred < 26), pred + 1, pred).astype(np.uint8)
        out = preds / "cases" / safe_name(ref.case_id) / "prediction.nii.gz"
        out.parent.mkdir(parents=True)
        ns.export_labels(case, pred, out, scheme="canonical")
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine QA review")
    w.db_path.setText(str(tmp_path / "r.sqlite"))
    w.predictions.setText(str(preds))
    w.reviewer.setText("ana")
    w.queue_dataset(root, sync=True)
    return viewer, w, ds


def test_triage_is_known_when_queued_and_next_visits_cases_in_order(make_napari_viewer, tmp_path):
    viewer, w, ds = _review_setup(make_napari_viewer, tmp_path)
    queue = w.db.queue()
    assert any(c.triage > 0 for c in queue)  # computed at queue time, before any review
    expected = [c.case_key for c in queue]  # the stable order: triage, then key
    seen = []
    for _ in range(4):
        seen.append(w.step_queue(+1))
        w.compute(sync=True)
        assert w.save_review()  # saving does not reorder the queue
    assert seen == expected[:4] and len(set(seen)) == 4
    assert [c.case_key for c in w.db.queue()] == expected


def test_next_clears_the_comparison_and_picks_the_new_cases_prediction(make_napari_viewer, tmp_path):
    viewer, w, ds = _review_setup(make_napari_viewer, tmp_path)
    first = w.step_queue(+1)
    assert w.candidate.currentText().endswith("prediction")
    w.compute(sync=True)
    assert w.table.rowCount() > 0 and "disagreement" in viewer.layers
    cand = viewer.layers[w.candidate.currentText()]
    kept = viewer.add_labels(np.asarray(cand.data), name="kept from the first case", scale=cand.scale,
                             translate=cand.translate, metadata=dict(cand.metadata))
    second = w.step_queue(+1)
    assert second != first
    assert w.table.rowCount() == 0 and w.summary.text() == "" and "disagreement" not in viewer.layers
    from napari_spine._napari._layers import case_from_layer

    now = viewer.layers[w.candidate.currentText()]
    assert case_from_layer(now).key == second  # the new case's own prediction
    w.candidate.setCurrentText(kept.name)  # the first case's layer against the second case
    w.compute(sync=True)
    assert "Not compared" in w.summary.text() and first in w.summary.text() and second in w.summary.text()
    assert w.table.rowCount() == 0


def test_a_case_held_by_another_reviewer_opens_read_only(make_napari_viewer, tmp_path):
    viewer, w, ds = _review_setup(make_napari_viewer, tmp_path, n=3)
    key, second = (c.case_key for c in w.db.queue()[:2])
    w.db.claim(key, "ben")
    assert w.step_queue(+1) == second  # Next passes over the case ben holds
    w.select_case(key)  # opened on purpose: shown, not taken
    assert "Held by ben" in w.review.holder.text() and "read-only" in w.review.holder.text()
    assert not w.review.save_btn.isEnabled() and not w.save_review()
    assert w.db.get(key).claimed_by == "ben"


def test_review_keys_work_from_the_viewer(make_napari_viewer, tmp_path):
    from app_model.types import KeyBinding

    viewer, w, ds = _review_setup(make_napari_viewer, tmp_path, n=3)

    from napari.components import ViewerModel

    def press(key):
        binding = ViewerModel.class_keymap.get(KeyBinding.from_str(key))
        assert binding is not None, key  # a napari action, listed in the preferences
        binding(viewer)

    press("Alt+Right")
    key = w.current.case_key
    w.compute(sync=True)
    press("Alt+A")
    assert w.db.get(key).status == "approved"
    press("Alt+Right")
    assert w.current.case_key != key


def test_a_shifted_candidate_is_named_and_can_be_unshifted(make_napari_viewer, tmp_path):
    viewer, w, ds = _review_setup(make_napari_viewer, tmp_path, n=2, shift_case="liver_0")
    while w.step_queue(+1) and w.current.case_key != "ctspine1k/liver_0":
        pass
    w.compute(sync=True)
    texts = [w.checks.item(i).text() for i in range(w.checks.count())]
    assert any("shifted by +1 level" in t for t in texts) and w.shift_btn.isVisibleTo(w)
    dis = viewer.layers["disagreement"].data
    assert (dis == 3).sum() > (dis == 2).sum() + (dis == 1).sum()  # mislabelled, not extra
    new = w.apply_shift()
    w.compute(sync=True)
    assert w.comparison.shift is None and w.comparison.mean_dice > 0.99 and new.name in w.candidate.currentText()


def test_an_abandoned_claim_is_taken_over_only_after_asking(make_napari_viewer, tmp_path):
    import sqlite3

    viewer, w, ds = _review_setup(make_napari_viewer, tmp_path, n=2)
    key = w.db.queue()[0].case_key
    w.db.claim(key, "ben")
    with sqlite3.connect(w.db.path) as con:  # ben left two hours ago
        con.execute("UPDATE cases SET claimed_at = claimed_at - 7200 WHERE case_key=?", (key,))
    asked = []
    w.review.confirm_take_over = lambda review: asked.append(review.claimed_by) or False
    w.select_case(key)
    assert asked == ["ben"] and w.review.read_only and w.db.get(key).claimed_by == "ben"
    w.review.confirm_take_over = lambda review: True
    w.select_case(key)
    assert not w.review.read_only and w.db.get(key).claimed_by == "ana"
    assert ("ana", "take over", "from ben") in [(r, a, d) for _, r, a, d in w.db.history(key)]


def test_the_team_server_in_the_panel(make_napari_viewer, tmp_path, pg_cluster, monkeypatch):
    """The field's default comes from NAPARI_SPINE_REVIEW_DB; a URL with a password is
    refused without showing it; a save whose connection is lost says so, and nothing of it
    is half there."""
    import psycopg

    url = pg_cluster.new_database()
    monkeypatch.setenv("NAPARI_SPINE_REVIEW_DB", url)
    first = make_napari_viewer()
    _, fresh = first.window.add_plugin_dock_widget(PLUGIN, "Spine QA review")
    assert fresh.db_path.text() == url
    first.close()
    viewer, w = _setup(make_napari_viewer, pg_cluster.url(url.rsplit("/", 1)[1], password="Open-Sesame-7"))
    assert w.open_db() is None and "pgpass" in w.message.text() and "Open-Sesame-7" not in w.message.text()
    assert "Open-Sesame-7" not in w.db_path.text() and ":***@" in w.db_path.text()
    w.db_path.setText(url)
    w.compute(sync=True)
    w.reviewer.setText("ana")
    db = w.open_db()
    assert db is not None and db.kind == "postgres"

    def lost(con):
        con.rollback()
        raise psycopg.OperationalError("server closed the connection unexpectedly")
    monkeypatch.setattr(db._store, "_commit", lost)
    w.status.setCurrentText("approved")
    assert not w.save_review()
    assert "may or may not have been saved" in w.message.text()
    monkeypatch.undo()
    key = w.case_key()
    assert db.queue() == [] and db.latest_metrics(key) is None  # the whole save was rolled back
    assert w.save_review() and db.get(key).status == "approved" and db.latest_snapshot(key)[0]
    csv_path, html_path = w.write_report(tmp_path)
    assert f"{key}," in csv_path.read_text() and "approved" in html_path.read_text()
