"""The five datasets' own metric definitions, reproduced exactly (datasets.md 1.8-5.6).

- CSpineSeg: Dice per sagittal slice averaged over slices (a slice empty in both scores
  1); per-disc Dice on the mid-sagittal slice with the six-component rule.
- CTSpine1K: Dice per label 1-25 only where the label is in the reference (else NaN),
  NaN-mean per label across cases, then across labels.
- SSMSpine / Spine-MSCA: Dice with 1e-5 smoothing; HD95 in pixels, 0 when either mask is
  empty; classes 1-11.
- MMCSD: accuracy, precision, NPV, sensitivity, specificity, F1, the README's "AUC"
  (ROC AUC of the *hard* predictions, i.e. balanced accuracy) and the true ROC AUC from
  scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "classification_metrics",
    "cspineseg_disc_level_dice",
    "cspineseg_slice_dice",
    "ctspine1k_case_dice",
    "ctspine1k_dataset_dice",
    "lumbar2d_metrics",
    "roc_auc",
]


def _div(a: float, b: float) -> float:
    return a / b if b else math.nan


def roc_auc(y_true: Sequence[int], y_score: Sequence[float]) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half)."""
    t = np.asarray(y_true).astype(bool)
    s = np.asarray(y_score, dtype=float)
    pos, neg = s[t], s[~t]
    if not len(pos) or not len(neg):
        return math.nan
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([pos, neg]))
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int],
                           y_score: Sequence[float] | None = None) -> dict[str, float]:
    """Binary classification metrics as the MMCSD README reports them (class 1 positive)."""
    t = np.asarray(y_true).astype(int)
    p = np.asarray(y_pred).astype(int)
    if t.shape != p.shape:
        raise ValueError(f"{len(t)} labels but {len(p)} predictions")
    tp = int(((t == 1) & (p == 1)).sum())
    tn = int(((t == 0) & (p == 0)).sum())
    fp = int(((t == 0) & (p == 1)).sum())
    fn = int(((t == 1) & (p == 0)).sum())
    sens, spec = _div(tp, tp + fn), _div(tn, tn + fp)
    prec = _div(tp, tp + fp)
    out = {
        "n": len(t), "tp": tp, "tn": tn, "fp": fp, "fn": fn,
        "accuracy": _div(tp + tn, len(t)),
        "precision": prec,
        "npv": _div(tn, tn + fn),
        "sensitivity": sens,
        "specificity": spec,
        "f1": _div(2 * tp, 2 * tp + fp + fn),
        # roc_auc_score on hard 0/1 predictions, as in the dataset's roc.py
        "auc_hard": roc_auc(t, p),
    }
    if y_score is not None:
        out["roc_auc"] = roc_auc(t, y_score)
    return out


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return 2.0 * int((a & b).sum()) / s if s else 1.0


def cspineseg_slice_dice(reference: np.ndarray, candidate: np.ndarray, label: int, axis: int = 0) -> float:
    """Mean over sagittal slices of the slice Dice for ``label``; empty-in-both slices score 1.

    ``axis`` is the sagittal axis (0 in display order; the dataset's notebooks use the
    file's last axis, which holds the same slices).
    """
    r = np.moveaxis(reference == label, axis, 0)
    c = np.moveaxis(candidate == label, axis, 0)
    within = tuple(range(1, r.ndim))  # every axis of a slice
    inter = (r & c).sum(within)
    sums = r.sum(within) + c.sum(within)
    # mutation-equivalent[1 -> 2]: only guards the division where sums is 0 (inter is 0 then)
    per = np.where(sums > 0, 2.0 * inter / np.maximum(sums, 1), 1.0)
    return float(per.mean())


DISC_LEVELS = ("C2/C3", "C3/C4", "C4/C5", "C5/C6", "C6/C7", "C7/T1")


def cspineseg_disc_level_dice(reference: np.ndarray, candidate: np.ndarray, disc_label: int = 2,
                              ornt: np.ndarray | None = None) -> dict[str, float] | None:
    """Per-disc Dice on the mid-sagittal slice, by the dataset notebook's rule; ``None`` if
    the case is skipped.

    The rule works on the arrays as the NIfTI files hold them: the slice
    ``[:, :, shape[-1] // 2]``, its 8-connected components of the disc label sorted by
    centroid along array axis 1, descending (superior first), the first six named C2/C3 ...
    C7/T1; fewer than six in either mask skips the case. Give display-order arrays with the
    case's ``source.ornt`` (they are put back in file order first: with an even slice count
    and a sagittal axis pointing the other way, the display's middle is another slice), or
    file-order arrays without it.
    """
    from scipy import ndimage

    if ornt is not None:
        from ..geometry import from_display

        reference, candidate = from_display(reference, ornt), from_display(candidate, ornt)
    mid = reference.shape[-1] // 2
    r = reference[:, :, mid] == disc_label
    c = candidate[:, :, mid] == disc_label

    def comps(m):
        lab, n = ndimage.label(m, structure=np.ones((3, 3), bool))
        if n < 6:
            return None
        cents = ndimage.center_of_mass(m, lab, range(1, n + 1))
        order = np.argsort([-x for _, x in cents], kind="stable")  # axis 1, descending
        return [lab == (i + 1) for i in order[:6]]  # mutation-equivalent[6 -> 7]: zipped with six names

    cr, cc = comps(r), comps(c)
    if cr is None or cc is None:
        return None
    return {name: _dice(a, b) for name, a, b in zip(DISC_LEVELS, cr, cc)}


def ctspine1k_case_dice(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Dice for labels 1-25, NaN where the label is absent from the reference."""
    out = np.full(25, np.nan)
    for k in range(1, 26):
        r = reference == k
        if r.any():
            out[k - 1] = _dice(r, candidate == k)
    return out


def ctspine1k_dataset_dice(per_case: Sequence[np.ndarray]) -> tuple[np.ndarray, float]:
    """NaN-mean per label across cases, and the NaN-mean of those 25 means."""
    import warnings

    arr = np.asarray(per_case, dtype=float)
    arr = arr.reshape(arr.size // 25, 25)
    with warnings.catch_warnings():  # a label absent from every case is NaN, as in the original
        warnings.simplefilter("ignore", RuntimeWarning)
        per_label = np.nanmean(arr, axis=0)
        overall = float(np.nanmean(per_label))
    return per_label, overall


def lumbar2d_metrics(reference: np.ndarray, candidate: np.ndarray, classes: Sequence[int] = range(1, 12)
                     ) -> dict[int, tuple[float, float]]:
    """SymTC-style Dice (1e-5 smoothing) and HD95 in pixels (0 if either is empty) per class.

    ``reference`` / ``candidate`` hold the dataset's native 2-D labels (1-11). HD95 is medpy's
    ``hd95`` (the dataset's definition): the 95th percentile of both directions' surface
    distances pooled, not the larger of the two directed percentiles.
    """
    from .metrics import hd95, surface_distances

    r2, c2 = np.squeeze(reference), np.squeeze(candidate)
    out = {}
    for k in classes:
        r, c = r2 == k, c2 == k
        dice = (2.0 * (r & c).sum() + 1e-5) / (r.sum() + c.sum() + 1e-5)
        if r.any() and c.any():
            d_ab, d_ba = surface_distances(c, r, (1.0,) * r.ndim)
            h = hd95(d_ab, d_ba, "pooled")
        else:
            h = 0.0
        out[int(k)] = (float(dice), h)
    return out
