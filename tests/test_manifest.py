"""The root napari.yaml reaches the installed package (editable and wheel)."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from helpers import REPO


def test_npe2_validate_installed_plugin():
    npe2 = pytest.importorskip("npe2")
    out = subprocess.run([sys.executable, "-m", "npe2", "validate", "napari-spine"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    pm = npe2.PluginManifest.from_distribution("napari-spine")
    assert pm.name == "napari-spine"
    cmds = {c.id for c in pm.contributions.commands}
    assert {"napari-spine.get_reader", "napari-spine.write_labels", "napari-spine.sample_ct",
            "napari-spine.case_widget"} <= cmds
    # every command points at an importable callable
    for c in pm.contributions.commands:
        mod, attr = c.python_name.split(":")
        assert hasattr(__import__(mod, fromlist=[attr]), attr), c.python_name


def test_reader_patterns_are_narrow():
    text = (REPO / "napari.yaml").read_text()
    assert "'*.gz'" not in text and '"*.gz"' not in text


@pytest.mark.slow
def test_wheel_contains_the_manifest(tmp_path):
    npe2 = pytest.importorskip("npe2")
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(REPO)], capture_output=True, text=True)
    if out.returncode != 0 and "hatchling" in out.stderr:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
            capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    wheel = next(tmp_path.glob("napari_spine-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        assert "napari_spine/napari.yaml" in names
        manifest = z.read("napari_spine/napari.yaml").decode()
        assert any(n.startswith("napari_spine/anatomy/label_maps/") and n.endswith(".json") for n in names)
        assert "napari_spine/models/default_spine_unet.ts" in names  # the bundled model ships
        eps = next(n for n in names if n.endswith("entry_points.txt"))
        assert "napari_spine:napari.yaml" in z.read(eps).decode()
    assert manifest == (REPO / "napari.yaml").read_text()
    (tmp_path / "napari.yaml").write_text(manifest)
    npe2.PluginManifest.from_file(tmp_path / "napari.yaml")  # validates
