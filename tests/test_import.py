"""The core must import without Qt, napari or torch."""

import subprocess
import sys


def test_core_import_is_qt_and_torch_free():
    code = (
        "import sys, napari_spine\n"
        "from napari_spine import load_case, export_labels, make_phantom, ontology\n"
        "import napari_spine.synthetic, napari_spine.io.export, napari_spine.cli, napari_spine.inference\n"
        "bad = [m for m in ('qtpy', 'napari', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'torch',"
        " 'magicgui', 'vispy') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"core import pulled in: {out.stdout.strip()}"


def test_public_api_names():
    import napari_spine as ns

    for name in ("load_case", "export_labels", "make_phantom", "ontology", "SpineCase",
                 "load_model", "predict"):
        assert hasattr(ns, name)
    assert ns.ontology.by_id(22).name == "L3"
    assert ns.ontology.by_name("L3").id == 22
