"""napari reader for spine NIfTI files (``.nii`` / ``.nii.gz``) and DICOM series.

A DICOM file or a folder of DICOM files opens its largest axial or sagittal series (see
:func:`napari_spine.io.dicom.default_series`); the others are listed in the layer's
metadata and by ``napari-spine info``.

A file named like a segmentation (``*_seg``, ``*_SEG``, ``*_msk``, ``*_mask``,
``*_label*``) opens as a labels layer; any other NIfTI opens as an image, together with
its segmentation when one lies beside it with a conventional name.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..io.nifti import (
    find_labels_for,
    is_label_file,
    is_nifti_path,
    load_case,
    load_labels_file,
    looks_like_label_data,
    nifti_stem,
)
from ._layers import case_to_layer_data, labels_layer_data


def _paths(path: str | os.PathLike | list) -> list:
    """napari passes one path or a list of them."""
    return [path] if isinstance(path, str | os.PathLike) else list(path)


def get_reader(path: str | list[str]) -> Callable | None:
    """Return a reader for NIfTI paths or a folder of per-class masks, ``None`` for anything
    else (never raises)."""
    from ..io.dicom import is_dicom_source
    from ..io.masks import is_mask_folder

    paths = _paths(path)
    if len(paths) == 1 and isinstance(paths[0], str | os.PathLike) and is_mask_folder(paths[0]):
        return read_nifti_layers
    try:
        if paths and all(isinstance(p, str | os.PathLike) and not is_nifti_path(p) and is_dicom_source(p)
                         for p in paths):
            return read_dicom_layers
    except OSError:
        return None
    if not paths or not all(isinstance(p, str | os.PathLike) and is_nifti_path(p) for p in paths):
        return None
    return read_nifti_layers


def find_sibling_labels(image_path: str | os.PathLike) -> Path | None:
    """The segmentation that belongs to an image (see :func:`napari_spine.io.nifti.find_labels_for`)."""
    return find_labels_for(image_path)


def read_nifti_layers(path: str | list[str]) -> list[tuple]:
    """Layer data for one or more NIfTI files (errors name the file and the problem)."""
    from ..io.masks import load_mask_folder, mask_folder_of

    paths = _paths(path)
    layers: list[tuple] = []
    done: set[Path] = set()  # mask folders read, and label files paired with an image
    kinds: dict[Path, tuple[str, Path | None]] = {}
    for p in map(Path, paths):
        folder = mask_folder_of(p)
        kinds[p] = (("folder", folder) if folder is not None
                    else ("labels", None) if is_label_file(p) else ("image", None))
    images = {p: find_sibling_labels(p) for p, (kind, _) in kinds.items() if kind == "image"}
    done.update(lab.resolve() for lab in images.values() if lab is not None)
    for p, (kind, folder) in kinds.items():
        if kind == "folder":  # a folder of per-class masks, or a file inside one
            if folder not in done:
                done.add(folder)
                layers.append(labels_layer_data(load_mask_folder(folder), name=folder.name))
        elif kind == "labels":
            if p.resolve() not in done:  # not already opened with its image
                layers.append(labels_layer_data(load_labels_file(p), name=nifti_stem(p)))
        else:
            case = load_case(p, images[p])
            if images[p] is None and looks_like_label_data(case.image):  # a label map named like an image
                layers.append(labels_layer_data(load_labels_file(p), name=nifti_stem(p)))
            else:
                layers.extend(case_to_layer_data(case))
    return layers


def read_dicom_layers(path: str | list[str]) -> list[tuple]:
    """Layer data of DICOM series: each path (a file or a folder) opens its default series."""
    layers: list[tuple] = []
    for p in _paths(path):
        layers.extend(case_to_layer_data(load_case(p)))
    return layers


def get_pt_reader(path: str | list[str]) -> Callable | None:
    """Reader for SSMSpine / Spine-MSCA ``.pt`` slices (``None`` for anything else)."""
    paths = _paths(path)
    if not paths or not all(str(p).lower().endswith(".pt") for p in paths):
        return None
    return read_pt_layers


def read_pt_layers(path: str | list[str]) -> list[tuple]:
    """Layer data of 2-D dataset slices (safe ``.pt`` loading, see napari_spine.datasets)."""
    from ..datasets import open_dataset

    paths = _paths(path)
    layers: list[tuple] = []
    for p in paths:
        ds = open_dataset(p)
        for ref in ds.cases:
            layers.extend(case_to_layer_data(ds.load_case(ref)))
    return layers
