from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from napari_spine._napari._layers import case_from_layer
from napari_spine._napari.panels.dataset import DatasetWidget
from napari_spine.testing import trees as syn

PLUGIN = "napari-spine"


@pytest.fixture
def widget(make_napari_viewer):
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine dataset")
    assert isinstance(w, DatasetWidget)
    return viewer, w


def _wait_loaded(qtbot, w, case_id):
    qtbot.waitUntil(lambda: w.current is not None and w.current.case_id == case_id and not w.task.busy,
                    timeout=20000)


def test_open_filter_load_next_previous(widget, qtbot, tmp_path):
    viewer, w = widget
    root = syn.write_ctspine1k(tmp_path / "ct", "hf")
    seg = root / "raw_data" / "labels" / "MSD-T10" / "liver_0_seg.nii.gz"
    img = nib.load(seg)
    nib.save(nib.Nifti1Image(np.where(np.asanyarray(img.dataobj) == 20, 0, img.dataobj).astype(np.uint8),
                             img.affine, img.header), seg)  # liver_0 has no L1, unlike the others
    assert w.open(root) is not None
    assert "CTSpine1K" in w.kind.text() and w.table.rowCount() == 10
    assert "25 L6" in w.notes.text()  # the assumption is said
    w.split.setCurrentText("train")
    assert w.table.rowCount() == 4
    w.split.setCurrentText("all")
    w.filter.setText("liver")
    assert w.table.rowCount() == 3 and all("liver" in c.case_id for c in w.visible_cases)
    w.load_row(0)
    first = w.visible_cases[0].case_id
    _wait_loaded(qtbot, w, first)
    assert [ly._type_string for ly in viewer.layers] == ["image", "labels"]
    assert "group" in w.metadata.toPlainText() and "MSD-T10" in w.metadata.toPlainText()
    w.next_case()
    second = w.visible_cases[1].case_id
    _wait_loaded(qtbot, w, second)
    assert len(viewer.layers) == 2  # replaced, not piled up
    case = case_from_layer(viewer.layers[0])
    assert case.case_id == second and case_from_layer(viewer.layers[1]) is case
    assert viewer.layers[0].data is case.image and viewer.layers[1].data is case.labels
    assert tuple(viewer.layers[1].translate) == pytest.approx(case.display.translate)
    assert tuple(viewer.layers[0].scale) == pytest.approx(case.display.scale)
    # an edit in one case can never be undone into the next one: paint where the two cases
    # differ, so an undo leaking across cases would change the other case's labels
    other = w.dataset.load_case(first).labels
    here = np.asarray(viewer.layers[1].data)
    p = tuple(int(i) for i in np.argwhere(other != here)[0])
    viewer.layers[1].brush_size = 1
    viewer.layers[1].paint(p, 25)
    w.previous_case()
    _wait_loaded(qtbot, w, first)
    before = viewer.layers[1].data.copy()
    viewer.layers[1].undo()
    assert np.array_equal(viewer.layers[1].data, before)
    w.pin.setChecked(True)
    w.next_case()
    _wait_loaded(qtbot, w, second)
    assert len(viewer.layers) == 4  # pinned: the previous case stays


def test_mmcsd_sequences_load_together(widget, qtbot, tmp_path):
    viewer, w = widget
    w.open(syn.write_mmcsd(tmp_path / "mm"))
    assert w.sequence.count() == 6
    w.sequence.setCurrentText("all")
    w.load_row(0)
    _wait_loaded(qtbot, w, "1")
    names = [ly.name for ly in viewer.layers]
    assert len(names) == 4 and any("t2_sag" in n for n in names) and any("ct_bone" in n for n in names)
    assert "outcome" in w.metadata.toPlainText()


def test_ssmspine_outlines_and_unit_spacing(widget, qtbot, tmp_path):
    viewer, w = widget
    w.open(syn.write_ssmspine(tmp_path / "ssm", patients=(1,), shapes=1, splits=("Train",)))
    w.load_row(0)
    _wait_loaded(qtbot, w, "Train/p1/aug0")
    kinds = [ly._type_string for ly in viewer.layers]
    assert kinds == ["image", "labels", "points", "shapes"]
    assert len(viewer.layers[3].data) == 11  # one closed outline per structure
    assert "no physical pixel size" in w.status.text()


def test_errors_never_crash_the_widget(widget, qtbot, tmp_path):
    viewer, w = widget
    assert w.open(tmp_path) is None and "Not opened" in w.kind.text()
    root = syn.write_ctspine1k(tmp_path / "ct", "hf", names={"MSD-T10": ["liver_1"]})
    f = root / "raw_data" / "volumes" / "MSD-T10" / "liver_1.nii.gz"
    f.write_bytes(f.read_bytes()[:200])
    w.open(root)
    w.load_row(0)
    qtbot.waitUntil(lambda: "Could not load" in w.status.text(), timeout=20000)
    assert "liver_1.nii.gz" in w.status.text() and len(viewer.layers) == 0


def test_identify_levels_adds_a_derived_layer(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    _, dw = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine dataset")
    _, cw = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine case")
    dw.open(syn.write_cspineseg(tmp_path / "cs", n=2, without_mask=0, shape=(8, 160, 96)))
    dw.load_row(0)
    qtbot.waitUntil(lambda: dw.current is not None and not dw.task.busy, timeout=20000)
    labels = viewer.layers[1]
    viewer.layers.selection.active = labels
    before = labels.data.copy()
    new = cw.identify_levels("C2")
    assert new is not None and new.name.endswith("levels")
    assert np.array_equal(labels.data, before)  # the original is kept
    ids = set(np.unique(new.data)) - {0}
    assert {3, 4, 5, 103, 104} <= ids and 50 not in ids


def test_next_case_key_goes_through_napari_key_bindings(widget, qtbot, tmp_path):
    from app_model.types import KeyBinding

    viewer, w = widget
    w.open(syn.write_ctspine1k(tmp_path / "ct", "hf"))
    w.load_row(0)
    _wait_loaded(qtbot, w, w.visible_cases[0].case_id)
    from napari.components import ViewerModel

    assert viewer.keymap.get(KeyBinding.from_str("Alt+Down")) is None  # napari's own key stays napari's
    binding = ViewerModel.class_keymap.get(KeyBinding.from_str("Shift+Alt+Right"))
    assert binding is not None  # a napari action (listed in the preferences), not a Qt shortcut
    binding(viewer)
    _wait_loaded(qtbot, w, w.visible_cases[1].case_id)


def test_the_next_case_reuses_the_layers_with_its_own_colours(widget, qtbot, tmp_path):
    from napari_spine.anatomy import ontology

    viewer, w = widget
    w.open(syn.write_ssmspine(tmp_path / "ssm", patients=(1,), shapes=2, splits=("Train",)))
    w.load_row(0)
    _wait_loaded(qtbot, w, w.visible_cases[0].case_id)
    first = [ly.name for ly in viewer.layers]
    outlines = viewer.layers[3]
    outlines.edge_color = [(0, 0, 0, 1)] * len(outlines.data)  # what the next case must replace
    w.next_case()
    _wait_loaded(qtbot, w, w.visible_cases[1].case_id)
    assert len(viewer.layers) == 4 and [ly.name for ly in viewer.layers] != first  # same layers, new case
    case = case_from_layer(viewer.layers[3])
    assert case.case_id == w.visible_cases[1].case_id
    want = [ontology.color_of(int(i)) for i in viewer.layers[3].features["structure_id"]]
    np.testing.assert_allclose(viewer.layers[3].edge_color, want, atol=1e-6)


def test_automatic_levels_offer_the_neighbouring_numbering_when_assumed(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    _, dw = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine dataset")
    _, cw = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine case")
    assert cw.anchor.currentText() == "Automatic"
    dw.open(syn.write_cspineseg(tmp_path / "cs", n=2, without_mask=0, shape=(8, 160, 96)))
    dw.load_row(0)
    qtbot.waitUntil(lambda: dw.current is not None and not dw.task.busy, timeout=20000)
    viewer.layers.selection.active = viewer.layers[1]
    new = cw.identify_levels()
    result = cw._levels[1]
    assert result.assumed and "anchor assumed" in cw.status.text()  # a cervical crop: no sacrum, no dens
    assert cw.alt_up.isVisibleTo(cw) and cw.alt_down.isVisibleTo(cw)
    before = new.data.copy()
    assert cw.apply_alternative(+1)
    for lv in result.levels:  # every body one level down, and its disc with it
        seq = list(__import__("napari_spine").ontology.level_names())
        lower = __import__("napari_spine").ontology.vertebra_id(seq[seq.index(lv.name) + 1])
        assert set(np.unique(new.data[before == lv.structure_id])) == {lower}
    assert set(np.unique(new.data[before == result.discs[0][0]])) == {result.discs[0][0] + 1}
