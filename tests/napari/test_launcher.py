import os
import subprocess
import sys

import numpy as np
import pytest


@pytest.mark.slow
def test_screenshot_of_the_real_window(tmp_path):
    from PIL import Image

    out = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "xcb"))
    proc = subprocess.run([sys.executable, "-m", "napari_spine", "--screenshot", str(out)],
                          capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    img = np.asarray(Image.open(out).convert("RGB")).astype(float)
    assert img.shape[0] > 400 and img.shape[1] > 800
    # not a black canvas: the phantom and the dock widget are drawn
    assert img.std() > 20
    centre = img[img.shape[0] // 3 : 2 * img.shape[0] // 3, img.shape[1] // 3 : 2 * img.shape[1] // 3]
    assert (centre.max(axis=-1) > 100).mean() > 0.05


def test_the_scheme_option_reads_the_labels_in_that_scheme(realdata):
    from napari.layers import Labels

    from napari_spine._napari._launch import open_viewer
    from napari_spine._napari._layers import case_from_layer

    folder = realdata / "tptbox_ct"
    viewer = open_viewer([folder / "sub-ct_label-22_ct.nii.gz", folder / "sub-ct_seg-vert_label-22_msk.nii.gz"],
                         show=False, scheme="totalseg_total")
    try:
        labels = next(ly for ly in viewer.layers if isinstance(ly, Labels))
        case = case_from_layer(labels)
        assert case.label_scheme == "totalseg_total" and not np.asarray(labels.data).any()
        # TotalSegmentator's 21-23 are organs: the file's L2-L4 read as that tool's classes
        assert {e.name for e in case.other_structures()} == {"urinary_bladder", "prostate", "kidney_cyst_left"}
    finally:
        viewer.close()


def _docks(viewer) -> dict:
    from qtpy.QtWidgets import QDockWidget

    from napari_spine._napari._launch import TABS

    names = {n for n, _ in TABS}
    return {d.objectName(): d for d in viewer.window._qt_window.findChildren(QDockWidget) if d.objectName() in names}


def test_short_tab_titles_and_the_dock_layout_is_remembered(tmp_path, monkeypatch):
    from qtpy.QtWidgets import QApplication

    from napari_spine._napari import _launch

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    viewer = _launch.open_viewer(sample="none", show=False)
    try:
        docks = _docks(viewer)
        assert {docks[n].windowTitle() for n, _ in _launch.TABS} == {"Dataset", "Case", "Correct", "Model", "QA"}
        assert not docks["Spine QA review"].isFloating()
        docks["Spine QA review"].setFloating(True)  # the user pulls the QA panel out
        QApplication.processEvents()
        assert _launch.save_layout(viewer.window._qt_window)
    finally:
        viewer.close()
    assert (tmp_path / "napari-spine" / "window-layout.bin").stat().st_size > 0
    again = _launch.open_viewer(sample="none", show=False)
    try:
        docks = _docks(again)
        assert docks["Spine QA review"].isFloating() and not docks["Spine case"].isFloating()
    finally:
        again.close()
