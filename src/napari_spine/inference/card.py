"""The model card: everything needed to run a network on a case, as plain JSON.

napari-spine's own model format is a TorchScript file with this card embedded (extra
file ``model_card.json``) or lying beside it (``<name>.json``). Example::

    {
      "name": "my-lumbar-2d", "task": "segmentation", "spatial_dims": 2,
      "axcodes": "IP",                 # 2-D: sagittal planes, rows superior->inferior
      "spacing": [0.5, 0.5],           # mm per model voxel (null: the case's own)
      "patch_size": [256, 256], "step": 0.5, "in_channels": 1,
      "normalization": {"scheme": "zscore"},
      "labels": {"0": "background", "1": "L1", "2": "L1/L2 disc", ...}
    }

``axcodes`` is the voxel order the network expects, in nibabel axis codes (``"RAS"``,
``"LIP"`` ...), or ``"file"`` for the file's own order, or ``"file-reversed"`` for the
(z, y, x) order of SimpleITK-based pipelines such as nnU-Net. 2-D models take sagittal
planes (``"IP"``: rows superior to inferior, columns anterior to posterior).
Normalisation schemes: ``none``, ``zscore`` (per image, or fixed ``mean``/``std``),
``ct`` (clip to ``lower``/``upper``, then ``(x - mean) / std``, nnU-Net's
CTNormalization) and ``window`` (clip to ``lower``/``upper``, scale to [0, 1]).
Every label must name a structure of the anatomy table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..anatomy import ontology
from ..errors import SpineIOError

__all__ = ["ModelCard", "ModelError", "NORMALIZATION_SCHEMES"]

NORMALIZATION_SCHEMES = ("none", "zscore", "ct", "window")


class ModelError(SpineIOError):
    """A model file, folder or card cannot be used (message names the file and the problem)."""


def _canonical(name: str, where: str) -> int:
    if name.strip().lower() in ("background", "bg", "0"):
        return 0
    try:
        return ontology.by_name(name).id
    except KeyError:
        raise ModelError(
            f"{where}: label {name!r} is not a structure of the anatomy table "
            "(use a level such as 'L1', a disc such as 'L1/L2 disc', 'vertebral body', "
            "'disc', 'spinal canal' or 'spinal cord')"
        ) from None


@dataclass(frozen=True)
class ModelCard:
    """How to feed a network and read its outputs (see the module docstring)."""

    name: str
    task: str = "segmentation"  # or "classification"
    spatial_dims: int = 3
    axcodes: str = "LIP"
    spacing: tuple[float, ...] | None = None
    patch_size: tuple[int, ...] = (64, 64, 64)
    step: float = 0.5
    in_channels: int = 1
    normalization: Mapping[str, Any] = field(default_factory=lambda: {"scheme": "zscore"})
    labels: Mapping[int, str] = field(default_factory=dict)
    classes: tuple[str, ...] = ()  # classification: one name per output
    version: str = ""
    description: str = ""
    modalities: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label_ids(self) -> tuple[int, ...]:
        """Canonical anatomy id of every output channel, in channel order."""
        return tuple(_canonical(self.labels[k], self.name) for k in sorted(self.labels))

    def to_json(self) -> str:
        """The card as JSON text (what ``model_card.json`` holds)."""
        d = asdict(self)
        d["labels"] = {str(k): v for k, v in self.labels.items()}
        return json.dumps(d, indent=1)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "<card>") -> ModelCard:
        """A card from a parsed ``model_card.json``; ``where`` names it in errors."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if "name" not in d:
            raise ModelError(f"{source}: model card has no 'name'")
        try:
            kw = {k: v for k, v in d.items() if k in known}
            if "labels" in kw:
                kw["labels"] = {int(k): str(v) for k, v in dict(kw["labels"]).items()}
            for k in ("spacing", "patch_size", "classes", "modalities"):
                if kw.get(k) is not None:
                    kw[k] = tuple(kw[k])
            if unknown:
                kw["extra"] = {**dict(kw.get("extra", {})), **{k: d[k] for k in unknown}}
            card = cls(**kw)
        except (TypeError, ValueError) as e:
            raise ModelError(f"{source}: malformed model card: {e}") from None
        card.validate(source)
        return card

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "<card>") -> ModelCard:
        """A card from JSON text; ``where`` names it in errors."""
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ModelError(f"{source}: model card is not valid JSON ({e})") from None
        if not isinstance(d, dict):
            raise ModelError(f"{source}: model card must be a JSON object")
        return cls.from_dict(d, source)

    @classmethod
    def read(cls, path: str | Path) -> ModelCard:
        """A card from a ``model_card.json`` file."""
        return cls.from_json(Path(path).read_bytes(), str(path))

    def validate(self, source: str = "<card>") -> None:
        """Raise :class:`ModelError` (naming ``where``) when the card is inconsistent."""
        where = f"{source} ({self.name})"
        if self.task not in ("segmentation", "classification"):
            raise ModelError(f"{where}: task must be segmentation or classification")
        if self.spatial_dims not in (2, 3):
            raise ModelError(f"{where}: spatial_dims must be 2 or 3, got {self.spatial_dims}")
        nd = self.spatial_dims
        if self.task == "segmentation":
            if len(self.patch_size) != nd or min(self.patch_size) < 1:
                raise ModelError(f"{where}: patch_size needs {nd} positive sizes")
            if not self.labels:
                raise ModelError(f"{where}: a segmentation model card needs 'labels'")
            if sorted(self.labels) != list(range(len(self.labels))):
                raise ModelError(f"{where}: labels must be numbered 0..K-1 (output channels)")
            ids = [_canonical(self.labels[k], where) for k in sorted(self.labels)]
            if max(ids) > 255:
                raise ModelError(f"{where}: label ids must fit in uint8")
        if self.spacing is not None and (len(self.spacing) != nd or min(self.spacing) <= 0):
            raise ModelError(f"{where}: spacing needs {nd} positive values (mm)")
        ax = self.axcodes
        if ax not in ("file", "file-reversed"):
            if len(ax) != nd or any(c not in "LRAPSI" for c in ax):
                raise ModelError(f"{where}: axcodes {ax!r} must be {nd} of L/R, A/P, S/I")
            if len({c.translate(str.maketrans("RPI", "LAS")) for c in ax}) != nd:
                raise ModelError(f"{where}: axcodes {ax!r} repeat an axis")
            if nd == 2 and set(ax.translate(str.maketrans("RPI", "LAS"))) != {"S", "A"}:
                raise ModelError(f"{where}: 2-D models take sagittal planes: axcodes of I/S and A/P")
        scheme = dict(self.normalization).get("scheme", "none")
        if scheme not in NORMALIZATION_SCHEMES:
            raise ModelError(
                f"{where}: normalization scheme {scheme!r} is not one of "
                f"{', '.join(NORMALIZATION_SCHEMES)}"
            )
        if scheme in ("ct", "window") and not {"lower", "upper"} <= set(self.normalization):
            raise ModelError(f"{where}: normalization {scheme!r} needs 'lower' and 'upper'")
        if self.in_channels != 1:
            raise ModelError(
                f"{where}: the model expects {self.in_channels} input channels; napari-spine "
                "cases have one image channel"
            )
