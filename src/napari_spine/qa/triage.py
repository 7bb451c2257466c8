"""Which case to review first: one score from a case's level metrics and its sequence checks."""

from __future__ import annotations

import math
from collections.abc import Sequence

from .metrics import LevelRow, identification_rate

__all__ = ["case_triage", "triage_dataset", "triage_score"]


def triage_score(rows: Sequence[LevelRow], n_errors: int) -> float:
    """Higher = review sooner: ``(1 - worst Dice) + (1 - identification rate) + 0.5 x errors``.

    ``n_errors`` counts the level-sequence errors of the candidate. Without rows (nothing
    compared) the score is the error count alone.

    >>> triage_score([], 2)
    2.0
    """
    if not rows:
        return float(n_errors)
    worst = min(r.dice for r in rows)
    ident = identification_rate(rows)
    return (1.0 - worst) + (0.0 if math.isnan(ident) else 1.0 - ident) + 0.5 * n_errors


def case_triage(labels, spacing, candidate=None) -> float:
    """Triage of one case from its reference labels (level-sequence errors) and, when a
    candidate is given (a batch prediction), the per-level agreement with it."""
    from ..correction import validate_sequence

    errors = sum(f.severity == "error" for f in validate_sequence(labels, spacing))
    if candidate is None:
        return triage_score([], errors)
    from .compare import compare

    cmp = compare(labels, candidate, spacing)
    return triage_score([r for r in cmp.rows if r.voxels_ref], errors)


def triage_dataset(ds, predictions=None):
    """Generator over a dataset's cases: yields a ProgressEvent per case and returns
    ``{case key: triage}``. ``predictions`` is a ``batch predict`` output folder; a case
    that cannot be read gets the highest score (look at it first) and its reason."""
    from ..inference.types import ProgressEvent
    from .compare import load_prediction

    out: dict[str, float] = {}
    refs = list(ds.cases)
    for k, ref in enumerate(refs, start=1):
        try:
            case = ds.load_case(ref.case_id)
            cand = load_prediction(predictions, case) if predictions else None
            score = case_triage(case.labels, case.spacing, cand) if case.labels is not None else 0.0
            msg = f"{ref.case_id}: triage {score:.2f}"
        except Exception as exc:  # noqa: BLE001 - an unreadable case is the first to look at
            score, msg = 99.0, f"{ref.case_id}: cannot be read ({exc})"
        out[ref.key] = score
        yield ProgressEvent("cases", k, len(refs), msg)
    return out
