"""napari-spine: spine CT/MRI datasets, anatomy-aware labels, correction and QA for napari.

The package root exports the Qt-free, torch-free core only; the napari edge lives in
``napari_spine._napari`` and is loaded by napari through ``napari.yaml``.
"""

from __future__ import annotations

from . import ontology
from .case import Landmarks, SourceGeometry, SpineCase
from .errors import ExportError, GeometryError, LabelMapError, SpineIOError
from .export import ExportResult, export_labels, export_landmarks, read_landmarks
from .io_nifti import load_case, read_nifti
from .labelmaps import available_schemes, get_label_map
from .synthetic import make_phantom

__version__ = "0.1.0"

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
    "make_phantom",
    "ontology",
    "read_landmarks",
    "read_nifti",
]
