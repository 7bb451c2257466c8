"""Measurements from shape contours (SSMSpine): each closed contour is filled on a grid four
times finer than the image, so the heights come from the annotated outline rather than the
mask's pixels."""

from __future__ import annotations

import numpy as np
from skimage.draw import polygon

from ..errors import SpineIOError

SUPERSAMPLE = 4


def contour_labels(case) -> tuple[np.ndarray, np.ndarray]:
    """A canonical-id label slice filled from the case's contour landmarks and its affine."""
    lm = case.landmarks
    if lm is None or not len(lm):
        raise SpineIOError(f"{case.key}: no contours to measure")
    if case.shape[0] != 1:
        raise SpineIOError(f"{case.key}: contours are measured on 2-D (single-slice) cases only")
    s = SUPERSAMPLE
    rows, cols = case.shape[1] * s, case.shape[2] * s
    out = np.zeros((1, rows, cols), dtype=np.uint8)
    for sid in dict.fromkeys(int(i) for i in lm.structure_ids):
        pts = lm.coords[lm.structure_ids == sid]
        if len(pts) < 3:
            continue
        # voxel centre k covers [k - 0.5, k + 0.5): fine centre j sits at (j + 0.5) / s - 0.5
        rr, cc = polygon((pts[:, 1] + 0.5) * s - 0.5, (pts[:, 2] + 0.5) * s - 0.5, (rows, cols))
        out[0, rr, cc] = sid
    fine = np.array(case.affine, dtype=np.float64)
    fine[:3, 1:3] = fine[:3, 1:3] / s
    fine[:3, 3] = case.affine[:3, 3] + case.affine[:3, 1:3] @ np.full(2, (1 - s) / (2 * s))
    return out, fine
