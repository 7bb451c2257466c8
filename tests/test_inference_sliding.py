"""Sliding-window stitching and resampling: networks whose right answer is known."""

import numpy as np
import pytest

from helpers import drain

torch = pytest.importorskip("torch")

from napari_spine.inference.resample import grid_shape, logits_to_labels, resize  # noqa: E402
from napari_spine.inference.sliding import (  # noqa: E402
    InferenceCancelled,
    gaussian_weight,
    sliding_window,
    window_slices,
    window_starts,
)


def run(gen):
    out, events = drain(gen)[::-1]
    return out, events


def coords(shape):
    """(nd, *shape) float tensor whose channels are the voxel coordinates."""
    return torch.stack(torch.meshgrid(*[torch.arange(s, dtype=torch.float32) for s in shape],
                                      indexing="ij"))


CASES = [
    ((37, 50, 41), (16, 16, 16), 0.5),
    ((20, 9, 33), (8, 12, 8), 0.25),   # one axis smaller than the patch
    ((5, 6, 7), (8, 8, 8), 0.5),       # whole volume smaller than the patch
    ((70, 45), (32, 32), 0.5),         # 2-D
    ((12, 100), (16, 24), 1.0),        # 2-D, no overlap, padded axis
]


@pytest.mark.parametrize(("shape", "patch", "step"), CASES)
def test_identity_network_returns_its_input(shape, patch, step):
    x = coords(shape) * 3.5 - 7.0
    out, events = run(sliding_window(x, lambda b: b.clone(), patch, step=step))
    assert out.shape == x.shape
    torch.testing.assert_close(out, x, rtol=1e-5, atol=1e-4)
    assert events[-1][0] == events[-1][1] == len(events)


@pytest.mark.parametrize(("shape", "patch", "step"), CASES)
def test_every_voxel_covered_and_weights_sum_to_one(shape, patch, step):
    # a network that outputs a constant 1 for every class: the blend is 1 everywhere
    # exactly when every voxel is covered and the blending weights sum to one
    x = torch.zeros((1, *shape))
    out, _ = run(sliding_window(x, lambda b: torch.ones((b.shape[0], 3, *b.shape[2:])), patch,
                                step=step))
    torch.testing.assert_close(out, torch.ones((3, *shape)), rtol=1e-6, atol=1e-6)
    # and coverage directly, from the window list of the padded grid
    padded = [max(s, p) for s, p in zip(shape, patch, strict=True)]
    hit = np.zeros(padded, bool)
    for sl in window_slices(padded, patch, step):
        hit[sl] = True
    assert hit.all()


def test_patch_position_network_blends_neighbouring_windows():
    # each window outputs its own origin: every voxel's result is a convex blend of the
    # origins of the windows that cover it, so it lies between their min and max
    shape, patch = (40, 33, 29), (16, 16, 16)
    x = coords(shape)
    out, _ = run(sliding_window(
        x, lambda b: b[:, :, :1, :1, :1].expand_as(b).clone(), patch, step=0.5, mode="constant"))
    for ax in range(3):
        starts = np.array(window_starts(shape[ax], patch[ax], 0.5))
        idx = np.arange(shape[ax])
        lo = np.array([starts[(starts <= i) & (i < starts + patch[ax])].min() for i in idx])
        hi = np.array([starts[(starts <= i) & (i < starts + patch[ax])].max() for i in idx])
        o = out[ax].numpy().transpose(np.roll(range(3), -ax))  # axis ax first
        assert (o >= lo[:, None, None] - 1e-4).all() and (o <= hi[:, None, None] + 1e-4).all()
        # constant weights: the mean of the covering origins, exactly
        np.testing.assert_allclose(o[:, 0, 0], [
            starts[(starts <= i) & (i < starts + patch[ax])].mean() for i in idx], atol=1e-4)


def test_window_starts_match_nnunet_rule():
    assert window_starts(100, 32, 0.5) == [0, 14, 27, 41, 54, 68]  # ceil(68 / 16) + 1 = 6
    assert window_starts(32, 32, 0.5) == [0]
    assert window_starts(10, 32, 0.5) == [0]
    s = window_starts(512, 128, 0.5)
    assert s[0] == 0 and s[-1] == 512 - 128 and len(s) == 7
    with pytest.raises(ValueError):
        window_starts(10, 4, 0.0)


def test_gaussian_weight_is_positive_peaked_and_symmetric():
    w = gaussian_weight((9, 16, 5))
    assert float(w.min()) > 0 and float(w.max()) == pytest.approx(1.0)
    torch.testing.assert_close(w, w.flip(0).flip(1).flip(2))


def test_cancel_between_windows():
    calls = []

    def net(b):
        calls.append(1)
        return b

    gen = sliding_window(torch.zeros((1, 64, 64, 64)), net, (16, 16, 16),
                         cancel=lambda: len(calls) >= 3)
    with pytest.raises(InferenceCancelled, match="after 3 of"):
        run(gen)
    assert len(calls) == 3


def test_batching_gives_the_same_result():
    x = torch.randn((2, 30, 41, 25), generator=torch.Generator().manual_seed(0))
    conv = torch.nn.Conv3d(2, 4, 3, padding=1)
    with torch.no_grad():
        a, ev1 = run(sliding_window(x, conv, (16, 16, 16), batch_size=1))
        b, ev4 = run(sliding_window(x, conv, (16, 16, 16), batch_size=4))
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert len(ev4) < len(ev1)


def test_half_precision_accumulator_stays_close():
    x = coords((33, 20, 17)) * 0.6 - 10  # logit-like magnitudes
    a, _ = run(sliding_window(x, lambda b: b, (16, 16, 16)))
    h, _ = run(sliding_window(x, lambda b: b, (16, 16, 16), out_dtype=torch.float16))
    assert h.dtype == torch.float16
    torch.testing.assert_close(h.float(), a, rtol=2e-3, atol=0.05)


def test_wrong_output_shape_is_reported():
    with pytest.raises(ValueError, match="network output has shape"):
        run(sliding_window(torch.zeros((1, 20, 20, 20)), lambda b: b[:, :, :8], (16, 16, 16)))


# -- resampling ------------------------------------------------------------------------------
def test_grid_shape_keeps_the_field_of_view():
    assert grid_shape((100, 50, 7), (0.5, 1.0, 4.0), (1.0, 1.0, 1.0)) == (50, 50, 28)
    # a thin axis never vanishes: one sample at least, and no more than that
    assert grid_shape((1, 10, 3), (1.0, 1.0, 1.0), (4.0, 1.0, 1.0)) == (1, 10, 3)
    assert grid_shape((1, 10, 3), (1.0, 1.0, 1.0), (1.2, 1.0, 1.0)) == (1, 10, 3)
    with pytest.raises(ValueError):
        grid_shape((10, 10, 10), (1.0, 1.0), (1.0, 1.0, 1.0))  # a spacing missing


# (12, 20, 15) -> (20, 9, 5) and (7, 12, 9): one source axis matches another target axis,
# so an axis mixed up in the "first axis unchanged" shortcut shows
@pytest.mark.parametrize("out", [(23, 40, 31), (12, 20, 15), (12, 40, 15), (6, 9, 5), (20, 9, 5),
                                 (7, 12, 9)])
def test_slab_argmax_equals_full_resize_argmax(out):
    g = torch.Generator().manual_seed(1)
    logits = torch.randn((5, 12, 20, 15), generator=g)
    full = resize(logits, out).argmax(0)
    probs = torch.empty((5, *out))
    got = logits_to_labels(logits, out, slab=4, probabilities=probs)
    agree = (got == full).float().mean().item()
    assert agree > 0.999
    torch.testing.assert_close(probs, torch.softmax(resize(logits, out), 0), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("k", [1, 2, 5, 26, 256, 257])
def test_class_argmax_is_torch_argmax_ties_included(k):
    from napari_spine.inference.resample import class_argmax

    g = torch.Generator().manual_seed(k)
    logits = torch.randint(-2, 3, (k, 7, 9, 11), generator=g).float()  # many exact ties
    logits[:, 0, 0, 0] = 1.0  # every class equal: the first wins
    logits[-1, 1, 1, 1] = 5.0  # the last class, whose index needs every bit of the dtype
    want = torch.argmax(logits, 0)
    got = class_argmax(logits)
    assert got.dtype == (torch.uint8 if k <= 256 else torch.int64)
    assert torch.equal(got.long(), want) and int(got[0, 0, 0]) == 0
    into = torch.full((7, 9, 11), 99, dtype=got.dtype)
    assert class_argmax(logits, out=into) is into and torch.equal(into, got)
    view = torch.full((3, 7, 9, 11), 77, dtype=got.dtype)  # a slab of a larger output
    class_argmax(logits, out=view[1])
    assert torch.equal(view[1], got) and (view[0] == 77).all() and (view[2] == 77).all()


@pytest.mark.parametrize("k", [256, 257])
def test_resized_labels_hold_every_class_index(k):
    """256 classes fit uint8; the 257th (index 256) needs a wider type on the resized path."""
    logits = torch.zeros((k, 4, 6, 6))
    logits[-1, :2] = 10.0  # the last class wins the first half along axis 0
    logits[1, 2:] = 10.0
    got = logits_to_labels(logits, (8, 6, 6), slab=3)
    assert got.dtype == (torch.uint8 if k <= 256 else torch.int64)
    assert int(got[0, 0, 0]) == k - 1 and int(got[-1, 0, 0]) == 1


def test_slab_argmax_2d():
    logits = torch.randn((3, 10, 14), generator=torch.Generator().manual_seed(2))
    got = logits_to_labels(logits, (25, 9), slab=3)
    assert (got == resize(logits, (25, 9)).argmax(0)).float().mean() > 0.999


def test_down_and_up_resampling_does_not_shift():
    # voxel centres: coarse voxel i of a 3x downsampling sits at fine coordinate 3i + 1, and
    # linear interpolation reproduces a ramp exactly, so any shift would show
    ramp = torch.arange(60, dtype=torch.float32).view(1, 60, 1, 1).expand(1, 60, 4, 4)
    coarse = resize(ramp, (20, 4, 4))
    np.testing.assert_allclose(coarse[0, :, 0, 0].numpy(), 3 * np.arange(20) + 1, atol=1e-5)
    back = resize(coarse, (60, 4, 4))
    np.testing.assert_allclose(back[0, 3:-3, 0, 0].numpy(), np.arange(3, 57), atol=1e-4)
    # and the labels path: a two-class ramp boundary comes back where it was
    logits = torch.cat([coarse - 29.5, 29.5 - coarse])  # class 0 where x > 29.5
    lab = logits_to_labels(logits, (60, 4, 4))
    assert (lab[:30, 0, 0] == 1).all() and (lab[30:, 0, 0] == 0).all()


def test_out_of_memory_halves_the_batch_then_gives_up_at_one(monkeypatch):
    calls, emptied = [], []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))

    def net(b):
        calls.append(b.shape[0])
        if b.shape[0] > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return b

    x = coords((40, 40, 20))
    out, _ = run(sliding_window(x, net, (16, 16, 16), batch_size=4))
    assert calls[:3] == [4, 2, 1] and set(calls[2:]) == {1}
    torch.testing.assert_close(out, x, rtol=1e-5, atol=1e-4)
    assert emptied == []  # on the CPU there is no CUDA cache to release

    def always(b):
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(torch.OutOfMemoryError):
        run(sliding_window(x, always, (16, 16, 16), batch_size=2))


def test_gaussian_weight_is_the_separable_gaussian_of_sigma_patch_over_8():
    import math

    patch = (16, 9, 4)
    w = gaussian_weight(patch, floor=0.0).double().numpy()

    def g(p, i):  # written from the definition: centre (p - 1) / 2, sigma p / 8
        return math.exp(-0.5 * ((i - (p - 1) / 2) / (p / 8)) ** 2)

    peak = g(16, 7) * g(9, 4) * g(4, 1)  # the largest value on the grid (even sizes: two middle voxels)
    for idx in [(0, 0, 0), (7, 4, 1), (15, 8, 3), (3, 2, 0)]:
        want = g(16, idx[0]) * g(9, idx[1]) * g(4, idx[2]) / peak
        assert w[idx] == pytest.approx(want, rel=1e-6)
    floored = gaussian_weight(patch, floor=1e-3).numpy()
    assert floored.min() == pytest.approx(1e-3) and floored.max() == pytest.approx(1.0)


def test_an_image_smaller_than_the_patch_is_padded_centred_and_cropped_back():
    from napari_spine.inference.sliding import _pad_to

    img = torch.arange(1 * 3 * 8 * 5, dtype=torch.float32).reshape(1, 3, 8, 5)
    padded, crop = _pad_to(img, (8, 8, 8))  # axis 0 short by 5, axis 2 by 3, axis 1 not
    assert tuple(padded.shape) == (1, 8, 8, 8)
    assert crop == (slice(2, 5), slice(0, 8), slice(1, 6))  # 5 // 2 = 2 before, 3 // 2 = 1 before
    assert torch.equal(padded[(slice(None), *crop)], img)
    assert padded.sum() == img.sum()  # zeros around
    same, none = _pad_to(img, (3, 8, 5))
    assert same is img and none is None


# -- arguments, helpers and window skipping, against values worked out by hand ----------------
def test_window_arguments_are_checked():
    assert window_starts(5, 1, 1.0) == [0, 1, 2, 3, 4]  # a one-voxel patch is a patch
    assert window_starts(10, 4, 1.0) == [0, 3, 6]  # step 1: no overlap, last window flush
    for patch, step in ((0, 0.5), (4, 0.0), (4, 1.01), (-2, 0.5)):
        with pytest.raises(ValueError, match="patch must be > 0 and step in"):
            window_starts(10, patch, step)
    with pytest.raises(ValueError):
        window_slices((10, 10), (4,))  # a patch of the wrong rank is never silently cut
    with pytest.raises(ValueError, match="does not match 2 spatial axes"):
        run(sliding_window(torch.zeros((1, 8, 8)), lambda b: b, (4, 4, 4)))
    assert gaussian_weight((4, 6)).dtype == torch.float32 and gaussian_weight((4,), dtype=torch.float64).dtype \
        == torch.float64


def test_padding_of_one_voxel_goes_after():
    from napari_spine.inference.sliding import _pad_to

    img = torch.arange(15.0).reshape(1, 3, 5)
    padded, crop = _pad_to(img, (4, 5), value=-1.0)
    assert tuple(padded.shape) == (1, 4, 5) and crop == (slice(0, 3), slice(0, 5))
    assert torch.equal(padded[0, 3], torch.full((5,), -1.0)) and torch.equal(padded[(slice(None), *crop)], img)
    same, none = _pad_to(img, (3, 5))
    assert same is img and none is None


def test_out_of_memory_is_told_apart_from_other_errors():
    from napari_spine.inference.sliding import _is_oom

    assert _is_oom(torch.OutOfMemoryError("x")) and _is_oom(RuntimeError("CUDA Out Of Memory, tried 2 GiB"))
    assert not _is_oom(RuntimeError("shape mismatch")) and not _is_oom(ValueError("memory"))


def test_deep_supervision_uses_the_first_output():
    x = coords((12, 12))
    out, _ = run(sliding_window(x, lambda b: (b, b * 0 - 5), (8, 8)))
    torch.testing.assert_close(out, x)


def _brute_empty(evidence: np.ndarray, window, thr: float, block: int) -> bool:
    """datasets-free restatement of the rule: every block of ``block`` voxels per axis that
    lies inside the window (clamped into the image, at least one) has a mean <= thr."""
    b = block if block > 1 and all(n >= block for n in evidence.shape) else 1
    ranges = []
    for sl, n in zip(window, evidence.shape):
        starts = [j for j in range(n - b + 1) if j >= sl.start and j + b <= min(sl.stop, n)]
        ranges.append(starts or [min(sl.start, n - b)])
    import itertools

    means = [evidence[tuple(slice(j, j + b) for j in js)].mean() for js in itertools.product(*ranges)]
    return max(means) <= thr


@pytest.mark.parametrize("block", [1, 2, 3, 4, 9])
@pytest.mark.parametrize("shape", [(10, 13), (7, 9, 8), (3, 11)])
def test_empty_windows_follow_the_block_rule(block, shape):
    from napari_spine.inference.sliding import empty_windows

    rng = np.random.default_rng(block + len(shape))
    ev = (rng.random(shape) < 0.08).astype(np.float32) * 4  # sparse bright voxels of 4
    patch = (4,) * len(shape)
    windows = window_slices(shape, patch, 0.5) + [tuple(slice(n - 2, n + 2) for n in shape)]  # one past the edge
    exact = [4 / block ** len(shape)] if block in (1, 2) else []  # a tie, where the mean is exact in binary
    for thr in (0.0, *exact, 0.1, 1.0):  # 0: all-zero blocks tie with it and count as empty
        got = empty_windows(torch.from_numpy(ev), windows, thr, block)
        assert got == [_brute_empty(ev, w, thr, block) for w in windows], (thr, block)
    if block == 1:  # the default block is one voxel
        assert empty_windows(torch.from_numpy(ev), windows, 1.0) == [_brute_empty(ev, w, 1.0, 1) for w in windows]


def test_skipped_windows_are_counted_filled_and_reported():
    """A 12 x 12 image in 9 non-overlapping windows; evidence only in the centre one."""
    ev = torch.zeros((12, 12))
    ev[5, 6] = 4.0  # one bright voxel: a 2-voxel block mean is 1
    calls = []

    def net(b):
        calls.append(b.shape[0])
        return torch.stack([torch.full(b.shape[2:], 1.0), torch.full(b.shape[2:], 2.0)])[None].repeat(
            b.shape[0], 1, 1, 1)

    stats = {}
    out, events = run(sliding_window(torch.zeros((1, 12, 12)), net, (4, 4), step=1.0, evidence=ev,
                                     skip_below=2.0, stats=stats))
    assert stats == {"windows": 9, "run": 1, "skipped": 8} and calls == [1]
    assert events == [(8, 9), (9, 9)]
    centre = (slice(None), slice(4, 8), slice(4, 8))
    assert torch.equal(out[centre][0], torch.full((4, 4), 1.0)) and torch.equal(out[centre][1], torch.full((4, 4), 2.0))
    outside = out.clone()
    outside[centre] = float("nan")
    from napari_spine.inference.sliding import FILL_LOGIT

    assert torch.equal(outside[0][~outside[0].isnan()], torch.full((128,), FILL_LOGIT))
    assert torch.equal(outside[1][~outside[1].isnan()], torch.zeros(128))
    stats = {}
    out, events = run(sliding_window(torch.zeros((1, 12, 12)), net, (4, 4), step=1.0, evidence=ev, skip_below=2.0,
                                     block=2, stats=stats, out_channels=2))
    assert stats == {"windows": 9, "run": 0, "skipped": 9} and events == [(9, 9)]  # the 2x2 mean (1) is below 2
    assert torch.equal(out[0], torch.full((12, 12), FILL_LOGIT)) and torch.equal(out[1], torch.zeros((12, 12)))
    with pytest.raises(ValueError, match="out_channels"):
        run(sliding_window(torch.zeros((1, 12, 12)), net, (4, 4), step=1.0, evidence=ev, skip_below=2.0, block=2))
    stats = {}
    run(sliding_window(torch.zeros((1, 12, 12)), net, (4, 4), step=1.0, skip_below=2.0, stats=stats))
    assert stats == {"windows": 9, "run": 9, "skipped": 0}  # no evidence: nothing is skipped
    with pytest.raises(InferenceCancelled, match="after 8 of 9"):
        run(sliding_window(torch.zeros((1, 12, 12)), net, (4, 4), step=1.0, evidence=ev, skip_below=2.0,
                           cancel=lambda: True))
