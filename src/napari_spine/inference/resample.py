"""Resampling between the case grid and a model's grid, and logits -> labels.

Both directions use the same voxel-centre convention (``align_corners=False``: the
outer faces of the field of view coincide), so going to a model's spacing and back
never shifts a mask. Logits are brought back to the case grid slab by slab along the
first axis and reduced to labels at once, so full-resolution float logits never exist:
the peak is one slab of ``K x rows x H x W``.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["grid_shape", "logits_to_labels", "resize"]


def grid_shape(shape: Sequence[int], spacing: Sequence[float], target: Sequence[float]):
    """Shape of the same field of view sampled at ``target`` spacing."""
    return tuple(
        max(1, int(round(s * sp / t))) for s, sp, t in zip(shape, spacing, target, strict=True)
    )


def _mode(nd: int) -> str:
    return {1: "linear", 2: "bilinear", 3: "trilinear"}[nd]


def resize(t, size: Sequence[int]):
    """Linear resize of a ``(C, *spatial)`` float tensor (identity when sizes match)."""
    import torch.nn.functional as F

    size = tuple(int(s) for s in size)
    if tuple(t.shape[1:]) == size:
        return t
    return F.interpolate(t[None], size=size, mode=_mode(len(size)), align_corners=False)[0]


def _axis_weights(n_in: int, n_out: int):
    """Source indices and weights of linear interpolation along one axis (torch's rule)."""
    import torch

    scale = n_in / n_out
    src = ((torch.arange(n_out, dtype=torch.float64) + 0.5) * scale - 0.5).clamp(min=0)
    i0 = src.floor().long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    w1 = (src - i0).float()
    return i0, i1, w1


def logits_to_labels(logits, size: Sequence[int], *, slab: int = 16, probabilities=None):
    """Argmax of ``(K, *spatial)`` logits after linear resizing to ``size``.

    Returns a ``size`` int64 tensor of class indices on the logits' device. When
    ``probabilities`` (a ``(K, *size)`` tensor) is given, the softmax on the case grid
    is written into it as well.
    """
    import torch
    import torch.nn.functional as F

    size = tuple(int(s) for s in size)
    k, *spatial = logits.shape
    if tuple(spatial) == size and probabilities is None:
        return logits.argmax(0)  # same grid: one pass, nothing to resize
    out = torch.empty(size, dtype=torch.int64, device=logits.device)
    same0 = spatial[0] == size[0]
    if not same0:
        i0, i1, w1 = _axis_weights(spatial[0], size[0])
    for a in range(0, size[0], slab):
        b = min(a + slab, size[0])
        if same0:
            part = logits[:, a:b].float()
        else:
            lo, hi = int(i0[a]), int(i1[b - 1]) + 1
            src = logits[:, lo:hi].float()
            ia, ib = (i0[a:b] - lo).to(src.device), (i1[a:b] - lo).to(src.device)
            w = w1[a:b].to(src.device).view(1, -1, *([1] * (len(size) - 1)))
            part = src[:, ia] * (1 - w) + src[:, ib] * w
        if tuple(part.shape[2:]) != size[1:]:
            part = F.interpolate(part, size=size[1:], mode=_mode(len(size) - 1), align_corners=False)
        out[a:b] = part.argmax(0)
        if probabilities is not None:
            probabilities[:, a:b] = torch.softmax(part, 0).to(probabilities.dtype)
    return out
