"""The datasets' own metric definitions at their edges: one-class label sets, empty and
one-voxel slices, the default axis and classes, labels outside the table, more than six
discs. References are computed here from datasets.md, slice by slice or label by label."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_spine.qa import (
    cspineseg_disc_level_dice,
    cspineseg_slice_dice,
    ctspine1k_case_dice,
    ctspine1k_dataset_dice,
    lumbar2d_metrics,
    roc_auc,
)


def _quiet(fn, *args, **kw):
    """Call ``fn`` with numpy warnings as errors: a definition never divides 0 by 0."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kw)


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 0], []])
def test_roc_auc_of_a_one_class_set_is_nan_without_a_warning(labels):
    assert np.isnan(_quiet(roc_auc, labels, [0.2, 0.4, 0.9][: len(labels)]))


def _slice_dice_reference(ref, cand, label, axis):
    per = []
    for k in range(ref.shape[axis]):
        r, c = np.take(ref, k, axis) == label, np.take(cand, k, axis) == label
        s = int(r.sum() + c.sum())
        per.append(2 * (r & c).sum() / s if s else 1.0)
    return float(np.mean(per))


def test_slice_dice_counts_empty_slices_as_one_and_single_voxels_as_misses():
    ref = np.zeros((5, 6, 7), np.uint8)
    cand = np.zeros_like(ref)
    ref[0, 2, 3] = 2  # slice 0: one voxel in the reference only -> 0
    ref[1, 1:4, 1:4] = 2  # slice 1: overlap
    cand[1, 2:4, 1:4] = 2
    cand[3, 5, 6] = 2  # slice 3: one voxel in the candidate only -> 0; slices 2 and 4 empty -> 1
    got = _quiet(cspineseg_slice_dice, ref, cand, 2)  # the default axis: display axis 0
    assert got == pytest.approx(_slice_dice_reference(ref, cand, 2, 0), abs=1e-12)
    assert got == pytest.approx((0 + 2 * 6 / 15 + 1 + 0 + 1) / 5, abs=1e-12)
    assert got != pytest.approx(_slice_dice_reference(ref, cand, 2, 1))
    for axis in (1, 2):
        assert cspineseg_slice_dice(ref, cand, 2, axis=axis) == pytest.approx(
            _slice_dice_reference(ref, cand, 2, axis), abs=1e-12)


def _discs(n, n_slices=5):
    """``n`` discs (label 2) on every sagittal slice, spaced along file axis 1."""
    m = np.zeros((20, 12 * n + 4, n_slices), np.uint8)
    for k in range(n):
        m[5:15, 4 + 12 * k:8 + 12 * k, :] = 2
    return m


def test_disc_dice_with_more_than_six_discs_names_the_top_six_without_warnings():
    ref = _discs(8)
    cand = ref.copy()
    cand[5:10, 4 + 12 * 7:8 + 12 * 7, 2] = 0  # the most superior (highest axis 1) disc, halved
    per = _quiet(cspineseg_disc_level_dice, ref, cand)
    assert list(per) == ["C2/C3", "C3/C4", "C4/C5", "C5/C6", "C6/C7", "C7/T1"]
    assert per["C2/C3"] == pytest.approx(2 * 20 / (40 + 20)) and per["C3/C4"] == 1.0
    assert cspineseg_disc_level_dice(_discs(5), _discs(5)) is None  # fewer than six: skipped


def test_ctspine1k_dice_covers_labels_1_to_25_only():
    ref = np.zeros((3, 4, 30), np.uint8)
    ref[0, 0, :] = np.arange(30)  # ids 0-29: 26 and above are not CTSpine1K labels
    cand = ref.copy()
    cand[0, 0, 1] = 0  # label 1 missed
    cand[0, 0, 25] = 0  # and label 25
    got = _quiet(ctspine1k_case_dice, ref, cand)
    assert got.shape == (25,)
    assert got[0] == 0.0 and got[24] == 0.0 and np.all(got[1:24] == 1.0)
    per_label, overall = ctspine1k_dataset_dice([got, np.full(25, np.nan)])
    assert np.array_equal(per_label, got, equal_nan=True) and overall == pytest.approx(23 / 25)
    flat, overall_flat = ctspine1k_dataset_dice(np.concatenate([got, got]))  # one flat list of two cases
    assert np.array_equal(flat, got) and overall_flat == overall


def test_lumbar2d_default_classes_are_the_eleven_structures():
    ref = np.zeros((1, 20, 20), np.uint8)
    ref[0, :11, 0] = np.arange(1, 12)
    ref[0, 15, 15] = 12  # not a SSMSpine / Spine-MSCA class
    got = lumbar2d_metrics(ref, ref)
    assert sorted(got) == list(range(1, 12))
    assert all(d == pytest.approx(1.0) and h == 0.0 for d, h in got.values())
