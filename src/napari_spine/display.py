"""Display presets the panels and reports share: CT windows and automatic MR contrast."""

from __future__ import annotations

import numpy as np

__all__ = ["CT_WINDOWS", "default_contrast", "mr_contrast_limits", "window_limits"]

#: CT window presets as (width, level) in HU.
CT_WINDOWS: dict[str, tuple[float, float]] = {
    "bone": (1800.0, 400.0),
    "soft tissue": (400.0, 40.0),
    "spine soft tissue": (250.0, 50.0),
}


def window_limits(name: str) -> tuple[float, float]:
    """Contrast limits of a CT window preset.

    >>> window_limits("bone")
    (-500.0, 1300.0)
    """
    width, level = CT_WINDOWS[name]
    return (level - width / 2, level + width / 2)


def mr_contrast_limits(image: np.ndarray) -> tuple[float, float]:
    """0.5-99.5 percentile limits from a strided sample (about 1/64 of the voxels per axis)."""
    step = tuple(max(1, s // 64) for s in image.shape)
    sample = np.asarray(image[tuple(slice(None, None, st) for st in step)], dtype=np.float32)
    if sample.size == 0:
        return (0.0, 1.0)
    lo, hi = np.percentile(sample, [0.5, 99.5])
    if hi <= lo:
        hi = lo + 1.0
    return (float(lo), float(hi))


def default_contrast(modality: str, image: np.ndarray) -> tuple[float, float]:
    """The bone window for CT, automatic limits for everything else."""
    if modality == "CT":
        return window_limits("bone")
    return mr_contrast_limits(image)
