"""Shared fixtures: synthetic NIfTI files, axis-code tables and the real-data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import REALDATA


@pytest.fixture(autouse=True)
def _own_config_dir(tmp_path_factory, monkeypatch):
    """Each test gets an empty napari-spine configuration folder (trusted models ...)."""
    monkeypatch.setenv("NAPARI_SPINE_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))


@pytest.fixture
def realdata() -> Path:
    if not REALDATA.is_dir():
        pytest.skip("../shared/realdata is not available")
    return REALDATA


@pytest.fixture
def phantom_files(tmp_path):
    """A small CT phantom written as image + labels NIfTI (LPS, 1.2 x 1.5 x 1.0 mm)."""
    from napari_spine import make_phantom
    from napari_spine.synthetic import write_phantom

    case = make_phantom((40, 96, 64), (1.2, 1.5, 1.0), levels=("L1", "S1"), axcodes="LPS", seed=3)
    img, lab = write_phantom(case, tmp_path / "ph_ct.nii.gz", tmp_path / "ph_ct_seg.nii.gz")
    return case, img, lab
