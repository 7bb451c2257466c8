"""Where two labellings disagree, as a label image: missed (reference only) and extra voxels."""

from __future__ import annotations

import numpy as np

__all__ = ["DISAGREEMENT_COLORS", "DISAGREEMENT_NAMES", "disagreement_map"]

#: label value -> meaning of the :func:`disagreement_map` image
DISAGREEMENT_NAMES = {0: "agree", 1: "missed (FN)", 2: "extra (FP)"}
#: label value -> RGBA (blue for missed, red for extra; agreement is transparent)
DISAGREEMENT_COLORS = {0: (0.0, 0.0, 0.0, 0.0), 1: (0.2, 0.4, 1.0, 1.0), 2: (1.0, 0.2, 0.2, 1.0)}


def disagreement_map(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """uint8 image: 1 where the reference has a structure the candidate does not label the
    same (false negative), 2 where the candidate labels a voxel differently (false positive).

    A voxel labelled differently by both is "extra": the candidate's label is what a
    reviewer sees and corrects.

    >>> disagreement_map(np.array([0, 1, 1, 2]), np.array([1, 1, 0, 3])).tolist()
    [2, 0, 1, 2]
    """
    a, b = np.asarray(reference), np.asarray(candidate)
    if a.shape != b.shape:
        raise ValueError(f"reference {a.shape} and candidate {b.shape} differ in shape")
    differ = a != b
    out = np.zeros(a.shape, np.uint8)
    out[(a > 0) & differ] = 1
    out[(b > 0) & differ] = 2
    return out
