"""Annotation correction: level-aware edits, the level-sequence validator, the edit journal
and the session that ties them to one case (baseline, history, locks).

Everything here is pure numpy/scipy on display-ordered canonical label arrays; the
Correction dock widget calls these functions.
"""

from .journal import EditJournal, JournalError
from .ops import (
    fill_holes,
    interpolate_between_slices,
    keep_largest,
    level_sequence,
    merge,
    plane_from_points,
    relabel,
    remove_islands,
    shift_levels,
    split_by_plane,
    swap_levels,
)
from .session import CorrectionSession, revert_structure
from .validate import Finding, structure_stats, validate_sequence

__all__ = [
    "CorrectionSession",
    "EditJournal",
    "Finding",
    "JournalError",
    "fill_holes",
    "interpolate_between_slices",
    "keep_largest",
    "level_sequence",
    "merge",
    "plane_from_points",
    "relabel",
    "remove_islands",
    "revert_structure",
    "shift_levels",
    "split_by_plane",
    "structure_stats",
    "swap_levels",
    "validate_sequence",
]
