"""Annotation correction: level-aware edits, the level-sequence validator, the edit journal
and the session that ties them to one case (baseline, history, locks).

Everything here is pure numpy/scipy on display-ordered canonical label arrays; the
Correction dock widget calls these functions.
"""

from . import ops
from .journal import CaseInUseError, EditJournal, JournalError
from .ops import *  # noqa: F403 - the operations, listed in ops.__all__
from .session import CorrectionSession, PendingEditsError, ReadOnlySessionError, revert_structure
from .validate import Finding, StructureIndex, structure_stats, validate_sequence

__all__ = [
    "CaseInUseError",
    "CorrectionSession",
    "EditJournal",
    "Finding",
    "JournalError",
    "PendingEditsError",
    "ReadOnlySessionError",
    "StructureIndex",
    "revert_structure",
    "structure_stats",
    "validate_sequence",
    *ops.__all__,
]
