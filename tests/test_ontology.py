import itertools

import numpy as np
import pytest

from napari_spine import ontology as o
from napari_spine.anatomy.labelmaps import available_schemes, get_label_map
from napari_spine.errors import LabelMapError


def test_canonical_ids_follow_verse_numbering():
    assert [o.vertebra_id(f"C{i}") for i in range(1, 8)] == list(range(1, 8))
    assert [o.vertebra_id(f"T{i}") for i in range(1, 13)] == list(range(8, 20))
    assert [o.vertebra_id(f"L{i}") for i in range(1, 7)] == list(range(20, 26))
    assert o.vertebra_id("S1") == 26 and o.by_name("sacrum").id == 26
    assert o.vertebra_id("T13") == 28
    assert o.by_name("coccyx").id == 27
    assert o.disc_between("C2", "C3") == 102
    assert o.disc_between("C7", "T1") == 107
    assert o.disc_between("T12", "L1") == 119
    assert o.disc_between("T12", "T13") == 119
    assert o.disc_between("T13", "L1") == 128
    assert o.disc_between("L5", "S1") == 124
    assert o.disc_between("L5", "L6") == 124
    assert o.disc_between("L6", "S1") == 125
    with pytest.raises(KeyError):
        o.disc_between("L3", "L5")


def test_generic_and_neural_structures():
    assert o.by_name("vertebral body").id == o.GENERIC_VERTEBRAL_BODY == 50
    assert o.by_name("disc").id == o.GENERIC_DISC == 100
    assert o.by_name("spinal cord").id == 60
    assert o.by_name("spinal canal").id == 61
    assert "not assigned" in o.by_id(50).name and "not assigned" in o.by_id(100).name


def test_every_disc_between_adjacent_levels_exists():
    seq = o.vertebra_order()
    names = [o.by_id(v).level for v in seq]
    for upper in names:
        if upper in ("C1", "S1", "Co"):
            continue
        assert o.by_id(o.vertebra_id(upper) + 100).kind == "disc"


def test_all_ids_fit_uint8_and_names_unique():
    ids = [s.id for s in o.STRUCTURES]
    assert max(ids) < 256 and len(set(ids)) == len(ids)
    names = [s.name for s in o.STRUCTURES]
    assert len(set(names)) == len(names)


def test_name_lookup_is_forgiving():
    for n in ("L5/S1", "l5-s1", "L5 - S1", "L5S1", "L5_S1"):
        assert o.by_name(n).id == 124
    assert o.by_name("vertebrae_L3").id == 22
    with pytest.raises(KeyError, match="not a napari-spine structure"):
        o.by_name("L7")


def test_display_name_depends_on_transitional_levels():
    assert o.display_name(124, [20, 21, 22, 23, 24, 26]) == "L5/S1"
    assert o.display_name(124, [24, 25, 26]) == "L5/L6"
    assert o.display_name(119, [19, 28]) == "T12/T13"


def _dist(a, b):
    return float(np.linalg.norm(np.asarray(a[:3]) - np.asarray(b[:3])))


def test_neighbouring_levels_have_clearly_different_colours():
    order = o.cranio_caudal_order()
    for a, b in itertools.pairwise(order):
        assert _dist(o.color_of(a), o.color_of(b)) > 0.25, (o.name_of(a), o.name_of(b))
    verts = o.vertebra_order()
    for a, b in itertools.pairwise(verts):
        assert _dist(o.color_of(a), o.color_of(b)) > 0.35, (o.name_of(a), o.name_of(b))
    # a disc against the vertebra two steps away too (they touch across thin discs)
    for i in range(len(order) - 2):
        assert _dist(o.color_of(order[i]), o.color_of(order[i + 2])) > 0.15


def test_every_label_map_loads_and_points_into_the_ontology():
    schemes = available_schemes()
    for name in ("verse", "ctspine1k", "cspineseg", "ssmspine", "spine_msca", "mmcsd",
                 "totalseg_total", "totalseg_vertebrae_body"):
        assert name in schemes
    for name in schemes:
        lm = get_label_map(name)
        for native, canon in lm.to_canonical.items():
            assert canon in o.BY_ID, (name, native, canon)
        for canon in lm.from_canonical:
            assert canon in o.BY_ID, (name, canon)


@pytest.mark.parametrize("name", ["verse", "ctspine1k", "ssmspine", "spine_msca"])
def test_one_to_one_maps_invert_exactly(name):
    lm = get_label_map(name)
    for native, canon in lm.to_canonical.items():
        assert lm.from_canonical[canon] == native


def test_lumbar_2d_scheme_levels():
    lm = get_label_map("ssmspine")
    assert [lm.to_canonical[i] for i in range(1, 12)] == [20, 21, 22, 23, 24, 26, 120, 121, 122, 123, 124]
    assert get_label_map("spine-msca").name == "spine_msca"
    assert get_label_map("tptbox").name == "verse"


def test_array_mapping_both_directions():
    lm = get_label_map("ssmspine")
    native = np.array([[0, 1, 6], [7, 11, 3]], dtype=np.uint8)
    canon = lm.to_canonical_array(native)
    assert canon.dtype == np.uint8
    assert canon.tolist() == [[0, 20, 26], [120, 124, 22]]
    assert np.array_equal(lm.from_canonical_array(canon), native)


def test_many_to_one_scheme_exports_levels_as_classes():
    lm = get_label_map("cspineseg")
    canon = np.array([0, 5, 6, 105, 106, 50, 100], dtype=np.uint8)
    assert lm.from_canonical_array(canon).tolist() == [0, 1, 1, 2, 2, 1, 2]
    assert lm.to_canonical_array(np.array([0, 1, 2], np.uint8)).tolist() == [0, 50, 100]


def test_unknown_native_id_is_an_error_naming_the_source():
    lm = get_label_map("ssmspine")
    with pytest.raises(LabelMapError, match=r"seg\.nii\.gz.*12"):
        lm.to_canonical_array(np.array([0, 1, 12], np.uint8), source="seg.nii.gz")


def test_structure_without_native_id_cannot_be_exported_natively():
    with pytest.raises(LabelMapError, match="L6"):
        get_label_map("ssmspine").from_canonical_array(np.array([0, 25], np.uint8))


def test_totalsegmentator_organs_are_background():
    lm = get_label_map("totalseg_total")
    native = np.array([0, 5, 27, 31, 50, 25, 26, 79, 51], dtype=np.uint8)
    assert lm.to_canonical_array(native).tolist() == [0, 0, 24, 20, 1, 26, 26, 60, 0]


def test_the_canonical_scheme_writes_every_structure_of_the_anatomy_table():
    # the canonical (VerSe) map must follow the table: a new structure is writable at once
    lm = get_label_map("canonical")
    ids = {s.id for s in o.STRUCTURES}
    assert set(lm.to_canonical) == ids == set(lm.from_canonical)
    assert all(lm.to_canonical[i] == i == lm.from_canonical[i] for i in ids)
