"""Shared fixtures: synthetic NIfTI files, axis-code tables and the real-data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import REALDATA


@pytest.fixture(autouse=True)
def _own_config_dir(tmp_path_factory, monkeypatch):
    """Each test gets an empty napari-spine configuration folder (trusted models, settings)
    and data folder (edit journals)."""
    monkeypatch.setenv("NAPARI_SPINE_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
    monkeypatch.setenv("NAPARI_SPINE_DATA_DIR", str(tmp_path_factory.mktemp("data")))


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


@pytest.fixture(scope="session")
def pg_cluster():
    """A throw-away PostgreSQL server for the run (skipped where none is installed, unless
    NAPARI_SPINE_REQUIRE_POSTGRES=1, as in CI, where its absence is a failure)."""
    import os

    from napari_spine.testing.postgres import TempCluster

    try:
        import psycopg  # noqa: F401

        cluster = TempCluster()
    except (ImportError, FileNotFoundError, RuntimeError) as exc:
        if os.environ.get("NAPARI_SPINE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required here and cannot be started: {exc}")
        pytest.skip(f"no PostgreSQL server for the tests: {exc}")
    old = os.environ.get("PGPASSFILE")
    os.environ["PGPASSFILE"] = str(cluster.pgpass)  # the password lives there, never in a URL
    try:
        yield cluster
    finally:
        if old is None:
            os.environ.pop("PGPASSFILE", None)
        else:
            os.environ["PGPASSFILE"] = old
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def review_location(request, tmp_path):
    """Where a fresh review database lives: an SQLite file, or a new database on the
    test server."""
    if request.param == "sqlite":
        return str(tmp_path / "review.sqlite")
    return request.getfixturevalue("pg_cluster").new_database()
