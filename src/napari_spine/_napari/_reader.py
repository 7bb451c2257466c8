"""napari reader for spine NIfTI files (``.nii`` / ``.nii.gz``).

A file named like a segmentation (``*_seg``, ``*_SEG``, ``*_msk``, ``*_mask``,
``*_label*``) opens as a labels layer; any other NIfTI opens as an image, together with
its segmentation when one lies beside it with a conventional name.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..io_nifti import (
    is_label_file,
    is_nifti_path,
    load_case,
    load_labels_file,
    nifti_stem,
    split_name,
)
from ._layers import case_to_layer_data, labels_layer_data

_SIBLING_SUFFIXES = ("_seg", "_SEG", "_msk", "_mask", "_label", "_labels")


def _paths(path: str | os.PathLike | list) -> list:
    """napari passes one path or a list of them."""
    return [path] if isinstance(path, str | os.PathLike) else list(path)


def get_reader(path: str | list[str]) -> Callable | None:
    """Return a reader for NIfTI paths or a folder of per-class masks, ``None`` for anything
    else (never raises)."""
    from ..io_masks import is_mask_folder

    paths = _paths(path)
    if len(paths) == 1 and isinstance(paths[0], str | os.PathLike) and is_mask_folder(paths[0]):
        return read_nifti_layers
    if not paths or not all(isinstance(p, str | os.PathLike) and is_nifti_path(p) for p in paths):
        return None
    return read_nifti_layers


def find_sibling_labels(image_path: str | os.PathLike) -> Path | None:
    """A segmentation beside ``image_path`` named ``<stem><suffix>.nii[.gz]``, if any."""
    p = Path(image_path)
    stem, ext = split_name(p)
    for suf in _SIBLING_SUFFIXES:
        for e in dict.fromkeys((ext, ".nii.gz", ".nii")):
            cand = p.with_name(f"{stem}{suf}{e}")
            if cand.is_file():
                return cand
    return None


def read_nifti_layers(path: str | list[str]) -> list[tuple]:
    """Layer data for one or more NIfTI files (errors name the file and the problem)."""
    from ..io_masks import load_mask_folder, mask_folder_of

    paths = _paths(path)
    layers: list[tuple] = []
    done: set[Path] = set()
    for p in paths:
        folder = mask_folder_of(p)  # a folder of per-class masks, or a file inside one
        if folder is not None:
            if folder not in done:
                done.add(folder)
                layers.append(labels_layer_data(load_mask_folder(folder), name=folder.name))
            continue
        if is_label_file(p):
            case = load_labels_file(p)
            layers.append(labels_layer_data(case, name=nifti_stem(p)))
        else:
            case = load_case(p, find_sibling_labels(p))
            layers.extend(case_to_layer_data(case))
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
