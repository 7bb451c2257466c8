"""Run a model on a case: orientation, normalisation, resampling, sliding window, labels.

:func:`predict_iter` is a generator of :class:`ProgressEvent` that returns a
:class:`Prediction`; the napari widget and the batch CLI both wrap it, and
:func:`predict` runs it to the end. Steps for a segmentation model:

1. Reorder the display-ordered image to the model's axis order (a view: a permutation
   and flips, never a resampling) and convert to float32 on the device.
2. Normalise as the card says, then resize linearly to the model's spacing.
3. Sliding window with Gaussian blending; logits accumulate on the device when they fit
   (half precision on GPUs), on the CPU otherwise.
4. Resize logits back to the case grid slab by slab and take the argmax at once (no
   full-resolution float logits), map output channels to canonical anatomy ids, undo the
   axis reordering.

On CUDA, windows run under bf16/fp16 autocast. A CUDA out-of-memory error halves the
window batch, then reruns the case on the CPU with a message.

On the CPU, windows run two at a time in float32 (at batch 1 PyTorch sends the small
3-D convolutions to its slow reference kernel instead of oneDNN; two windows together
run 1.8x faster each, with the same values to float rounding); ``precision="bf16"``
runs them under bfloat16 autocast where the CPU has bf16 instructions (about 4x faster
again, labels within a fraction of a percent of float32, so it is asked for, never
assumed).

Windows with nothing in them are skipped (``skip_empty``, on by default): in CT a window
whose every voxel is at most -500 HU (air; fat is about -100, lung -900 to -500, bone
above +200), in MR a window whose every 4-voxel block mean is at most 5 % of the image's
99.5th percentile (background noise averages to about 1 %). The threshold is checked on
the raw intensities resized to the model's grid; voxels that only skipped windows cover
are background. Tests check that the labels equal those of a full run.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from nibabel.orientations import apply_orientation, axcodes2ornt, ornt_transform

from .. import geometry
from ..case import SpineCase
from .card import ModelError
from .sliding import InferenceCancelled, _is_oom, sliding_window, window_slices
from .types import Prediction, ProgressEvent, SpineModel

__all__ = ["Prediction", "ProgressEvent", "predict", "predict_iter", "InferenceCancelled"]


# -- orientation -------------------------------------------------------------------------------
def _spacing_through(spacing, ornt) -> tuple[float, ...]:
    out = [0.0] * len(spacing)
    for i, (ax, _) in enumerate(ornt):
        out[int(ax)] = float(spacing[i])
    return tuple(out)


def _transpose_ornt(perm) -> np.ndarray:
    """The orientation transform of ``np.transpose(a, perm)``."""
    ornt = np.zeros((len(perm), 2))
    for j, p in enumerate(perm):
        ornt[int(p)] = (j, 1)  # mutation-equivalent[1 -> 2]: only -1 flips an axis
    return ornt


class _Orienter:
    """Display order <-> the model's axis order, as a chain of permutations/flips."""

    def __init__(self, steps):
        self.steps = list(steps)

    @classmethod
    def for_volume(cls, case: SpineCase, axcodes: str, transpose=None) -> _Orienter:
        if axcodes in ("file", "file-reversed"):
            steps = [geometry.inverse_ornt(case.source.ornt)]
            if axcodes == "file-reversed":
                steps.append(_transpose_ornt((2, 1, 0)))
        else:
            steps = [ornt_transform(axcodes2ornt(geometry.DISPLAY_AXCODES), axcodes2ornt(tuple(axcodes)))]
        if transpose is not None:
            steps.append(_transpose_ornt(transpose))
        return cls(steps)

    @classmethod
    def for_plane(cls, axcodes: str) -> _Orienter:
        """2-D models: display planes are (I, P); the card may ask for another order."""
        labels = (("S", "I"), ("A", "P"))
        return cls([ornt_transform(axcodes2ornt(("I", "P"), labels=labels),
                                   axcodes2ornt(tuple(axcodes), labels=labels))])

    def forward(self, arr: np.ndarray) -> np.ndarray:
        for o in self.steps:
            arr = apply_orientation(arr, o)
        return arr

    def backward(self, arr: np.ndarray) -> np.ndarray:
        for o in reversed(self.steps):
            arr = apply_orientation(arr, geometry.inverse_ornt(o))
        return arr

    def spacing(self, spacing) -> tuple[float, ...]:
        for o in self.steps:
            spacing = _spacing_through(spacing, o)
        return tuple(spacing)


# -- numerics ----------------------------------------------------------------------------------
def _normalize(x, norm: Mapping[str, Any]):
    scheme = norm.get("scheme", "none")
    if scheme == "none":
        return x
    if scheme in ("ct", "window"):
        x = x.clamp_(float(norm["lower"]), float(norm["upper"]))
    if scheme == "window":
        lo, hi = float(norm["lower"]), float(norm["upper"])
        return x.sub_(lo).div_(max(hi - lo, 1e-8))
    if "mean" in norm and "std" in norm:
        mean, std = float(norm["mean"]), float(norm["std"])
    else:
        mean, std = float(x.mean()), float(x.std())
    return x.sub_(mean).div_(max(std, 1e-8))


def _phys_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def _accumulator(device, n_classes: int, n_voxels: int):
    """Where (device, dtype) the blended logits live: on the GPU in fp16 when they fit."""
    import torch

    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if n_classes * n_voxels * 2 < 0.4 * free:
            return device, torch.float16
        return torch.device("cpu"), torch.float16
    if device.type == "mps":
        return device, torch.float16
    if n_classes * n_voxels * 4 < 0.25 * _phys_memory():
        return torch.device("cpu"), torch.float32
    return torch.device("cpu"), torch.float16


def cpu_has_bf16() -> bool:
    """Whether this CPU runs bfloat16 convolutions natively (AVX512-BF16 or AMX)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - builds without oneDNN
        return False


def _precision(device, card, precision: str | None) -> str:
    """``"fp32"``, ``"bf16"`` or ``"fp16"``: what the windows run at on ``device``."""
    import torch

    asked = precision or card.extra.get("precision")
    if asked not in (None, "fp32", "bf16", "fp16", "auto"):
        raise ModelError(f"precision must be 'fp32', 'bf16' or 'fp16', not {asked!r}")
    if device.type == "cuda":
        if asked == "fp32":
            return "fp32"
        return "bf16" if asked in (None, "auto", "bf16") and torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and asked == "bf16":
        if not cpu_has_bf16():
            raise ModelError("bf16 was asked for, but this CPU has no bfloat16 instructions")
        return "bf16"
    return "fp32"


def _autocast(device, precision: str):
    import contextlib

    import torch

    if precision == "fp32" or device.type not in ("cuda", "cpu"):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def _skip_rule(case: SpineCase, card, image) -> tuple[float, int] | None:
    """``(threshold, block)`` below which a window is empty (module docstring), or None."""
    if card.extra.get("skip_empty") is False or not card.label_ids or card.label_ids[0] != 0:
        return None
    if case.modality == "CT":
        return -500.0, 1
    if case.modality.startswith("MR"):
        sample = np.asarray(image[::4, ::4, ::4] if image.ndim == 3 else image[::4, ::4], np.float32)
        top = float(np.percentile(sample, 99.5)) if sample.size else 0.0
        return (0.05 * top, 4) if top > 0 else None
    return None


def _predictor(model: SpineModel, device, precision: str = "fp32"):
    import torch

    net = model.module_on(device)
    card = model.card

    def run(batch):
        with torch.inference_mode(), _autocast(device, precision):
            try:
                return net(batch)
            except Exception as exc:
                if _is_oom(exc):
                    raise
                raise ModelError(
                    f"{model.source}: {card.name} failed on a window of shape "
                    f"{tuple(batch.shape)} ({str(exc).strip().splitlines()[-1]})"
                ) from exc

    return run


# -- the pipeline ------------------------------------------------------------------------------
def predict_iter(
    case: SpineCase,
    model: SpineModel | str,
    device="auto",
    *,
    slice_index: int | None = None,
    step: float | None = None,
    batch_size: int | None = None,
    probabilities: bool = False,
    cancel: Callable[[], bool] | None = None,
    blend: str | None = None,
    skip_empty: bool = True,
    precision: str | None = None,
) -> Generator[ProgressEvent, None, Prediction]:
    """Predict ``case`` with ``model``, yielding progress; returns a :class:`Prediction`.

    ``slice_index`` restricts a segmentation to one sagittal display slice (the napari
    slider position); 3-D models then see a slab around it. ``cancel`` is polled between
    windows and raises :class:`InferenceCancelled`. ``blend`` is ``"gaussian"`` (default)
    or ``"constant"`` window weighting. ``batch_size`` (default: 2 on the CPU in float32,
    else 1) is how many windows run together; ``skip_empty`` leaves out windows with
    nothing in them; ``precision`` is ``"fp32"``, ``"bf16"`` or ``"fp16"`` (default: the
    card's, else float32 on the CPU and bf16/fp16 autocast on CUDA); see the module notes.
    """
    import torch

    from .devices import describe_device, resolve_device

    if isinstance(model, str):
        from .model import load_model

        model = load_model(model)
    if getattr(model, "engine", None) is not None:  # an external engine, in its own process
        return (yield from model.predict_iter(case, device, cancel=cancel))
    dev = resolve_device(device)
    yield ProgressEvent("device", message=f"{model.name} on {describe_device(dev)}")
    t0 = time.perf_counter()
    if model.card.task == "classification":
        from .classifier import classify_iter

        pred = yield from classify_iter(case, model, dev)
        pred.timings["total_s"] = time.perf_counter() - t0
        return pred
    try:
        opts = _Options(slice_index, step, batch_size, probabilities, cancel, blend, skip_empty, precision)
        pred = yield from _segment(case, model, dev, opts)
    except Exception as exc:
        if dev.type == "cpu" or not _is_oom(exc):
            raise
        msg = f"out of memory on {dev}; running on the CPU instead (slower)"
        yield ProgressEvent("warning", message=msg)
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        cpu = torch.device("cpu")
        pred = yield from _segment(case, model, cpu, opts)
        pred.messages.append(msg)
    pred.timings["total_s"] = time.perf_counter() - t0
    return pred


def predict(case: SpineCase, model: SpineModel | str, device="auto", **kwargs) -> Prediction:
    """Run :func:`predict_iter` to the end and return its :class:`Prediction`."""
    gen = predict_iter(case, model, device, **kwargs)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def _region(case: SpineCase, model: SpineModel, slice_index: int | None) -> tuple[int, int, int, int]:
    """(a, b) of display axis 0 to compute and (keep_a, keep_b) to keep."""
    n = case.shape[0]
    if slice_index is None:
        return 0, n, 0, n
    if not 0 <= slice_index < n:
        raise IndexError(f"slice {slice_index} is outside 0..{n - 1}")
    if model.card.spatial_dims == 2:
        return slice_index, slice_index + 1, slice_index, slice_index + 1
    card = model.card
    sp = card.spacing or case.spacing
    # mutation-equivalent[True -> False]: a patch and a spacing both have the model's number of axes
    half = math.ceil(max(p * s for p, s in zip(card.patch_size, sp, strict=True)) / case.spacing[0] / 2)
    return max(0, slice_index - half), min(n, slice_index + half + 1), slice_index, slice_index + 1


@dataclass(frozen=True)  # mutation-equivalent: an internal record nobody changes
class _Options:
    slice_index: int | None
    step: float | None
    batch_size: int | None
    probabilities: bool
    cancel: Callable[[], bool] | None
    blend: str | None
    skip_empty: bool
    precision: str | None


# long: the segmentation pipeline's numbered steps (module docstring) in order, sharing
# the device tensors and timings; a split would pass a dozen tensors around
def _segment(case, model, dev, opts: _Options):
    import torch

    from .resample import grid_shape, logits_to_labels, resize

    card = model.card
    want_probs, cancel = opts.probabilities, opts.cancel
    a, b, keep_a, keep_b = _region(case, model, opts.slice_index)
    lut = torch.tensor(card.label_ids, dtype=torch.uint8)
    out = np.zeros(case.shape, dtype=np.uint8)
    probs = np.zeros((len(lut), *case.shape), np.float16) if want_probs else None
    step = opts.step or card.step
    pred = Prediction(model.name, str(dev), region=(keep_a, keep_b), class_ids=card.label_ids)
    precision = _precision(dev, card, opts.precision)
    batch_size = opts.batch_size or (2 if dev.type == "cpu" and precision == "fp32" else 1)
    predictor = _predictor(model, dev, precision)
    rule = _skip_rule(case, card, case.image) if opts.skip_empty else None
    # without a rule the block size is never used
    skip_below, block = rule if rule is not None else (None, 1)  # mutation-equivalent[1 -> 2]: unused
    counts = {"windows": 0, "run": 0, "skipped": 0}
    yield ProgressEvent("prepare", message="preparing the image")

    # a 3-D model sees the slab a:b at once, a 2-D model each of its sagittal planes
    if card.spatial_dims == 3:
        orient = _Orienter.for_volume(case, card.axcodes, card.extra.get("transpose"))
        items = [(case.image[a:b], slice(a, b))]
        sp = orient.spacing(case.spacing)
    else:
        orient = _Orienter.for_plane(card.axcodes)
        items = [(case.image[s], s) for s in range(a, b)]
        sp = orient.spacing(case.spacing[1:])
    target = card.spacing or sp
    mshape = grid_shape(orient.forward(items[0][0]).shape, sp, target)
    # mutation-equivalent[True -> False]: both have the model's number of axes
    padded = [max(m, p) for m, p in zip(mshape, card.patch_size, strict=True)]
    per_item = len(window_slices(padded, card.patch_size, step))
    out_dev, out_dtype = _accumulator(dev, len(lut), int(np.prod(padded)))
    total = per_item * len(items)
    done = 0
    t_prep = t_windows = t_finish = 0.0
    for arr, dst in items:
        t = time.perf_counter()
        oriented = orient.forward(arr)
        x = torch.from_numpy(np.ascontiguousarray(oriented)).to(dev, torch.float32)[None]
        evidence = None
        if rule is not None:  # raw intensities on the model's grid, before normalising
            evidence = resize(x, mshape)[0]
            if evidence.data_ptr() == x.data_ptr():
                evidence = evidence.clone()
        x = resize(_normalize(x, card.normalization), mshape)
        t_prep += time.perf_counter() - t
        t = time.perf_counter()
        seen: dict = {}
        gen = sliding_window(x, predictor, card.patch_size, step=step, batch_size=batch_size,
                             mode=opts.blend or card.extra.get("blend", "gaussian"),
                             device=dev, out_device=out_dev, out_dtype=out_dtype, cancel=cancel,
                             evidence=evidence, skip_below=skip_below, block=block,
                             out_channels=len(lut), stats=seen)
        while True:
            try:
                i, _n = next(gen)
            except StopIteration as stop:
                logits = stop.value
                break
            yield ProgressEvent("windows", done + i, total, f"window {done + i} of {total}")
        done += per_item
        for key in counts:
            counts[key] += seen.get(key, 0)  # mutation-equivalent[0 -> 1]: every count is set
        del x, evidence
        if logits.shape[0] != len(lut):
            raise ModelError(
                f"{model.source}: {card.name} produced {logits.shape[0]} output channels but "
                f"its card names {len(lut)} labels"
            )
        t_windows += time.perf_counter() - t
        t = time.perf_counter()
        tp = (torch.empty((len(lut), *oriented.shape), dtype=torch.float16, device=logits.device)
              if want_probs else None)
        idx = logits_to_labels(logits, oriented.shape, probabilities=tp)
        del logits
        # back to display order; of a 3-D slab only the rows asked for are kept
        keep = slice(keep_a - a, keep_b - a) if card.spatial_dims == 3 else slice(None)
        dst_keep = slice(keep_a, keep_b) if card.spatial_dims == 3 else dst
        out[dst_keep] = orient.backward(lut.numpy()[idx.cpu().numpy()])[keep]
        if tp is not None:
            probs[:, dst_keep] = np.stack([orient.backward(c)[keep] for c in tp.cpu().numpy()])
        t_finish += time.perf_counter() - t
    pred.labels = out
    pred.probabilities = probs
    pred.timings.update(prepare_s=t_prep, windows_s=t_windows, finish_s=t_finish)
    pred.windows = {**counts, "batch": batch_size, "precision": precision}
    yield ProgressEvent("done", total, total, f"{card.name}: done")
    return pred
