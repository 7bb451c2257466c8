"""Sliding-window inference over 2-D or 3-D arrays with Gaussian blending.

The window logic knows nothing about the network: it calls a *predictor* ``f(batch) ->
outputs`` on ``(B, C, *patch)`` tensors and stitches ``(B, K, *patch)`` outputs into a
``(K, *shape)`` average. Windows are placed as nnU-Net places them (``n = ceil((size -
patch) / (patch * step)) + 1`` per axis, evenly spread, first and last flush with the
edges); each output is weighted by a separable Gaussian (sigma = patch / 8) that never
reaches zero, and the sum is divided by the summed weights, so the blending weights of
every voxel add up to one.

Windows with nothing in them can be left out (``evidence``/``skip_below``): a window is
skipped when every block of its evidence map (the raw image, on the same grid) lies at
or below the threshold, e.g. air in CT. A voxel that only skipped windows cover gets the
``fill`` logits (background, confidently); a voxel that any computed window covers is
blended from the computed windows alone.

Stitching runs where the outputs live (``out_device``): on the GPU for speed when the
accumulator fits, on the CPU otherwise; the accumulator dtype is chosen by the caller
(half precision halves the memory of full-volume logits). Written by hand rather than
taken from MONAI because the accumulator device/dtype, progress reporting between
windows and cancellation are what the application needs, and because MONAI is an
optional dependency.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Generator, Sequence

from .types import InferenceCancelled

__all__ = [
    "InferenceCancelled",
    "gaussian_weight",
    "sliding_window",
    "window_slices",
    "window_starts",
]


def window_starts(size: int, patch: int, step: float = 0.5) -> list[int]:
    """Start offsets of windows of ``patch`` voxels over ``size`` voxels.

    ``step`` is the distance between windows as a fraction of the patch (0.5 = 50 %
    overlap). Sizes smaller than the patch give one window at 0 (the caller pads).
    """
    if patch <= 0 or not 0 < step <= 1:
        raise ValueError(f"patch must be > 0 and step in (0, 1], got {patch}, {step}")
    if size <= patch:
        return [0]
    n = math.ceil((size - patch) / (patch * step)) + 1
    stride = (size - patch) / (n - 1)
    return [int(round(stride * i)) for i in range(n)]


def window_slices(shape: Sequence[int], patch: Sequence[int], step: float = 0.5):
    """Every window of the grid as a tuple of slices (row-major order)."""
    starts = [window_starts(s, p, step) for s, p in zip(shape, patch, strict=True)]
    return [
        # mutation-equivalent[True -> False]: an origin has one entry per axis of the patch
        tuple(slice(o, o + p) for o, p in zip(origin, patch, strict=True))
        for origin in itertools.product(*starts)
    ]


def gaussian_weight(
    patch: Sequence[int], sigma_scale: float = 0.125, *, floor: float = 1e-3, device=None, dtype=None
):
    """Separable Gaussian importance map of the patch, maximum 1, at least ``floor``.

    The floor keeps the corners' products with logits in the normal range of float16
    (a 3-D Gaussian of sigma = patch / 8 falls to ~1e-11 at the corners), so edge voxels
    blend without underflow when the accumulator is half precision.
    """
    import torch

    w = None
    for p in patch:
        x = torch.arange(p, dtype=torch.float64) - (p - 1) / 2.0
        sigma = max(p * sigma_scale, 1e-6)
        g = torch.exp(-0.5 * (x / sigma) ** 2)
        w = g if w is None else w[..., None] * g
    w = w / w.max()
    w = torch.clamp(w, min=floor)
    return w.to(device=device, dtype=dtype or torch.float32)


def _pad_to(image, patch, value: float = 0.0):
    """Pad spatial axes that are smaller than the patch, centred, with ``value``."""
    import torch.nn.functional as F

    spatial = image.shape[1:]
    # max(x, 1) // 2 == max(x, 0) // 2 for every integer x, and the image, the patch and the
    # padding all have one entry per axis  # mutation-equivalent[0 -> 1, True -> False]: see above
    before = [max(p - s, 0) // 2 for s, p in zip(spatial, patch, strict=True)]
    # mutation-equivalent[True -> False]: one entry per axis, as above
    after = [max(p - s, 0) - b for s, p, b in zip(spatial, patch, before, strict=True)]
    if not any(before) and not any(after):
        return image, None
    pad = []
    # mutation-equivalent[True -> False]: before and after both have one entry per axis
    for b, a in zip(reversed(before), reversed(after), strict=True):
        pad += [b, a]
    # mutation-equivalent[True -> False]: as above
    crop = tuple(slice(b, b + s) for b, s in zip(before, spatial, strict=True))
    return F.pad(image, pad, value=value), crop


#: logits given to voxels that only skipped windows cover: background, with a softmax of
#: 0.9998 over 5 classes
FILL_LOGIT = 10.0


def empty_windows(evidence, windows, skip_below: float, block: int = 1) -> list[bool]:
    """For each window (tuple of slices), whether every ``block``-wide block mean of
    ``evidence`` (spatial, on the windows' grid) inside it is at or below ``skip_below``.
    ``block=1`` compares every voxel; larger blocks average noise away (MR background)."""
    import torch
    import torch.nn.functional as F

    ev = evidence.float()
    # mutation-equivalent[Gt -> GtE]: a block of 1 is b = 1 either way
    b = block if block > 1 and all(n >= block for n in ev.shape) else 1
    # mutation-equivalent[Gt -> GtE]: pooling over one voxel is the identity
    if b > 1:  # ev[j] becomes the mean of evidence[j:j + b] on every axis
        pool = F.avg_pool3d if ev.ndim == 3 else F.avg_pool2d
        ev = pool(ev[None, None], b, stride=1)[0, 0]
    out = []
    for sl in windows:
        box = []
        # mutation-equivalent[True -> False]: a window has one slice per axis
        for w, n in zip(sl, evidence.shape, strict=True):
            lo = min(w.start, n - b)
            box.append(slice(lo, max(lo + 1, min(w.stop, n) - b + 1)))
        out.append(bool(float(torch.amax(ev[tuple(box)])) <= skip_below))
    return out


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


# long: the hot loop and its out-of-memory fallback share the accumulators and batch
# size; kept in one frame so the buffers are never copied between functions
def sliding_window(
    image,
    predictor: Callable,
    patch_size: Sequence[int],
    *,
    step: float = 0.5,
    mode: str = "gaussian",
    batch_size: int = 1,
    device=None,
    out_device=None,
    out_dtype=None,
    cancel: Callable[[], bool] | None = None,
    evidence=None,
    skip_below: float | None = None,
    block: int = 1,
    out_channels: int | None = None,
    stats: dict | None = None,
) -> Generator[tuple[int, int], None, object]:
    """Run ``predictor`` over windows of ``image`` and blend the outputs.

    Parameters
    ----------
    image : (C, *spatial) tensor
        2 or 3 spatial axes; may live on any device (windows are moved to ``device``).
    predictor : callable
        ``(B, C, *patch) -> (B, K, *patch)`` on ``device``; a tuple/list output (deep
        supervision) uses its first element.
    step : float
        Window stride as a fraction of the patch (0.5 = nnU-Net's default overlap).
    mode : ``"gaussian"`` or ``"constant"``
    out_device, out_dtype
        Where and in which dtype the ``(K, *spatial)`` sum accumulates (defaults: the
        image's device, float32).
    cancel : callable returning bool
        Polled before every batch of windows; ``True`` raises :class:`InferenceCancelled`.
    evidence, skip_below, block
        Skip the windows in which every ``block``-wide mean of ``evidence`` (a spatial
        tensor on the image's grid, before any padding) is at most ``skip_below`` (see
        :func:`empty_windows`); ``None`` runs every window.
    out_channels
        Output channels, needed only when every window may be skipped.
    stats : dict
        Filled with ``windows``, ``run`` and ``skipped`` counts.

    Yields ``(windows_done, windows_total)`` after every batch and returns the blended
    ``(K, *spatial)`` tensor. On CUDA out-of-memory with ``batch_size > 1`` the batch is
    halved and retried; at batch 1 the error propagates for the caller to fall back.
    """
    import torch

    if image.ndim not in (3, 4):
        raise ValueError(f"expected (C, *spatial) with 2 or 3 spatial axes, got {tuple(image.shape)}")
    patch = tuple(int(p) for p in patch_size)
    if len(patch) != image.ndim - 1:
        raise ValueError(f"patch {patch} does not match {image.ndim - 1} spatial axes")
    device = torch.device(device) if device is not None else image.device
    out_device = torch.device(out_device) if out_device is not None else image.device
    out_dtype = out_dtype or torch.float32
    padded, crop = _pad_to(image, patch)
    spatial = tuple(padded.shape[1:])
    windows = window_slices(spatial, patch, step)
    total = len(windows)
    skipped = 0
    if evidence is not None and skip_below is not None:
        # padded like the image, with its own lowest value: outside the image is empty
        ev, _ = _pad_to(evidence[None], patch, value=float(evidence.min()))
        empty = empty_windows(ev[0], windows, float(skip_below), block)
        # mutation-equivalent[True -> False]: one verdict per window
        windows = [w for w, e in zip(windows, empty, strict=True) if not e]
        skipped = total - len(windows)
    if stats is not None:
        stats.update(windows=total, run=total - skipped, skipped=skipped)
    if mode == "gaussian":
        weight = gaussian_weight(patch, device=device)
    elif mode == "constant":
        weight = torch.ones(patch, device=device)
    else:
        raise ValueError(f"mode must be 'gaussian' or 'constant', got {mode!r}")
    weight_out = weight.to(out_device)
    wsum = torch.zeros(spatial, dtype=torch.float32, device=out_device)
    acc = None
    done = 0
    bs = max(int(batch_size), 1)
    n_run = len(windows)
    if skipped:
        yield skipped, total
    while done < n_run:
        if cancel is not None and cancel():
            raise InferenceCancelled(f"cancelled after {done + skipped} of {total} windows")
        chunk = windows[done : done + bs]
        batch = torch.stack([padded[(slice(None), *sl)] for sl in chunk]).to(device)
        try:
            out = predictor(batch)
        except Exception as exc:  # noqa: BLE001 - only OOM is retried
            if bs > 1 and _is_oom(exc):
                del batch
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                bs //= 2
                continue
            raise
        if isinstance(out, (tuple, list)):
            out = out[0]
        if out.shape[0] != len(chunk) or tuple(out.shape[2:]) != patch:
            raise ValueError(
                f"network output has shape {tuple(out.shape)}; expected "
                f"({len(chunk)}, K, {', '.join(map(str, patch))})"
            )
        if acc is None:
            acc = torch.zeros((out.shape[1], *spatial), dtype=out_dtype, device=out_device)
        for b, sl in enumerate(chunk):
            o = out[b]
            # on one device the move is the identity; telling them apart needs a second
            # device (GPU logits, CPU accumulator)  # mutation-equivalent[NotEq -> Eq]: see above
            if o.device != out_device:
                o = o.to(out_device)
            # fused multiply-add into the accumulator: no patch-sized temporary
            acc[(slice(None), *sl)].addcmul_(o, weight_out)
            wsum[sl] += weight_out
        done += len(chunk)
        yield done + skipped, total
    if acc is None:
        if out_channels is None:
            raise ValueError("every window was skipped; out_channels is needed to fill the output")
        acc = torch.zeros((int(out_channels), *spatial), dtype=out_dtype, device=out_device)
    uncovered = (wsum == 0) if skipped else None
    if uncovered is not None:
        wsum[uncovered] = 1.0
    for k in range(acc.shape[0]):  # divide in float32, one class at a time
        acc[k] = (acc[k].float() / wsum).to(out_dtype)
        if uncovered is not None:
            acc[k][uncovered] = FILL_LOGIT if k == 0 else 0.0
    if crop is not None:
        acc = acc[(slice(None), *crop)]
    return acc
