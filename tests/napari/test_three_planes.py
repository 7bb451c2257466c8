"""The linked three-plane layout: what each view shows at the crosshair (read off the
rendered canvases), the orientation letters, painting in the axial view, jumping."""

from __future__ import annotations

import numpy as np
import pytest

from napari_spine._napari._layers import center_view_on
from napari_spine._napari._planes import planes_of
from napari_spine._napari.panels.planes import ThreePlanesWidget, toggle_three_planes

PLUGIN = "napari-spine"
SCALE = (2.0, 1.0, 1.5)  # anisotropic: a view that ignored the voxel size would miss
TRANSLATE = (5.0, -3.0, 7.0)


def _CROSS_OVER(colour):  # noqa: N802
    from napari_spine._napari._planes import _CROSS_COLOUR

    rgb, alpha = np.asarray(_CROSS_COLOUR[:3]) * 255, _CROSS_COLOUR[3]
    return alpha * rgb + (1 - alpha) * colour


def _has_letter_colour(patch) -> bool:
    from napari_spine._napari._planes import _LETTER_COLOUR

    return bool((np.abs(patch - np.asarray(_LETTER_COLOUR[:3]) * 255).max(axis=-1) < 40).sum() >= 5)


def _volume() -> np.ndarray:
    """Two boxes no plane confuses: id 7 and id 3 differ along every axis."""
    lab = np.zeros((30, 60, 40), dtype=np.uint8)
    lab[4:12, 8:20, 5:15] = 7
    lab[18:27, 35:52, 22:36] = 3
    return lab


def _settle(qtbot, ms: int = 150) -> None:
    from qtpy.QtWidgets import QApplication

    qtbot.wait(ms)
    QApplication.processEvents()


def _open(make_napari_viewer, qtbot, data=None):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1366, 768)
    labels = viewer.add_labels(_volume() if data is None else data, scale=SCALE,
                               translate=TRANSLATE, opacity=1.0, name="labels")
    _, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Three planes")
    assert isinstance(w, ThreePlanesWidget)
    _settle(qtbot, 300)
    return viewer, labels, w


def _views(viewer, w):
    """(model, QtViewer) of the sagittal, axial and coronal views."""
    p = w.planes
    return {"sagittal": (viewer, viewer.window._qt_viewer),
            **{k: (p.models[k], p.qt_viewers[k]) for k in ("axial", "coronal")}}


def _pixel(model, qt, world) -> tuple[int, int]:
    """Where a world point lands on a 2-D canvas: napari's camera, worked out here (centre,
    zoom in screen pixels per mm, rows growing downwards)."""
    r, c = model.dims.displayed
    cy, cx = model.scene.camera.center[-2:]
    h, w = qt.canvas.native.height(), qt.canvas.native.width()
    z = model.scene.camera.zoom
    return int(round(h / 2 + (world[r] - cy) * z)), int(round(w / 2 + (world[c] - cx) * z))


def _shot(qt) -> np.ndarray:
    img = np.asarray(qt.screenshot(flash=False))[..., :3].astype(int)
    assert img.shape[0] == qt.canvas.native.height()  # one image pixel per screen pixel
    return img


def test_each_view_shows_the_structure_at_the_crosshair(make_napari_viewer, qtbot):
    viewer, labels, w = _open(make_napari_viewer, qtbot)
    views = _views(viewer, w)
    for sid, voxel in ((7, (7, 11, 9)), (3, (22, 44, 30))):
        world = center_view_on(viewer, labels, voxel)
        _settle(qtbot)
        colour = np.round(np.asarray(labels.get_color(sid))[:3] * 255).astype(int)
        for name, (model, qt) in views.items():
            assert np.allclose(model.dims.point, world), name  # every view slices through it
            img = _shot(qt)
            row, col = _pixel(model, qt, world)
            # beside the crosshair (not on its lines): the structure's own colour
            assert np.abs(img[row + 4, col + 4] - colour).max() <= 12, (name, sid)
            # on the crosshair's lines, a few pixels out: its cyan over the label colour
            for on_line in (img[row - 1:row + 2, col + 9], img[row + 9, col - 1:col + 2]):
                assert np.abs(on_line - _CROSS_OVER(colour)).max(axis=1).min() <= 30, (name, sid, on_line)
        # and a voxel of the other structure is not under this crosshair
    other = center_view_on(viewer, labels, (7, 11, 9))
    _settle(qtbot)
    model, qt = views["axial"]
    row, col = _pixel(model, qt, other)
    assert np.abs(_shot(qt)[row + 4, col + 4] - np.round(np.asarray(labels.get_color(3))[:3] * 255)).max() > 40


def test_orientation_letters_follow_the_axes(make_napari_viewer, qtbot):
    viewer, _labels, w = _open(make_napari_viewer, qtbot)
    letters = {k: c.letters() for k, c in w.planes.canvases.items()}
    assert letters["main"] == {"top": "S", "bottom": "I", "left": "A", "right": "P"}
    assert letters["axial"] == {"top": "A", "bottom": "P", "left": "R", "right": "L"}
    assert letters["coronal"] == {"top": "S", "bottom": "I", "left": "R", "right": "L"}
    assert viewer.dims.axis_labels == ("R→L", "S→I", "A→P")
    _settle(qtbot)
    for _name, (_model, qt) in _views(viewer, w).items():  # drawn: the letter colour at each edge
        img = _shot(qt)
        h, wd = img.shape[:2]
        for rows, cols in ((slice(0, 30), slice(wd // 2 - 15, wd // 2 + 15)),
                           (slice(h - 30, h), slice(wd // 2 - 15, wd // 2 + 15)),
                           (slice(h // 2 - 15, h // 2 + 15), slice(0, 30)),
                           (slice(h // 2 - 15, h // 2 + 15), slice(wd - 30, wd))):
            assert _has_letter_colour(img[rows, cols]), _name
    viewer.dims.order = (1, 2, 0)  # the user rolls napari's canvas to the axial plane
    assert w.planes.canvases["main"].letters() == letters["axial"]
    viewer.scene.camera.orientation2d = ("up", "right")  # and flips it
    assert w.planes.canvases["main"].letters()["top"] == "P"
    viewer.dims.ndisplay = 3
    assert set(w.planes.canvases["main"].letters().values()) == {""}  # no plane in 3-D


def test_painting_in_the_axial_view_changes_the_right_voxels(make_napari_viewer, qtbot):
    from qtpy.QtCore import QPoint, Qt

    viewer, labels, w = _open(make_napari_viewer, qtbot)
    strokes = []
    labels.events.paint.connect(lambda e: strokes.append(e.value))
    target = (20, 10, 25)  # background, away from both boxes
    world = center_view_on(viewer, labels, target)
    labels.selected_label, labels.brush_size, labels.mode = 5, 1, "paint"
    model, qt = _views(viewer, w)["axial"]
    assert model.layers.selection.active.mode == "paint"  # the tool follows into the view
    _settle(qtbot)
    row, col = _pixel(model, qt, world)
    qtbot.mouseClick(qt.canvas.native, Qt.MouseButton.LeftButton, pos=QPoint(col, row))
    _settle(qtbot)
    painted = np.argwhere(np.asarray(labels.data) == 5)
    assert len(painted) >= 1 and np.abs(painted - target).max() <= 1, painted
    assert np.all(painted[:, 1] == target[1])  # in the axial slice shown, nowhere else
    assert strokes, "the stroke reaches the original layer's listeners (the journal)"
    labels.undo()  # napari's undo on the original undoes the axial view's stroke
    assert not np.any(np.asarray(labels.data) == 5)


def test_jumping_to_a_structure_centres_all_views(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample(PLUGIN, "ct_lumbar")
    _, case = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine case")
    toggle_three_planes(viewer)
    planes = planes_of(viewer)
    assert planes is not None
    labels = viewer.layers[1]
    world = np.asarray(case.box.go_to(22))  # L3
    centroid = labels.data_to_world(np.argwhere(np.asarray(labels.data) == 22).mean(axis=0))
    assert np.allclose(world, centroid, atol=1e-6)
    for model in (viewer, *planes.models.values()):
        r, c = model.dims.displayed
        assert np.allclose(model.scene.camera.center[-2:], (centroid[r], centroid[c]), atol=1e-6)
        assert np.allclose(model.dims.point, centroid, atol=0.51)  # on the slice through it
    assert "Sagittal view" in case.convention.text()


def test_single_view_unlinks_and_comes_back(make_napari_viewer, qtbot):
    viewer, labels, w = _open(make_napari_viewer, qtbot)
    axial = w.planes.models["axial"]
    viewer.add_points([[10, 20, 30]], name="pts")  # layers added later are mirrored
    assert [ly.name for ly in axial.layers] == ["labels", "pts"]
    labels.selected_label = 9
    assert axial.layers["labels"].selected_label == 9
    viewer.layers.remove("pts")
    assert [ly.name for ly in axial.layers] == ["labels"]
    assert toggle_three_planes(viewer) is False  # one click: back to the single view
    assert planes_of(viewer) is None and len(axial.layers) == 0
    viewer.add_points([[1, 2, 3]], name="later")  # nothing is listening any more
    viewer.dims.set_point(0, 20.0)
    assert toggle_three_planes(viewer) is True and planes_of(viewer) is not None
    assert [ly.name for ly in planes_of(viewer).models["axial"].layers] == ["labels", "later"]


def test_a_2d_case_is_told_not_linked(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_labels(np.zeros((20, 30), dtype=np.uint8))
    _, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Three planes")
    assert w.planes is None and "3-D volume" in w.status.text()


@pytest.mark.parametrize("displayed", [(1, 2), (2, 0), (1, 0)])
def test_click_moves_the_point_in_every_view(make_napari_viewer, qtbot, displayed):
    from qtpy.QtCore import QPoint, Qt

    viewer, labels, w = _open(make_napari_viewer, qtbot)
    views = {tuple(m.dims.displayed): (m, q) for m, q in _views(viewer, w).values()}
    model, qt = views[displayed]
    aim = np.asarray(labels.data_to_world((22, 44, 30)), dtype=float)
    aim[[a for a in range(3) if a not in displayed]] = model.dims.point[
        [a for a in range(3) if a not in displayed][0]]
    row, col = _pixel(model, qt, aim)
    qtbot.mouseClick(qt.canvas.native, Qt.MouseButton.LeftButton, pos=QPoint(col, row))
    _settle(qtbot)
    for other, _q in views.values():
        for a in displayed:  # the clicked position, within a pixel, in every view
            assert abs(other.dims.point[a] - aim[a]) <= 1.0 / model.scene.camera.zoom + SCALE[a] / 2


def test_a_stroke_in_the_coronal_view_is_a_correction_step(make_napari_viewer, qtbot, tmp_path):
    """The correction journal records a stroke made in another view, and the panel's undo
    (Ctrl+Z, pressed in that view) takes it back."""
    from app_model.types import KeyBinding
    from qtpy.QtCore import QPoint, Qt

    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1366, 768)
    viewer.open_sample(PLUGIN, "ct_lumbar")
    labels = viewer.layers[1]
    viewer.layers.selection.active = labels
    _, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine correction")
    w.set_output(tmp_path / "out")
    assert toggle_three_planes(viewer)
    planes = planes_of(viewer)
    before = np.asarray(labels.data).copy()
    target = (48, 30, 10)  # in front of the column: background
    assert before[target] == 0
    world = center_view_on(viewer, labels, target)
    labels.selected_label, labels.brush_size, labels.mode = 25, 1, "paint"
    model, qt = planes.models["coronal"], planes.qt_viewers["coronal"]
    _settle(qtbot, 300)
    row, col = _pixel(model, qt, world)
    qtbot.mouseClick(qt.canvas.native, Qt.MouseButton.LeftButton, pos=QPoint(col, row))
    qtbot.waitUntil(lambda: len(w.session().journal.entries()) >= 1, timeout=3000)
    changed = np.argwhere(np.asarray(labels.data) != before)
    assert len(changed) and np.all(changed[:, 2] == target[2])  # the coronal slice shown
    undo = model.layers["phantom-ct labels"].keymap.get(KeyBinding.from_str("Ctrl+Z"))
    assert undo is not None  # the panel's undo, bound on the twin too
    undo(model.layers["phantom-ct labels"])
    assert np.array_equal(np.asarray(labels.data), before)


def test_a_ruler_drawn_in_the_axial_view_is_measured(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample(PLUGIN, "ct_lumbar")
    _, m = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine measurements")
    rulers = m.rulers.arm("distance")
    assert toggle_three_planes(viewer)
    twin = planes_of(viewer).mirrors["axial"].twin_of(rulers)
    assert twin is not None and twin.mode == "add_line"
    twin.add_lines(np.array([[10.0, 100, 20], [70, 100, 20]]))  # across the axial slice
    assert len(rulers.data) == 1 and list(rulers.features["ruler"]) == ["distance"]
    case = m.ws.case_of(rulers)
    expected = 60 * float(case.spacing[0])
    assert m.rulers.table.item(0, 1).text() == f"{expected:.1f}"
    assert list(twin.features["text"]) == [f"{expected:.1f} mm"]  # shown in the axial view too
