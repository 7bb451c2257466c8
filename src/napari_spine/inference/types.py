"""The records inference passes around: models, progress events, predictions, cancellation.

Kept apart from the code that makes them so that the model loaders, the pipeline, the
backends, the batch runner and the panels share them without importing each other.
No torch at import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..case import SpineCase
from .card import ModelCard

__all__ = ["InferenceCancelled", "Prediction", "ProgressEvent", "SpineModel"]


class InferenceCancelled(RuntimeError):
    """Raised between windows when the user cancels a prediction."""


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a prediction. ``total == 0`` means the step has no count."""

    stage: str  # "device", "prepare", "windows", "finish", "warning", "done"; batch: "cases"
    done: int = 0
    total: int = 0
    message: str = ""

    @property
    def fraction(self) -> float | None:
        """``done / total``, or None for a step without a count."""
        return self.done / self.total if self.total else None


@dataclass
class Prediction:
    """What a model produced for a case, in the case's display order.

    ``labels`` hold canonical anatomy ids (uint8, the case's shape; outside ``region``
    zero). ``probabilities`` (optional) are ``(K, *shape)`` float16 with ``class_ids``
    giving the canonical id of each channel. Classifiers fill ``scores`` (class name ->
    probability) and ``recorded`` (the case's known outcome, if any).
    """

    model_name: str
    device: str
    labels: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    class_ids: tuple[int, ...] = ()
    scores: dict[str, float] = field(default_factory=dict)
    recorded: dict[str, Any] = field(default_factory=dict)
    region: tuple[int, int] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    #: sliding-window counts: ``windows`` placed, ``run``, ``skipped`` (empty), and the
    #: ``batch`` size and ``precision`` they ran at
    windows: dict[str, Any] = field(default_factory=dict)
    #: where the labels came from, for an external engine: engine, package version, task,
    #: device, time
    provenance: dict[str, Any] = field(default_factory=dict)

    def apply_to(self, case: SpineCase) -> SpineCase:
        """The case with these labels (segmentation models only)."""
        if self.labels is None:
            raise ValueError(f"{self.model_name} is a classifier: it produced no labels")
        return case.with_labels(self.labels)


@dataclass
class SpineModel:
    """A network and its card, ready for :func:`napari_spine.predict`.

    ``network`` is a ``torch.nn.Module`` (or TorchScript module) on the CPU; it is moved
    to the inference device on first use and cached there.
    """

    card: ModelCard
    network: Any
    source: str
    backend: str  # "torchscript", "nnunetv2", "nnunetv1", "mmcsd-densenet" (see model.BACKENDS)
    info: dict = field(default_factory=dict)
    _on: dict = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        """The model's name (from its card)."""
        return self.card.name

    def module_on(self, device):
        """The network in eval mode on ``device`` (moved once, then cached)."""
        import torch

        device = torch.device(device)
        key = str(device)
        if key not in self._on:
            self._on.clear()  # keep one copy: a model moved to the CPU frees the GPU
            self._on[key] = self.network.to(device).eval()
        return self._on[key]

    def describe(self) -> str:
        """What the model is and does, in a few lines for the model picker."""
        c = self.card
        lines = [f"{c.name} ({self.backend}) from {self.source}"]
        if c.description:
            lines.append(c.description)
        if c.task == "segmentation":
            sp = "case spacing" if c.spacing is None else "x".join(f"{s:g}" for s in c.spacing) + " mm"
            names = ", ".join(c.labels[k] for k in sorted(c.labels) if k)
            lines.append(
                f"{c.spatial_dims}-D segmentation, patch {'x'.join(map(str, c.patch_size))} "
                f"at {sp}, outputs: {names}"
            )
        else:
            lines.append(f"classification: {', '.join(c.classes)}")
        return "\n".join(lines)
