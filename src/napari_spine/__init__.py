"""napari-spine: spine CT/MRI datasets, anatomy-aware labels, correction and QA for napari.

The package root exports the Qt-free, torch-free core only; the napari edge lives in
``napari_spine._napari`` and is loaded by napari through ``napari.yaml``.
"""

from __future__ import annotations

from .anatomy import ontology
from .anatomy.labelmaps import available_schemes, get_label_map
from .case import Landmarks, SourceGeometry, SpineCase
from .errors import ExportError, GeometryError, LabelMapError, SpineIOError
from .io.export import ExportResult, export_labels, export_landmarks, read_landmarks
from .io.nifti import load_case as load_nifti_case
from .io.nifti import read_nifti
from .synthetic import make_phantom

__version__ = "0.1.0"


def open_dataset(path, kind=None):
    """Detect and list one of the five spine datasets (see :mod:`napari_spine.datasets`)."""
    from .datasets import open_dataset as _open

    return _open(path, kind)


def load_model(source="default", *, trust=False):
    """Load a model: ``"default"`` (bundled), a TorchScript file, an nnU-Net folder ...

    See :mod:`napari_spine.inference.model`. Needs PyTorch. A TorchScript file is code and
    loads only with ``trust=True`` (or when its content was trusted before).
    """
    from .inference import load_model as _load

    return _load(source, trust=trust)


def predict(case, model="default", device="auto", **kwargs):
    """Run a model on a case; returns an :class:`~napari_spine.inference.Prediction`."""
    from .inference import predict as _predict

    return _predict(case, model, device, **kwargs)


def load_case(image_or_ref, labels_path=None, **kwargs) -> SpineCase:
    """Load a case: a NIfTI image (+ labels) path, or a dataset :class:`CaseRef`.

    For a ``CaseRef`` (from :func:`open_dataset`), ``sequence=`` picks an MMCSD sequence or
    an SSMSpine image variant.
    """
    from .datasets.base import CaseRef, load_ref

    if isinstance(image_or_ref, CaseRef):
        from .datasets import get_adapter

        return load_ref(get_adapter(image_or_ref.kind), image_or_ref, kwargs.get("sequence"))
    return load_nifti_case(image_or_ref, labels_path, **kwargs)

__all__ = [
    "ExportError",
    "ExportResult",
    "GeometryError",
    "LabelMapError",
    "Landmarks",
    "SourceGeometry",
    "SpineCase",
    "SpineIOError",
    "__version__",
    "available_schemes",
    "export_labels",
    "export_landmarks",
    "get_label_map",
    "load_case",
    "load_model",
    "make_phantom",
    "open_dataset",
    "predict",
    "ontology",
    "read_landmarks",
    "read_nifti",
]
