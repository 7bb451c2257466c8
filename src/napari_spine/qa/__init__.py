"""Quality assurance: per-level metrics, the datasets' own metric definitions, review state.

Qt-free; the QA dock widget and the batch runner call these.
"""

from .definitions import (
    classification_metrics,
    cspineseg_disc_level_dice,
    cspineseg_slice_dice,
    ctspine1k_case_dice,
    ctspine1k_dataset_dice,
    lumbar2d_metrics,
    roc_auc,
)
from .metrics import LevelRow, identification_rate, level_metrics, surface_distances

__all__ = [
    "LevelRow",
    "classification_metrics",
    "cspineseg_disc_level_dice",
    "cspineseg_slice_dice",
    "ctspine1k_case_dice",
    "ctspine1k_dataset_dice",
    "identification_rate",
    "level_metrics",
    "lumbar2d_metrics",
    "roc_auc",
    "surface_distances",
]
