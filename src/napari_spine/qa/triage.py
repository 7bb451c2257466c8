"""Which case to review first: one score from a case's level metrics and its sequence checks."""

from __future__ import annotations

import math
from collections.abc import Sequence

from .metrics import LevelRow, identification_rate

__all__ = ["triage_score"]


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
