import json
import subprocess
import sys

import pytest

from napari_spine.cli import main


def test_info_json(phantom_files, capsys):
    _, img, lab = phantom_files
    assert main(["info", str(img), str(lab), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["file_orientation"] == "LPS"
    assert doc["shape_display"] == [40, 96, 64]
    assert doc["spacing_mm"] == pytest.approx([1.2, 1.5, 1.0])
    assert doc["dtype"] == "int16" and doc["modality"] == "CT"
    assert {"L1", "L5/S1", "S1", "Spinal canal"} <= set(doc["structures"])


def test_info_text_and_error(phantom_files, tmp_path, capsys):
    _, img, _ = phantom_files
    assert main(["info", str(img)]) == 0
    assert "file orientation LPS" in capsys.readouterr().out
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"")
    assert main(["info", str(bad)]) == 2
    assert "bad.nii.gz: file is empty" in capsys.readouterr().err


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "napari_spine", "--help"], capture_output=True,
                         text=True, check=True)
    assert "--screenshot" in out.stdout
