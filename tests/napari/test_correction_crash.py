"""A crashed correction session, walked as an annotator would: napari is killed (SIGKILL)
after real brush strokes on the canvas, started again at 1366x768, painting before the
choice is refused with the reason in view, and Restore gives the exact last state."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

PLUGIN = "napari-spine"

_CHILD = textwrap.dedent("""
    import os, signal, sys, time
    import numpy as np
    import napari
    from qtpy.QtCore import QPoint, Qt
    from qtpy.QtTest import QTest
    from qtpy.QtWidgets import QApplication

    out, source = sys.argv[1], sys.argv[2]
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1366, 768)
    if source == "sample":
        viewer.open_sample("napari-spine", "ct_lumbar")
    else:  # a real file: the reader's strided views, the journal keyed by its path
        viewer.open(source, plugin="napari-spine")
    labels = [ly for ly in viewer.layers if ly._type_string == "labels"][0]
    viewer.layers.selection.active = labels
    _, w = viewer.window.add_plugin_dock_widget("napari-spine", "Spine correction")

    def settle(seconds=0.3):
        end = time.time() + seconds
        while time.time() < end:
            QApplication.processEvents()

    settle(1.0)
    labels.selected_label, labels.brush_size, labels.mode = 25, 6, "paint"
    canvas = viewer.window._qt_viewer.canvas.native
    cx, cy = canvas.width() // 2, canvas.height() // 2
    for dy in (0, 40):  # two strokes, each pressed, dragged and released with the mouse
        QTest.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(cx, cy + dy))
        for k in range(1, 8):
            QTest.mouseMove(canvas, QPoint(cx + 4 * k, cy + dy))
            settle(0.02)
        QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(cx + 28, cy + dy))
        settle(0.5)
    w.lock("L3")  # and a lock: the history holds more than voxels
    deadline = time.time() + 30
    while len([e for e in w.session().journal.entries() if e.kind == "do"]) < 3 and time.time() < deadline:
        settle(0.1)
    np.save(os.path.join(out, "last.npy"), np.asarray(labels.data))
    print("steps", len(w.session().journal.entries()), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no clean-up, no save, no closing of the journal
""")


def _settle(qtbot, ms=300):
    qtbot.wait(ms)


def _drag(qtbot, canvas, y_offset=0):
    from qtpy.QtCore import QPoint, Qt

    cx, cy = canvas.width() // 2, canvas.height() // 2 + y_offset
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(cx, cy))
    for k in range(1, 8):
        qtbot.mouseMove(canvas, QPoint(cx + 4 * k, cy))
        qtbot.wait(20)
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(cx + 28, cy))
    qtbot.wait(300)


def _in_view(widget, window) -> bool:
    """The widget is shown inside the window's 1366x768 rectangle, without scrolling."""
    from qtpy.QtCore import QPoint, QRect

    if widget.visibleRegion().isEmpty():
        return False
    top_left = widget.mapTo(window, QPoint(0, 0))
    return window.rect().contains(QRect(top_left, widget.size()))


@pytest.mark.parametrize("source", ["sample", "tptbox_ct"])
def test_kill_relaunch_paint_is_refused_and_restore_gives_the_last_state(make_napari_viewer, qtbot, tmp_path,
                                                                         source, request):
    if source == "sample":
        path = "sample"
    else:  # the TPTBox CT crop of ../shared/realdata (L2-L4, its labels found beside it)
        path = str(request.getfixturevalue("realdata") / "tptbox_ct" / "sub-ct_label-22_ct.nii.gz")
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path), path], capture_output=True, text=True,
                          timeout=240, env=dict(os.environ))
    assert proc.returncode == -9, proc.stderr[-3000:]
    assert "steps 3" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    last = np.load(tmp_path / "last.npy")

    viewer = make_napari_viewer(show=True)  # napari again, on a laptop screen
    win = viewer.window._qt_window
    win.resize(1366, 768)
    if source == "sample":
        viewer.open_sample(PLUGIN, "ct_lumbar")
    else:
        viewer.open(path, plugin=PLUGIN)
    labels = [ly for ly in viewer.layers if ly._type_string == "labels"][0]
    loaded = np.asarray(labels.data).copy()
    assert (last != loaded).sum() > 20  # the strokes painted
    viewer.layers.selection.active = labels
    _, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine correction")
    _settle(qtbot, 800)
    assert w.banner.kind == "pending" and "3 edits (last: lock L3" in w.banner.text.text()
    assert w.restore_btn.text() == "Restore 3 edits"
    for widget in (w.banner.text, w.restore_btn, w.discard_btn):
        assert _in_view(widget, win), widget  # the choice is in view, no scrolling needed
    assert not labels.editable and not w.paint_box.isEnabled() and not w.levels_box.isEnabled()
    canvas = viewer.window._qt_viewer.canvas.native

    # a stroke before the choice: napari's paint is off, nothing changes
    labels.mode = "paint"
    _drag(qtbot, canvas)
    assert np.array_equal(labels.data, loaded)
    # painting switched back on behind the panel's back: the stroke is put back, and said
    labels.editable = True
    labels.selected_label, labels.brush_size, labels.mode = 25, 6, "paint"
    _drag(qtbot, canvas, 40)
    qtbot.waitUntil(lambda: "Painting refused" in w.banner.message.text(), timeout=3000)
    assert np.array_equal(labels.data, loaded) and _in_view(w.banner.message, win)
    assert not labels.editable and w.session().pending  # the offer stands
    shot = viewer.screenshot(canvas_only=False, flash=False)
    assert shot.shape[1] >= 1366 - 20 and shot.shape[0] >= 700
    from skimage.io import imsave

    imsave(tmp_path / f"correction-after-crash-{source}-1366x768.png", shot, check_contrast=False)

    from qtpy.QtCore import Qt

    qtbot.mouseClick(w.restore_btn, Qt.MouseButton.LeftButton)  # the user chooses Restore
    assert np.array_equal(labels.data, last)  # exactly the killed session's last state
    assert w.session().locked == {22} and labels.editable and not w.banner.isVisible()
    assert [s.op for s in w.session().history.undo_stack][-1] == "lock L3"
    w.undo()  # and its history goes on
    assert w.session().locked == frozenset()


_CLOSE_WHILE_CHECKING = textwrap.dedent("""
    import sys
    import napari
    from qtpy.QtWidgets import QApplication
    from napari_spine import make_phantom
    from napari_spine._napari._layers import case_to_layer_data

    viewer = napari.Viewer(show=True)
    case = make_phantom((160, 400, 300), levels=("T1", "S1"), seed=1)  # a check of about a second
    for data, kw, kind in case_to_layer_data(case, image_name="ct"):
        getattr(viewer, f"add_{kind}")(data, **kw)
    labels = [ly for ly in viewer.layers if ly._type_string == "labels"][0]
    viewer.layers.selection.active = labels
    _, w = viewer.window.add_plugin_dock_widget("napari-spine", "Spine correction")
    for _ in range(5):
        QApplication.processEvents()
    w.check_box.live.start()
    busy = w.check_box.live.task.busy
    viewer.close()  # while the level check runs, then straight out of the program
    print("closed", busy, w.check_box.live.task.busy, flush=True)
    sys.exit(0)
""")


def test_closing_napari_while_the_level_check_runs_ends_the_program_cleanly():
    proc = subprocess.run([sys.executable, "-c", _CLOSE_WHILE_CHECKING], capture_output=True, text=True,
                          timeout=240, env=dict(os.environ))
    assert "closed True False" in proc.stdout, proc.stdout + proc.stderr[-2000:]  # it ran, and was waited for
    assert proc.returncode == 0 and "has been deleted" not in proc.stderr, proc.stderr[-2000:]
