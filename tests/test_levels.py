import numpy as np
import pytest

from napari_spine import make_phantom, ontology
from napari_spine.anatomy.labelmaps import get_label_map
from napari_spine.anatomy.levels import identify_levels


def _semantic(case):
    """CSpineSeg-style masks of a phantom: 50 body, 100 disc (no levels)."""
    lm = get_label_map("cspineseg")
    kept = np.where(np.isin(case.labels, list(lm.from_canonical)), case.labels, 0).astype(np.uint8)
    return lm.to_canonical_array(lm.from_canonical_array(kept))


def test_levels_recovered_from_semantic_masks():
    case = make_phantom((24, 160, 96), (1.0, 1.0, 1.0), levels=("C2", "T1"), modality="MR-T2",
                        include_canal=False)
    semantic = _semantic(case)
    assert set(np.unique(semantic)) == {0, 50, 100}
    res = identify_levels(semantic, anchor="C2", spacing=case.spacing)
    assert np.array_equal(res.labels, case.labels)  # every voxel gets its true level back
    assert [v for v, _ in res.bodies] == [ontology.vertebra_id(v) for v in ("C2", "C3", "C4", "C5", "C6", "C7", "T1")]
    assert [d for d, _ in res.discs] == [102, 103, 104, 105, 106, 107]
    assert not res.warnings
    assert set(np.unique(semantic)) == {0, 50, 100}  # input untouched


def test_whole_vertebrae_are_numbered_too():
    # the bundled model's output: 51 whole vertebra, 100 disc
    case = make_phantom((24, 160, 96), (1.0, 1.0, 1.0), levels=("C2", "T1"), modality="MR-T2",
                        include_canal=False)
    semantic = np.where(np.isin(case.labels, [ontology.vertebra_id(v) for v in
                                              ("C2", "C3", "C4", "C5", "C6", "C7", "T1")]),
                        ontology.GENERIC_VERTEBRA, case.labels).astype(np.uint8)
    semantic[(semantic > 100) & (semantic < 200)] = ontology.GENERIC_DISC
    res = identify_levels(semantic, anchor="C2", spacing=case.spacing)
    assert np.array_equal(res.labels, case.labels)
    assert ontology.by_name("vertebra").id == ontology.GENERIC_VERTEBRA
    assert ontology.by_name("vertebral body").id == ontology.GENERIC_VERTEBRAL_BODY


def test_anchor_is_editable_and_off_by_one_shifts_everything():
    case = make_phantom((24, 128, 96), levels=("L1", "L4"), include_canal=False)
    semantic = _semantic(case)
    res = identify_levels(semantic, anchor="T12", spacing=case.spacing)
    assert [v for v, _ in res.bodies] == [19, 20, 21, 22]
    assert [d for d, _ in res.discs] == [119, 120, 121]


def test_small_fragments_stay_generic_and_bad_anchor():
    lab = np.zeros((10, 40, 20), np.uint8)
    lab[2:8, 5:15, 5:15] = 50
    lab[2:8, 25:35, 5:15] = 50
    lab[0, 0, 0] = 50  # a 1-voxel speck
    res = identify_levels(lab, anchor="L4", min_volume_mm3=5)
    assert res.labels[0, 0, 0] == 50
    assert set(np.unique(res.labels)) == {0, 23, 24, 50}
    with pytest.raises(ValueError, match="anchor"):
        identify_levels(lab, anchor="X9")


def test_running_past_the_sacrum_is_reported():
    lab = np.zeros((6, 60, 10), np.uint8)
    for k in range(3):
        lab[1:5, 5 + 20 * k : 15 + 20 * k, 2:8] = 50
    res = identify_levels(lab, anchor="L5")
    assert [v for v, _ in res.bodies] == [24, 26]
    assert res.warnings and "below S1" in res.warnings[0]


def test_a_disc_above_the_topmost_body_takes_the_level_above_it():
    """The field of view cuts the vertebra above the first body but shows the disc under it:
    that disc is the one between the level above the anchor and the anchor, said as a guess;
    above C2 there is no disc, so it stays generic."""
    lab = np.zeros((8, 80, 12), np.uint8)
    for a, b, v in ((2, 6, 100), (7, 17, 50), (18, 22, 100), (23, 33, 50), (34, 38, 100), (39, 49, 50),
                    (50, 54, 100)):
        lab[1:7, a:b, 2:10] = v
    res = identify_levels(lab, anchor="L2")
    assert [v for v, _ in res.bodies] == [21, 22, 23]
    assert [d for d, _ in res.discs] == [120, 121, 122, 123]  # L1/L2 above L2, L4/L5 below L4
    assert (res.labels[:, 2:6] == 120).sum() == (lab[:, 2:6] == 100).sum()
    assert res.warnings == ["the disc at row 4 has no body above it: named L1/L2 from the sequence"]
    top = identify_levels(lab, anchor="C2")
    assert [d for d, _ in top.discs] == [102, 103, 104]
    assert (top.labels[:, 2:6] == 100).all() == (lab[:, 2:6] == 100).all()
    assert set(np.unique(top.labels[:, 2:6])) == {0, 100}  # no C1/C2 disc exists: generic
    assert any("no level above it; left unassigned" in w for w in top.warnings)
