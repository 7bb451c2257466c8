from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helpers import sign_model_file  # noqa: E402
from napari_spine._napari.panels.inference import InferenceWidget  # noqa: E402

PLUGIN = "napari-spine"


def sign_model(path, patch=(16, 16, 16)):
    return str(sign_model_file(path, patch_size=list(patch)))


def _setup(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "ct_lumbar")
    _, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine inference")
    assert isinstance(w, InferenceWidget)
    w.confirm_trust = lambda err: True  # the test models are the tests' own code
    return viewer, w


def test_result_is_a_new_layer_and_the_annotators_labels_are_untouched(make_napari_viewer, tmp_path):
    viewer, w = _setup(make_napari_viewer)
    image, labels = viewer.layers[0], viewer.layers[1]
    before = np.array(labels.data, copy=True)
    n = len(viewer.layers)
    w.image.setCurrentText(image.name)
    w.add_model_source(sign_model(tmp_path / "sign.ts"))
    w.device.setCurrentIndex(w.device.findData("cpu"))
    pred = w.run(sync=True)
    assert len(viewer.layers) == n + 1
    new = viewer.layers[-1]
    assert "prediction (sign)" in new.name and new is not labels
    np.testing.assert_array_equal(np.asarray(new.data), np.where(np.asarray(image.data) > 0, 20, 0))
    np.testing.assert_array_equal(np.asarray(labels.data), before)
    np.testing.assert_allclose(new.scale, image.scale)
    np.testing.assert_allclose(new.translate, image.translate)
    assert pred.device == "cpu" and "sign on cpu" in w.status.text()
    where = new.data_to_world(np.argwhere(np.asarray(new.data) == 20)[0])
    assert new.get_value(where, world=True) == 20


def test_current_slice_only(make_napari_viewer, tmp_path):
    viewer, w = _setup(make_napari_viewer)
    image = viewer.layers[0]
    w.image.setCurrentText(image.name)
    w.add_model_source(sign_model(tmp_path / "sign.ts"))
    w.scope.setCurrentText("Current slice")
    viewer.dims.set_point(0, image.data_to_world((12, 0, 0))[0])
    w.run(sync=True)
    data = np.asarray(viewer.layers[-1].data)
    assert data[12].any() and not data[:12].any() and not data[13:].any()


def test_background_run_with_progress_then_cancel(make_napari_viewer, qtbot, tmp_path):
    viewer, w = _setup(make_napari_viewer)
    w.image.setCurrentText(viewer.layers[0].name)
    w.add_model_source(sign_model(tmp_path / "sign.ts", patch=(8, 8, 8)))  # many windows
    seen = []
    w.progress.valueChanged.connect(seen.append)
    n = len(viewer.layers)
    worker = w.run()
    assert worker is not None and not w.run_btn.isEnabled() and w.cancel_btn.isEnabled()
    qtbot.waitUntil(lambda: len(seen) >= 3, timeout=60000)  # the UI thread stays free
    w.cancel()
    qtbot.waitUntil(lambda: not w.task.busy, timeout=60000)
    assert "Cancelled" in w.status.text() and len(viewer.layers) == n
    assert w.run_btn.isEnabled() and not w.progress.isVisible()
    # a second, complete background run
    w.add_model_source(sign_model(tmp_path / "sign16.ts"))
    seen.clear()
    w.run()
    qtbot.waitUntil(lambda: not w.task.busy, timeout=120000)
    assert len(viewer.layers) == n + 1 and seen and max(seen) == w.progress.maximum()


def test_a_broken_model_is_reported_and_nothing_is_added(make_napari_viewer, tmp_path):
    viewer, w = _setup(make_napari_viewer)
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"not a checkpoint at all")
    w.add_model_source(str(bad))
    n = len(viewer.layers)
    w.run(sync=True)
    assert w.status.text().startswith("Failed:") and "broken.pth" in w.status.text()
    assert len(viewer.layers) == n and w.run_btn.isEnabled()


def test_bundled_model_runs_from_the_panel(make_napari_viewer, qtbot):
    viewer, w = _setup(make_napari_viewer)
    w.image.setCurrentText(viewer.layers[0].name)
    w.run()
    qtbot.waitUntil(lambda: not w.task.busy, timeout=300000)
    new = viewer.layers[-1]
    assert "prediction" in new.name, w.status.text()
    ids = set(np.unique(np.asarray(new.data)).tolist())
    assert {51, 100} <= ids  # vertebrae and discs (levels not assigned)
    assert "structures" in w.status.text()


def test_devices_are_listed(make_napari_viewer):
    _, w = _setup(make_napari_viewer)
    items = [w.device.itemData(i) for i in range(w.device.count())]
    assert items[0] == "auto" and items[-1] == "cpu"
    assert "CPU" in w.device.itemText(w.device.count() - 1)


def test_a_plain_napari_image_layer_can_be_segmented(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    data = (rng.integers(-5, 6, (12, 30, 20)) * 10).astype(np.int16)
    image = viewer.add_image(data, name="plain", scale=(2.0, 1.0, 0.5), translate=(3.0, -4.0, 1.0))
    _, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine inference")
    w.confirm_trust = lambda err: True  # the test model is the test's own code
    w.image.setCurrentText("plain")
    w.add_model_source(sign_model(tmp_path / "sign.ts"))
    w.run(sync=True)
    new = viewer.layers[-1]
    np.testing.assert_array_equal(np.asarray(new.data), np.where(data > 0, 20, 0))
    np.testing.assert_allclose(new.scale, image.scale)
    np.testing.assert_allclose(new.translate, image.translate)


def test_a_torchscript_file_runs_only_after_the_user_trusts_it(make_napari_viewer, tmp_path):
    viewer, w = _setup(make_napari_viewer)
    asked = []
    w.confirm_trust = lambda err: asked.append(err) or False  # the user says no
    n = len(viewer.layers)
    w.image.setCurrentText(viewer.layers[0].name)
    path = sign_model(tmp_path / "sign.ts")
    w.add_model_source(path)
    w.device.setCurrentIndex(w.device.findData("cpu"))
    w.run(sync=True)
    assert len(asked) == 1 and asked[0].path == path and len(asked[0].sha256) == 64
    assert len(viewer.layers) == n and "was not trusted" in w.status.text()
    assert w.run_btn.isEnabled() and not w.task.busy  # nothing started
    w.confirm_trust = lambda err: asked.append(err) or True  # asked again, and the user says yes
    pred = w.run(sync=True)
    assert len(asked) == 2 and pred.labels is not None and len(viewer.layers) == n + 1
    w.confirm_trust = lambda err: pytest.fail("asked again for a file already trusted")
    w._models.clear()
    w.run(sync=True)
    assert len(viewer.layers) == n + 2


# -- external engines ------------------------------------------------------------------------------
from engine_standins import standin  # noqa: E402,F401  (a fixture)


def test_engines_are_in_the_picker_with_their_state(make_napari_viewer, standin, monkeypatch):
    from napari_spine.inference import engines as eng

    standin("totalspineseg", weights=False)
    viewer, w = _setup(make_napari_viewer)
    titles = [w.model.itemText(i) for i in range(w.model.count())]
    assert all(e.title in titles for e in eng.ENGINES.values())
    w.model.setCurrentText("TotalSpineSeg")
    assert "weights missing" in w.model_info.text() and not w.download_btn.isHidden()
    w.download(confirmed=False)
    assert w.status.text() == "Nothing was downloaded."
    monkeypatch.setattr(eng, "_reachable", lambda host, timeout=3.0: False)
    w.download(confirmed=True, sync=True)
    assert "cannot reach github.com" in w.status.text()
    standin("totalspineseg", weights=True)
    w.model.setCurrentText("SPINEPS")
    w.model.setCurrentText("TotalSpineSeg")
    assert ": ready" in w.model_info.text() and w.download_btn.isHidden()


def test_an_engine_result_is_a_new_layer_with_its_provenance(make_napari_viewer, standin, monkeypatch):
    standin("totalsegmentator")
    viewer, w = _setup(make_napari_viewer)
    image = viewer.layers[0]
    w.image.setCurrentText(image.name)
    w.model.setCurrentText("TotalSegmentator (CT)")
    w.device.setCurrentIndex(w.device.findData("cpu"))
    n = len(viewer.layers)
    w.run(sync=True)
    assert len(viewer.layers) == n + 1
    meta = viewer.layers[-1].metadata["napari_spine_prediction"]
    assert meta["provenance"]["engine"] == "totalsegmentator" and meta["provenance"]["device"] == "cpu"
    monkeypatch.setenv("STANDIN_FAIL", "RuntimeError: CUDA out of memory")
    w.run(sync=True)
    assert w.status.text().startswith("Failed: TotalSegmentator failed (exit status 3): RuntimeError: CUDA out")
    assert len(viewer.layers) == n + 1
