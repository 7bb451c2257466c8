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


@pytest.mark.parametrize("argv, words", [
    (["batch", "export", ".", "--out", "o", "--workers", "-1"], "--workers: -1: from 0 (no Dask"),
    (["batch", "export", ".", "--out", "o", "--workers", "100000"], "--workers: 100000: from 0"),
    (["batch", "export", ".", "--out", "o", "--workers", "two"], "'two' is not a number"),
    (["view", "--scheme", "nosuch"], "unknown scheme 'nosuch'; one of: "),
    (["info", "x.nii.gz", "--scheme", "nosuch"], "unknown scheme 'nosuch'"),
    (["batch", "export", ".", "--out", "o", "--scheme", "nosuch"], "one of: native, canonical, "),
])
def test_bad_arguments_are_refused_by_the_parser_with_the_valid_ones(argv, words, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    assert words in capsys.readouterr().err


def test_user_errors_are_one_line_never_a_traceback(phantom_files, tmp_path, capsys):
    _, img, _ = phantom_files
    long_name = tmp_path / ("x" * 300 + ".nii.gz")
    empty = tmp_path / "empty.nii.gz"
    empty.write_bytes(b"")
    cases = [
        (["view", str(tmp_path / "missing.nii.gz")], "missing.nii.gz: no such file or folder"),
        ([str(tmp_path / "missing.nii.gz")], "missing.nii.gz: no such file or folder"),
        (["view", str(empty)], "empty.nii.gz: file is empty"),
        (["info", str(long_name)], "File name too long"),
        (["view", str(long_name)], "File name too long"),
        (["info", str(img), "--series", "3"], "--series chooses a DICOM series"),
    ]
    for argv, words in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err, (argv, err)


def test_an_unknown_sequence_is_refused_with_the_datasets_own(tmp_path, capsys):
    from napari_spine.testing import trees as syn

    mmcsd = syn.write_mmcsd(tmp_path / "m", ids=(1, 2), train=(1,), test=(2,))
    assert main(["batch", "export", str(mmcsd), "--out", str(tmp_path / "o"), "--workers", "0",
                 "--sequence", "t3_sag"]) == 2
    err = capsys.readouterr().err
    assert "--sequence 't3_sag': mmcsd images are one of all, ct_bone, ct_tissue, t1_sag, t2_sag, t2_tra" in err
    ct = syn.write_ctspine1k(tmp_path / "c", "hf")
    assert main(["batch", "export", str(ct), "--out", str(tmp_path / "o2"), "--workers", "0",
                 "--sequence", "t2_sag"]) == 2
    assert "has one image per case" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "o2").exists()  # refused before any work
