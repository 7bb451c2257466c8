"""The bundled default model: small, described, and right on phantoms it never saw."""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import napari_spine  # noqa: E402
from napari_spine import ontology  # noqa: E402
from napari_spine.inference.model import default_model_path  # noqa: E402


def _classes(labels):
    out = np.zeros(labels.shape, np.uint8)
    for s in ontology.STRUCTURES:
        if s.kind in ("vertebra", "endplate"):
            out[labels == s.id] = 1
        elif s.kind == "disc":
            out[labels == s.id] = 2
    out[labels == ontology.SPINAL_CANAL] = 3
    return out


def test_bundled_model_is_small_and_carries_its_card():
    path = Path(default_model_path())
    assert path.is_file() and path.stat().st_size < 10 * 2**20
    model = napari_spine.load_model("default")
    card = model.card
    assert card.label_ids == (0, 51, 100, 61, 60)  # whole vertebrae, discs, canal, cord
    assert card.spacing == (2.0, 2.0, 2.0) and card.axcodes == "LIP"
    assert "python scripts/train_default_model.py" in card.extra["training"]["command"]
    assert "phantoms" in card.extra["metrics"] and card.extra["metrics"]["phantoms"]


@pytest.mark.parametrize(("modality", "levels", "shape", "spacing", "axcodes"), [
    ("CT", ("T11", "S1"), (60, 150, 90), (1.5, 1.5, 1.5), "LPS"),
    ("MR-T2", ("C2", "T2"), (14, 200, 200), (3.0, 0.7, 0.7), "PIR"),
])
def test_segments_an_unseen_phantom(modality, levels, shape, spacing, axcodes):
    case = napari_spine.make_phantom(shape, spacing, levels=levels, modality=modality,
                                     axcodes=axcodes, seed=4242, case_id="unseen")
    pred = napari_spine.predict(case, "default", "cpu")
    got, ref = _classes(pred.labels), _classes(case.labels)
    for c, floor in ((1, 0.75), (2, 0.6)):
        a, b = got == c, ref == c
        dice = 2 * (a & b).sum() / (a.sum() + b.sum())
        assert dice > floor, (modality, c, dice)
