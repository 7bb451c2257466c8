from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from napari_spine import make_phantom
from napari_spine._napari._layers import case_to_layer_data
from napari_spine._napari.panels.case import CaseWidget

PLUGIN = "napari-spine"


@pytest.fixture
def viewer_widget(make_napari_viewer):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine case")
    assert isinstance(widget, CaseWidget)
    return viewer, widget


def test_widget_summarises_the_case(viewer_widget):
    viewer, w = viewer_widget
    assert "No spine case" in w.summary.text()
    viewer.open_sample(PLUGIN, "ct_lumbar")
    assert "phantom-ct" in w.summary.text() and "LPS" in w.summary.text()
    assert not w.warning.isVisibleTo(w)
    names = [w.structures.item(i).text().split("  ")[0] for i in range(w.structures.count())]
    assert names[:3] == ["T10", "T10/T11", "T11"]  # cranio-caudal order
    assert "L5/S1" in names and "Spinal canal" in names


def test_window_presets(viewer_widget):
    viewer, w = viewer_widget
    image, *_ = viewer.open_sample(PLUGIN, "ct_lumbar")
    viewer.layers.selection.active = image
    assert w.apply_window("Soft tissue") == (-160.0, 240.0)
    assert tuple(image.contrast_limits) == pytest.approx((-160.0, 240.0))
    assert w.apply_window("Bone") == (-500.0, 1300.0)
    lo, hi = w.apply_window("Auto (0.5-99.5 %)")
    assert -1100 < lo < hi < 1500


def test_go_to_structure_and_name_under_cursor(viewer_widget):
    viewer, w = viewer_widget
    layers = viewer.open_sample(PLUGIN, "ct_lumbar")
    labels = layers[1]
    world = w.go_to_structure(22)
    ijk = np.round(labels.world_to_data(world)).astype(int)
    assert labels.data[tuple(ijk)] == 22
    shown = int(np.round(labels.world_to_data(viewer.dims.point)[0]))
    assert (labels.data[shown] == 22).any()  # the displayed sagittal slice cuts through L3
    text = w.describe_position(world)
    assert text.startswith("L3, RAS (")


def test_oblique_warning_is_visible(viewer_widget):
    viewer, w = viewer_widget
    case = make_phantom((16, 48, 32), levels=("L3", "L4"), oblique_deg=15)
    for data, kw, kind in case_to_layer_data(case):
        getattr(viewer, f"add_{kind}")(data, **kw)
    assert w.warning.isVisibleTo(w) and "oblique" in w.warning.text()


def test_export_from_widget(viewer_widget, tmp_path):
    viewer, w = viewer_widget
    layers = viewer.open_sample(PLUGIN, "mr_cervical")
    labels = layers[1]
    viewer.layers.selection.active = labels
    labels.data[labels.data == 22] = 0  # an edit
    res = w.export_labels_to(tmp_path / "edited.nii.gz", scheme="canonical")
    back = np.asanyarray(nib.load(res.path).dataobj)
    assert res.counts == {int(k): int(v) for k, v in zip(*np.unique(back[back > 0], return_counts=True))}
    assert 22 not in res.counts and 5 in res.counts
    lm = w.export_landmarks_to(tmp_path / "lm.csv")
    assert lm.read_text().startswith("index,name,structure_id")


def test_structure_list_follows_edits(viewer_widget, qtbot):
    viewer, w = viewer_widget
    layers = viewer.open_sample(PLUGIN, "ct_lumbar")
    labels = layers[1]
    viewer.layers.selection.active = labels
    names = lambda: [w.structures.item(i).text().split("  ")[0] for i in range(w.structures.count())]  # noqa: E731
    assert "L6" not in names()
    labels.brush_size = 3
    labels.paint((48, 10, 10), 25)  # paint an L6 blob in the corner
    qtbot.waitUntil(lambda: "L6" in names(), timeout=3000)
    labels.data = np.where(labels.data == 22, 0, labels.data).astype(np.uint8)
    qtbot.waitUntil(lambda: "L3" not in names(), timeout=3000)


def test_a_totalsegmentator_file_alone_lists_spine_and_other_structures(realdata, viewer_widget):
    viewer, w = viewer_widget
    (layer,) = viewer.open(str(realdata / "totalseg_small" / "multilabel" / "example_seg.nii.gz"),
                           plugin=PLUGIN)
    assert layer.__class__.__name__ == "Labels"
    viewer.layers.selection.active = layer
    w._refresh_structures()
    rows = [w.structures.item(i).text().strip() for i in range(w.structures.count())]
    spine = [r.split("  ")[0] for r in rows[:5]]
    assert spine == ["T11", "T12", "L1", "L2", "Spinal cord"]
    head = next(r for r in rows if r.startswith("Other structures"))
    assert "36" in head and "file header" in head
    assert any(r.startswith("liver  (") for r in rows) and not any(r.startswith("C1") for r in rows)
    where = layer.data_to_world(np.argwhere(np.asarray(layer.data) == 20)[0])
    viewer.dims.set_point(range(3), where)
    assert layer.get_value(where, world=True) == 20
    assert w.describe_position(where).startswith("L1")  # names under the cursor
    case = w.current_case() or __import__("napari_spine")._napari._layers.case_from_layer(layer)
    liver = next(e.native_id for e in case.other_structures() if e.name == "liver")
    at = layer.data_to_world(np.argwhere(np.asarray(case.native_labels) == liver)[0])
    viewer.dims.set_point(range(3), at)
    assert w.describe_position(at).startswith("liver (other structure)")


def test_changing_the_scheme_renames_in_place_and_can_be_undone(realdata, viewer_widget):
    viewer, w = viewer_widget
    folder = realdata / "tptbox_ct"
    layers = viewer.open([str(folder / "sub-ct_label-22_ct.nii.gz"),
                          str(folder / "sub-ct_seg-vert_label-22_msk.nii.gz")], plugin=PLUGIN)
    labels = next(ly for ly in viewer.layers if ly.__class__.__name__ == "Labels")
    image = next(ly for ly in viewer.layers if ly.__class__.__name__ == "Image")
    viewer.layers.selection.active = labels
    w._refresh_structures()
    items = [w.label_scheme.itemText(i) for i in range(w.label_scheme.count())]
    assert items[0] == "verse" and "totalseg_total" in items and "cspineseg" not in items
    assert "Names from: scheme" in w.names_from.text()
    before = [w.structures.item(i).text().split("  ")[0] for i in range(w.structures.count())]
    assert before[:3] == ["L2", "L3", "L4"]
    image_data = image.data
    assert w.set_scheme("totalseg_total")  # ids 21-23 are organs there: no spine structure left
    assert image.data is image_data and len(viewer.layers) == len(layers)  # nothing reloaded
    after = [w.structures.item(i).text().strip() for i in range(w.structures.count())]
    assert not any(r.startswith("L2") for r in after)
    assert any(r.startswith("Other structures") for r in after)
    assert w.undo_scheme()
    again = [w.structures.item(i).text().split("  ")[0] for i in range(w.structures.count())]
    assert again == before and w.label_scheme.currentText() == "verse"
    assert not w.undo_scheme_btn.isEnabled()


def test_a_dicom_series_opens_with_its_details_and_saves_as_dicom_seg(viewer_widget, tmp_path):
    pytest.importorskip("highdicom")
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from test_dicom import _volume, write_series

    viewer, w = viewer_widget
    write_series(tmp_path / "dcm", _volume(), (1, 0, 0), (0, 1, 0), (0, 0, 2.0), (0, 0, 0),
                 description="T2 sag spine")
    layers = viewer.open(str(tmp_path / "dcm"), plugin=PLUGIN)
    viewer.layers.selection.active = layers[0]
    text = w.summary.text()
    assert "(dicom)" in text and "Series: T2 sag spine" in text and "Study date: 20260101" in text
    assert "Test^Phantom" not in text and w.seg_btn.isVisibleTo(w) and w.show_ids.isVisibleTo(w)
    w.show_ids.setChecked(True)
    assert "patient name: Test^Phantom" in w.summary.text()
    labels = viewer.add_labels(np.zeros(layers[0].data.shape, np.uint8), name="edit",
                               metadata=dict(layers[0].metadata))
    labels.data[3:9, 2:5, 4:12] = 22
    viewer.layers.selection.active = labels
    res = w.export_seg_to(tmp_path / "seg.dcm")
    assert res.segments == {1: "L3"} and res.path.is_file()
    viewer.open_sample(PLUGIN, "ct_lumbar")
    assert not w.seg_btn.isVisibleTo(w)  # a NIfTI case has no series to reference
    from helpers import REALDATA

    mosaic = REALDATA / "dicom_transfer_syntaxes" / "In" / "1.dcm"
    if mosaic.is_file():
        viewer.layers.selection.active = viewer.open(str(mosaic), plugin=PLUGIN)[0]
        assert "SIEMENS" in w.summary.text() and not w.seg_btn.isVisibleTo(w)  # a mosaic cannot be referenced
