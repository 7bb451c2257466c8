"""Sample data: synthetic spine phantoms (no download)."""

from __future__ import annotations

from ..synthetic import make_phantom
from ._layers import case_to_layer_data


def sample_ct_case():
    """The synthetic lumbar CT phantom as a :class:`~napari_spine.SpineCase`."""
    return make_phantom(
        (96, 232, 150), (1.0, 1.0, 1.0), levels=("T10", "S1"), modality="CT", axcodes="LPS",
        case_id="phantom-ct", seed=1,
    )


def sample_mr_case():
    """The synthetic cervical MR T2 phantom as a :class:`~napari_spine.SpineCase`."""
    return make_phantom(
        (16, 320, 320), (3.5, 0.6, 0.6), levels=("C1", "T2"), modality="MR-T2", axcodes="PIR",
        case_id="phantom-mr", seed=2,
    )


def sample_ct() -> list[tuple]:
    """Lumbar CT phantom (T10-S1), with labels and landmarks."""
    return case_to_layer_data(sample_ct_case())


def sample_mr() -> list[tuple]:
    """Cervical sagittal T2 phantom (C1-T2), with labels and landmarks."""
    return case_to_layer_data(sample_mr_case())
