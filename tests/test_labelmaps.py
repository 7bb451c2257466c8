"""Label schemes and the voxel counters behind them, against plain numpy on arrays that
reach every path: tails that are not whole words or blocks, several chunks and slabs,
views in another memory order, other dtypes, empty and all-background arrays."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from napari_spine.anatomy import labelmaps as lm
from napari_spine.anatomy.labelmaps import (
    flat_foreground,
    get_label_map,
    in_memory_order,
    label_counts,
    label_map_from_names,
    present_ids,
    smallest_uint,
)
from napari_spine.anatomy.labelnames import LabelNames
from napari_spine.errors import LabelMapError


def _counts(a):
    ids, n = np.unique(a, return_counts=True)
    return {int(i): int(c) for i, c in zip(ids, n) if i}


@pytest.mark.parametrize("size", [0, 7, 8, 4095, 4096, 4097, 3 * 4096 + 13, 5 * 4096 * 8 + 3])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_foreground_and_counts_equal_numpy_whatever_the_length(size, dtype):
    rng = np.random.default_rng(size)
    a = np.zeros(size, dtype)
    if size:
        hot = rng.choice(size, size=max(1, size // 50), replace=False)
        a[hot] = rng.integers(1, 300 if dtype == np.uint16 else 256, size=hot.size)
        a[-1] = 7  # the very last voxel, in the tail
        a[0] = 3  # and the first
    assert np.array_equal(flat_foreground(a), np.flatnonzero(a))
    assert label_counts(a) == _counts(a)
    assert present_ids(a).tolist() == sorted(set(np.unique(a).tolist()))


def test_foreground_in_the_tail_only():
    a = np.zeros(4096 * 2 + 5, np.uint8)  # two whole blocks of words and a few voxels more
    a[-3] = 9
    b = np.zeros(8 * 512 * 8 + 16, np.uint8)  # whole words after the whole blocks
    b[-12] = 4
    for arr in (a, b):
        assert np.array_equal(flat_foreground(arr), np.flatnonzero(arr))
        assert label_counts(arr) == _counts(arr)


def test_uint16_foreground_is_found_voxel_by_voxel():
    a = np.zeros(4096 * 3 + 3, np.uint16)
    a[[1, 4097, 8000, 12290]] = [1, 256, 2, 65535]
    assert flat_foreground(a).tolist() == [1, 4097, 8000, 12290]


def test_all_background_and_empty():
    for a in (np.zeros(10_000, np.uint8), np.zeros(0, np.uint8), np.zeros(10_001, np.uint16)):
        got = flat_foreground(a)
        assert got.size == 0
        assert label_counts(a) == {}
    assert present_ids(np.zeros(0, np.uint8)).size == 0
    assert present_ids(np.zeros(5, np.uint8)).tolist() == [0]
    assert present_ids(np.array([5], np.uint8)).tolist() == [5]  # one voxel


def test_present_ids_has_zero_only_when_background_is_there():
    full = np.array([[1, 2], [2, 3]], np.uint8)  # no background at all
    assert present_ids(full).tolist() == [1, 2, 3]
    assert present_ids(np.array([0, 2, 2], np.uint16)).tolist() == [0, 2]
    assert present_ids(np.array([5, -1, 0], np.int32)).tolist() == [-1, 0, 5]
    assert present_ids(np.array([2.0, 1.0], np.float32)).tolist() == [1.0, 2.0]


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.int64, np.uint32])
def test_counts_of_other_integer_types(dtype):
    a = np.array([[0, 3, 3], [70000 % 30000, 0, 3]], dtype)
    assert label_counts(a) == _counts(a) and 0 not in label_counts(a)


@pytest.mark.slow
def test_counts_over_several_chunks_and_slabs():
    """Past one chunk of words (32 Mi voxels) and over the slab size (16 Mi voxels per
    core): voxels at the very start, at each chunk and slab edge and at the end count."""
    n = (1 << 25) + (1 << 20) + 11
    a = np.zeros(n, np.uint8)
    edges = [0, 1, (1 << 24) - 1, 1 << 24, (1 << 25) - 1, 1 << 25, (1 << 25) + 8, n - 1]
    a[edges] = np.arange(1, len(edges) + 1)
    assert np.array_equal(flat_foreground(a), np.array(edges))
    assert label_counts(a) == {i + 1: 1 for i in range(len(edges))}
    b = np.zeros(20_000_000, np.uint16)  # between one and two slabs
    b[[0, 5, 19_999_999]] = [9, 300, 9]
    assert label_counts(b) == {9: 2, 300: 1}


def test_in_memory_order_of_a_display_view_is_the_files_memory():
    file = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    display = file.transpose(2, 0, 1)[::-1, :, ::-1]  # permuted and flipped, as a case shows it
    mem = in_memory_order(display)
    assert mem.flags.c_contiguous and np.shares_memory(mem, file)
    assert np.array_equal(mem, file)
    assert label_counts(display) == _counts(file)
    like = in_memory_order(np.zeros((4, 2, 3)), like=display)  # another array seen the same way
    assert like.shape == (2, 3, 4)


def test_label_maps_are_frozen():
    m = get_label_map("ssmspine")
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.name = "other"


def test_to_canonical_maps_and_keeps_identity_arrays_uncopied():
    ssm = get_label_map("ssmspine")
    lab = np.array([[0, 1, 6], [7, 11, 0]], np.uint8)
    assert ssm.to_canonical_array(lab).tolist() == [[0, 20, 26], [120, 124, 0]]
    verse = get_label_map("verse")
    same = np.array([[0, 20, 21]], np.uint8)
    assert verse.to_canonical_array(same) is same  # every id maps to itself: no copy
    wide = same.astype(np.uint16)
    out = verse.to_canonical_array(wide)
    assert out.dtype == np.uint8 and out.tolist() == same.tolist()


def test_to_canonical_of_float_labels():
    ssm = get_label_map("ssmspine")
    got = ssm.to_canonical_array(np.array([[0.0, 1.0], [7.0, 6.0]], np.float32))
    assert got.dtype == np.uint8 and got.tolist() == [[0, 20], [120, 26]]


def test_unknown_ids_are_named_with_at_most_twelve_listed():
    ssm = get_label_map("ssmspine")
    twelve = np.arange(12, 24, dtype=np.uint8)
    with pytest.raises(LabelMapError, match=r"label id\(s\) 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, "
                                            r"22, 23 have no entry in the 'ssmspine'"):
        ssm.to_canonical_array(twelve, source="x.nii.gz")
    thirteen = np.arange(12, 25, dtype=np.uint8)
    with pytest.raises(LabelMapError, match=r"x\.nii\.gz: label id\(s\) 12, .*, 23, \.\.\. \(13 in all\)"):
        ssm.to_canonical_array(thirteen, source="x.nii.gz")


def test_a_huge_id_in_a_background_scheme_maps_to_zero():
    names = LabelNames({1: "vertebrae_L1", 70000: "liver"}, "sidecar", "x.json")
    scheme = label_map_from_names(names, present=[0, 1, 70000])
    lab = np.array([[0, 1, 70000, 1]], np.uint32)
    assert scheme.to_canonical_array(lab).tolist() == [[0, 20, 0, 20]]
    big = np.array([[0, 1, 5]], np.uint32)  # 5: unnamed, but the scheme's unknown ids are background
    assert scheme.to_canonical_array(big).tolist() == [[0, 20, 0]]


def test_from_canonical_with_background_and_the_smallest_type():
    ssm = get_label_map("ssmspine")
    canon = np.array([[0, 20, 26], [120, 124, 0]], np.uint8)
    back = ssm.from_canonical_array(canon)
    assert back.dtype == np.uint8 and back.tolist() == [[0, 1, 6], [7, 11, 0]]
    assert ssm.from_canonical_array(canon, dtype=np.int16).dtype == np.int16
    with pytest.raises(LabelMapError, match=r"out\.nii\.gz: structure\(s\) 25 \(L6\) cannot be written"):
        ssm.from_canonical_array(np.array([0, 25], np.uint8), target="out.nii.gz")
    verse = get_label_map("verse")
    same = np.array([0, 20, 120], np.uint8)
    assert verse.from_canonical_array(same) is same
    with pytest.raises(LabelMapError, match=r"structure\(s\) 1 \(C1\) cannot be written in the 'ssmspine'"):
        ssm.from_canonical_array(np.array([0, 1, 20], np.uint8))


def test_from_canonical_into_native_ids_past_255():
    names = LabelNames({300: "vertebrae_L1", 2: "vertebrae_L2"}, "sidecar", "x.json")
    scheme = label_map_from_names(names, present=[300, 2])
    canon = np.array([0, 20, 21, 20], np.uint8)
    back = scheme.from_canonical_array(canon)
    assert back.dtype == np.uint16 and back.tolist() == [0, 300, 2, 300]


def test_several_native_ids_of_one_structure_write_back_as_the_one_in_the_file():
    names = LabelNames({25: "sacrum", 92: "vertebrae_S1", 27: "vertebrae_L5"}, "file header", "ts.nii.gz")
    only_s1 = label_map_from_names(names, present=[0, 92, 27])
    assert only_s1.from_canonical[26] == 92
    only_sacrum = label_map_from_names(names, present=[0, 25])
    assert only_sacrum.from_canonical[26] == 25
    neither = label_map_from_names(names, present=[0, 27])
    assert neither.from_canonical[26] == 25  # none in the file: the smaller id
    listed_late = LabelNames({92: "vertebrae_S1", 27: "vertebrae_L5", 25: "sacrum"}, "file header", "ts.nii.gz")
    assert label_map_from_names(listed_late, present=[0, 27]).from_canonical[26] == 25  # whatever the order
    assert only_s1.to_canonical == {25: 26, 92: 26, 27: 24}


def test_unnamed_ids_in_the_file_are_refused_by_name():
    names = LabelNames({1: "vertebrae_L1"}, "sidecar", "x.json")
    with pytest.raises(LabelMapError, match=r"t\.nii\.gz: label id\(s\) 4, 9 are not named by x\.json \(sidecar\)"):
        label_map_from_names(names, present=[0, 1, 4, 9], source="t.nii.gz")


@pytest.mark.parametrize("value,dtype", [(0, np.uint8), (255, np.uint8), (256, np.uint16), (65535, np.uint16),
                                         (65536, np.uint32), (2**32 - 1, np.uint32), (2**32, np.uint64)])
def test_smallest_uint_at_each_boundary(value, dtype):
    assert smallest_uint(value) == np.dtype(dtype)


def test_schemes_by_name_alias_and_spelling():
    assert get_label_map("TotalSegmentator").name == "totalseg_total"
    assert get_label_map("totalseg-total").name == "totalseg_total"
    assert get_label_map("tptbox").name == "verse"
    with pytest.raises(LabelMapError, match=r"unknown label scheme 'nope'; known: .*ssmspine"):
        get_label_map("nope")
    custom = dataclasses.replace(get_label_map("ssmspine"), name="My-Scheme", aliases=())
    assert lm.register_label_map(custom) == "My-Scheme"
    assert get_label_map("My-Scheme") is custom
