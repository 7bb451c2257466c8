"""One comparison of a candidate labelling with a reference, as the panel and ``batch qa``
report it: per-level metrics, the level-shift finding, and what was done to the candidate.

A candidate whose vertebrae carry no level ("level not assigned": the bundled model,
TotalSegmentator's ``vertebrae_body``) is numbered by level identification first, and the
comparison says so (with the anchor it used); when even that leaves no numbered level,
the comparison says the candidate cannot be compared by level instead of reporting Dice 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..anatomy import ontology
from ..anatomy.labelmaps import present_ids
from .metrics import LevelRow, level_metrics
from .overlay import LevelShift, level_shift

__all__ = ["Comparison", "compare", "load_prediction", "number_candidate"]

_GENERIC = (ontology.GENERIC_VERTEBRAL_BODY, ontology.GENERIC_VERTEBRA, ontology.GENERIC_DISC)


@dataclass
class Comparison:
    """Per-level rows, the level shift (if any), notes on the candidate, comparability."""

    rows: list[LevelRow]
    shift: LevelShift | None = None
    notes: list[str] = field(default_factory=list)
    comparable: bool = True
    candidate: np.ndarray | None = None  # the candidate as compared (numbered when it was not)

    @property
    def mean_dice(self) -> float:
        """Mean Dice over the reference's levels (NaN when not comparable)."""
        vals = [r.dice for r in self.rows if r.voxels_ref]
        return float(np.mean(vals)) if vals and self.comparable else math.nan

    def as_dict(self) -> dict:
        """JSON form for ``qa.json``."""
        return {"levels": [r.as_dict() for r in self.rows], "comparable_by_level": self.comparable,
                "level_shift": self.shift.as_dict() if self.shift else None, "candidate_notes": self.notes}


def _numbered(labels: np.ndarray) -> bool:
    ids = present_ids(labels)
    return any(ontology.is_vertebra(int(i)) and int(i) not in _GENERIC for i in ids)


def number_candidate(candidate: np.ndarray, spacing: Sequence[float]) -> tuple[np.ndarray, list[str]]:
    """The candidate with generic bodies and discs numbered by level identification (as it
    is when it has none), and a note of what was done."""
    if not np.isin(candidate, _GENERIC).any():
        return candidate, []
    from ..anatomy.levels import identify_levels

    res = identify_levels(candidate, spacing=spacing)
    if not res.bodies:
        return candidate, ["the candidate's vertebrae could not be numbered"]
    how = "anchor assumed" if res.assumed else f"anchor: {res.anchor_source}"
    return res.labels, [f"candidate numbered by level identification ({res.anchor} from {how})"]


def compare(reference: np.ndarray, candidate: np.ndarray, spacing: Sequence[float]) -> Comparison:
    """Compare ``candidate`` with ``reference`` level by level (display-ordered, same grid)."""
    # one contiguous copy each (layer data are often views in the file's axis order)
    ref, cand = np.ascontiguousarray(reference), np.ascontiguousarray(candidate)
    if ref.shape != cand.shape:
        raise ValueError(f"reference {ref.shape} and candidate {cand.shape} are not on the same grid")
    notes: list[str] = []
    if not _numbered(cand):
        cand, notes = number_candidate(cand, spacing)
    if _numbered(ref) and not _numbered(cand):
        notes.append("not comparable by level: the candidate has no numbered vertebra")
        return Comparison(level_metrics(ref, cand, spacing), None, notes, False, cand)
    return Comparison(level_metrics(ref, cand, spacing), level_shift(ref, cand), notes, True, cand)


def load_prediction(folder, case) -> np.ndarray | None:
    """``case``'s prediction from a ``batch predict`` output folder
    (``cases/<case>/prediction.nii.gz``), in the case's display order; None when there is
    none. A prediction on another grid is an error naming the file."""

    from ..errors import SpineIOError
    from ..io.files import case_output
    from ..io.nifti import load_labels_file

    p = case_output(folder, case.case_id, "prediction.nii.gz")
    if not p.is_file():
        return None
    pred = load_labels_file(p, label_scheme="verse")
    if pred.shape != case.shape or not np.allclose(pred.affine, case.affine, atol=1e-4):
        raise SpineIOError(f"{p}: the prediction is not on the grid of {case.key}")
    return pred.labels
