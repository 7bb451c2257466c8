"""Windows with nothing in them are left out, and the labels do not change."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

torch = pytest.importorskip("torch")

import napari_spine  # noqa: E402
from helpers import REALDATA, drain  # noqa: E402
from napari_spine.case import SpineCase  # noqa: E402
from napari_spine.inference.sliding import FILL_LOGIT, empty_windows, sliding_window, window_slices  # noqa: E402


def _run(gen):
    """(returned value, yielded events) of a sliding-window generator."""
    events, value = drain(gen)
    return value, events


def _contains(sl, point):
    return all(s.start <= p < s.stop for s, p in zip(sl, point))


def test_a_window_is_empty_exactly_when_no_voxel_of_it_is_above_the_threshold():
    ev = torch.zeros((40, 36, 30))
    ev[30, 5, 21] = 100.0
    wins = window_slices(ev.shape, (16, 16, 16), 0.5)
    got = empty_windows(ev, wins, 50.0)
    assert got == [not _contains(w, (30, 5, 21)) for w in wins]
    # starts 0, 8, 16, 24 / 0, 7, 13, 20 / 0, 7, 14: the voxel lies in 2 x 1 x 2 windows
    assert got.count(False) == 2 * 1 * 2
    assert empty_windows(ev, wins, 100.0) == [True] * len(wins)  # "at or below"


def test_block_means_average_background_noise_away_but_not_a_structure():
    g = torch.Generator().manual_seed(0)
    ev = torch.rand((48, 48, 48), generator=g) * 10  # noise up to 10
    ev[0, 0, 0] = 60.0  # one spike of noise: above the threshold, but alone in its block
    ev[36:40, 36:40, 36:40] = 100.0  # a structure of one block
    wins = window_slices(ev.shape, (16, 16, 16), 0.5)
    got = empty_windows(ev, wins, 20.0, block=4)
    for w, e in zip(wins, got):
        if all(s.start <= 36 and s.stop >= 40 for s in w):
            assert not e, w  # the whole structure inside: computed
        elif not any(_contains(w, (a, b, c)) for a in (36, 39) for b in (36, 39) for c in (36, 39)):
            assert e, w  # nothing of it: skipped, the spike included
    assert empty_windows(ev, wins, 20.0, block=1)[0] is False  # voxel by voxel, the spike counts


def test_skipping_changes_no_covered_voxel_and_fills_the_rest_with_background():
    g = torch.Generator().manual_seed(1)
    img = torch.zeros((1, 70, 40, 40))
    img[0, 50:66, 10:30, 5:35] = torch.rand((16, 20, 30), generator=g) + 1
    net = lambda b: torch.cat([1 - b, 2 * b - 1], 1)  # noqa: E731 - voxel-wise, like any local model
    full, ev_full = _run(sliding_window(img, net, (16, 16, 16)))
    stats = {}
    part, events = _run(sliding_window(img, net, (16, 16, 16), evidence=img[0], skip_below=0.0, stats=stats))
    wins = window_slices(img.shape[1:], (16, 16, 16), 0.5)
    run = [w for w in wins if (img[(0, *w)] > 0).any()]
    assert stats == {"windows": len(wins), "run": len(run), "skipped": len(wins) - len(run)}
    assert stats["skipped"] > len(wins) // 2
    assert events[-1] == (len(wins), len(wins)) and events[0] == (stats["skipped"], len(wins))
    covered = torch.zeros(img.shape[1:], dtype=torch.bool)
    for w in run:
        covered[w] = True
    torch.testing.assert_close(part[:, covered], full[:, covered], rtol=1e-6, atol=1e-6)
    assert (part[0][~covered] == FILL_LOGIT).all() and (part[1][~covered] == 0).all()
    assert (full.argmax(0)[~covered] == 0).all()  # where nothing was, the full run says background too


def test_every_window_empty_needs_the_channel_count():
    img = torch.zeros((1, 20, 20, 20))
    with pytest.raises(ValueError, match="out_channels"):
        _run(sliding_window(img, lambda b: b, (16, 16, 16), evidence=img[0], skip_below=0.5))
    out, events = _run(sliding_window(img, lambda b: b, (16, 16, 16), evidence=img[0], skip_below=0.5,
                                      out_channels=3))
    assert out.shape == (3, 20, 20, 20) and (out[0] == FILL_LOGIT).all() and (out[1:] == 0).all()
    assert events == [(8, 8)]


def _with_air(case: SpineCase, margin: int, seed: int) -> SpineCase:
    """The phantom with ``margin`` voxels of empty space added on its right (display axis 0):
    air with scanner noise in CT, Rician-like noise in MR."""
    rng = np.random.default_rng(seed)
    shape = (margin, *case.shape[1:])
    if case.modality == "CT":
        air = np.clip(-1000 + rng.normal(0, 20, shape), -1024, None).astype(case.image.dtype)
    else:
        air = np.hypot(rng.normal(0, 3, shape), rng.normal(0, 3, shape)).astype(case.image.dtype)
    image = np.concatenate([air, case.image], 0)
    labels = np.concatenate([np.zeros(shape, case.labels.dtype), case.labels], 0)
    aff = case.affine.copy()
    aff[:3, 3] -= aff[:3, 0] * margin
    return SpineCase.from_arrays(image, aff, labels, modality=case.modality, case_id=case.case_id)


@pytest.mark.parametrize("modality", ["CT", "MR-T2"])
def test_bundled_model_labels_of_the_body_are_those_of_the_full_run(modality):
    margin = 100
    case = _with_air(napari_spine.make_phantom((40, 120, 60), (2.0, 2.0, 2.0), levels=("L1", "L5"),
                                               modality=modality, seed=7), margin, seed=8)
    model = napari_spine.load_model("default")
    skip = napari_spine.predict(case, model, "cpu")
    full = napari_spine.predict(case, model, "cpu", skip_empty=False)
    # on the model's grid (the case's: 2 mm) windows start at 0, 25, 51, 76 along axis 0
    # (and once along 1 and 2, the patch padded): the first two start in air and stay in it
    assert skip.windows["windows"] == full.windows["windows"] == 4 * 3 * 1
    assert skip.windows["skipped"] == 2 * 3 and full.windows["skipped"] == 0
    # labels are identical wherever there is anything: in tissue and two voxels around it
    # (in CT above -500 HU; in MR above the background threshold)
    level = -500 if modality == "CT" else 0.05 * np.percentile(case.image, 99.5)
    tissue = ndimage.binary_dilation(case.image > level, iterations=2)
    assert tissue[margin:].mean() > 0.5 and not tissue[:margin - 10].any()
    assert np.array_equal(skip.labels[tissue], full.labels[tissue])
    assert (skip.labels[margin:] > 0).sum() > 0.3 * (case.labels > 0).sum()  # it did find the spine
    # voxels that only the skipped windows cover (model rows 0..50, the case's 2 mm grid) are
    # background; elsewhere in the air both runs have the model's own false positives
    assert not skip.labels[:51].any() and full.labels[:51].any()


def test_real_crops_give_the_labels_of_the_full_run():
    """No window of a real crop is empty, and the rule changes nothing."""
    if not REALDATA.is_dir():
        pytest.skip("../shared/realdata is not here")
    model = napari_spine.load_model("default")
    for path in ("totalseg_small/example_ct_sm.nii.gz", "tptbox_ct/sub-ct_label-22_ct.nii.gz",
                 "tptbox_mri/sub-mri_label-6_T2w.nii.gz", "sct_cervical/t2_t2.nii.gz"):
        case = napari_spine.load_case(REALDATA / path)
        skip = napari_spine.predict(case, model, "cpu")
        full = napari_spine.predict(case, model, "cpu", skip_empty=False)
        assert np.array_equal(skip.labels, full.labels), path
        # every crop has tissue in each window (128 mm wide on the model's grid): none is left out
        assert skip.windows["skipped"] == 0 and skip.windows["run"] == full.windows["run"], path


def test_a_structure_in_the_last_block_of_a_window_keeps_it():
    ev = torch.zeros((16, 16, 16))
    ev[12:16, 12:16, 12:16] = 100.0  # the last whole block of the only window
    assert empty_windows(ev, [(slice(0, 16),) * 3], 50.0, block=4) == [False]
    assert empty_windows(ev, [(slice(0, 16),) * 3], 100.0, block=4) == [True]


def _rule(modality, image):
    from napari_spine.inference.predict import _skip_rule

    case = SpineCase.from_arrays(image, np.eye(4), modality=modality)
    return _skip_rule(case, napari_spine.load_model("default").card, case.image)


@pytest.mark.parametrize(("hu", "empty"), [(-1000, True), (-700, True), (-500, True), (-450, False),
                                           (-100, False), (400, False)])
def test_ct_windows_are_empty_at_or_below_minus_500_hu(hu, empty):
    image = np.full((20, 20, 20), hu, np.int16)
    image[0, 0, 0] = -1024
    threshold, block = _rule("CT", image)
    got = empty_windows(torch.from_numpy(image).float(), [(slice(0, 20),) * 3], threshold, block)
    assert got == [empty]


def test_mr_windows_are_empty_below_five_percent_of_the_bright_end_in_block_means():
    rng = np.random.default_rng(3)
    image = np.zeros((40, 40, 40), np.uint16)
    image[20:] = 1000  # tissue: the 99.5th percentile is 1000
    noise = np.hypot(rng.normal(0, 12, (20, 40, 40)), rng.normal(0, 12, (20, 40, 40)))  # mean ~15
    image[:20] = noise.astype(np.uint16)
    image[5, 5, 5] = 300  # a spike far above 5 %
    threshold, block = _rule("MR-T2", image)
    assert threshold == pytest.approx(50.0) and block == 4
    ev = torch.from_numpy(image.astype(np.float32))
    air, dim = (slice(0, 20), slice(0, 20), slice(0, 20)), (slice(20, 40), slice(0, 20), slice(0, 20))
    assert empty_windows(ev, [air, dim], threshold, block) == [True, False]
    ev[20:] = 60.0  # dim tissue at 6 % of the bright end still counts
    assert empty_windows(ev, [dim], threshold, block) == [False]
    assert _rule("unknown", image) is None
