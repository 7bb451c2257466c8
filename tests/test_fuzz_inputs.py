"""Seeded, bounded fuzzing of every reader a user's files reach.

Each valid fixture is written from the datasets' specifications (docs/datasets.md) with the
reference libraries (nibabel, torch.save, openpyxl, zipfile), never with napari-spine's own
writers. Each is then mutated (bit flips, truncation, overwritten spans, inserted bytes,
structural edits) and handed to ``load_case``, ``open_dataset`` (listing and loading a
case) and ``napari-spine info``. The only acceptable outcomes are a clean load or an error
of the ``SpineIOError`` family naming the input; a ``.nii.gz`` whose compressed bytes were
damaged must never load with changed voxels.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import zipfile
from collections import Counter
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_spine import cli, load_case, open_dataset
from napari_spine.errors import SpineIOError

SEED = 20261201
N_MUTANTS = 22  # per fixture and mutation family below: a few hundred inputs in all


# -- mutations ---------------------------------------------------------------------------------
def _mutants(raw: bytes, rng: np.random.Generator, n: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        b = bytearray(raw)
        kind = ("flip", "truncate", "span", "insert")[i % 4]
        if kind == "flip" and b:
            for _ in range(int(rng.integers(1, 4))):
                pos = int(rng.integers(0, len(b)))
                b[pos] ^= 1 << int(rng.integers(0, 8))
        elif kind == "truncate":
            b = b[: int(rng.integers(0, max(1, len(b))))]
        elif kind == "span" and b:
            pos = int(rng.integers(0, len(b)))
            n_bytes = int(rng.integers(1, 64))
            b[pos:pos + n_bytes] = rng.integers(0, 256, min(n_bytes, len(b) - pos), dtype=np.uint8).tobytes()
        else:
            pos = int(rng.integers(0, len(b) + 1))
            b[pos:pos] = rng.integers(0, 256, int(rng.integers(1, 32)), dtype=np.uint8).tobytes()
        out.append((kind, bytes(b)))
    return out


def _outcome(fn) -> tuple[str, object]:
    try:
        return "loaded", fn()
    except SpineIOError as exc:
        return "SpineIOError", exc
    except KeyError as exc:  # a dataset listing a case that is then not found
        return "KeyError", exc


def _info(path: Path) -> str:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = cli.main(["info", str(path)])
    assert rc in (0, 2), f"napari-spine info {path}: exit {rc}"
    assert "Traceback" not in err.getvalue()
    return "loaded" if rc == 0 else "SpineIOError"


# -- valid fixtures, from the specifications --------------------------------------------------
def _ct(shape=(40, 36, 30), seed=0) -> np.ndarray:
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    g = ndimage.gaussian_filter(rng.normal(0, 1, shape), 2)
    return (g / g.std() * 400 - 300).astype(np.int16)


def _nifti(path: Path, data: np.ndarray) -> Path:
    affine = np.array([[0, 0, -0.9, 20], [-0.8, 0, 0, 10], [0, 1.2, 0, -5], [0, 0, 0, 1]], float)
    img = nib.Nifti1Image(data, affine)
    img.header.set_qform(affine, code=1)
    img.header.set_sform(affine, code=1)
    nib.save(img, str(path))
    return path


def _ssmspine_pt(path: Path) -> Path:
    """One SSMSpine slice: a dict of img/label/bone/disk (datasets.md 4.3), small."""
    import torch

    rng = np.random.default_rng(1)
    label = np.zeros((1, 64, 64), np.uint8)
    for k in range(11):
        label[0, 4 + 5 * k: 8 + 5 * k, 20:44] = k + 1
    torch.save({"img": rng.random((64, 64), dtype=np.float32), "label": label,
                "bone": rng.random((6, 20, 2)).astype(np.float32) * 63,
                "disk": rng.random((5, 16, 2)).astype(np.float32) * 63}, path)
    return path


def _mmcsd_tree(root: Path) -> Path:
    import openpyxl

    for pid in (1, 2):
        folder = root / "image" / "t2_sag" / f"patient_{pid}"
        folder.mkdir(parents=True)
        _nifti(folder / "t2.nii.gz", _ct((12, 40, 30), seed=pid).astype(np.uint16))
    (root / "text").mkdir()
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws.append(["ID", "Age", "Gender", "VAS (preoperative)", "VAS (1 year postoperative)"])
    ws.append(["001", 54, 1, 6, 0])
    ws.append(["002", 61, 2, 7, 3])
    wb.save(root / "text" / "high_pain_text.xlsx")
    (root / "code").mkdir()
    (root / "code" / "train_id4.txt").write_text("1\n")
    (root / "code" / "test_id4.txt").write_text("2\n")
    return root


def _cspineseg_tree(root: Path) -> Path:
    (root / "annotation").mkdir(parents=True)
    (root / "segmentation").mkdir()
    (root / "structured").mkdir()
    stem = "123456-654321_Study-MR-1_Series-2"
    _nifti(root / "annotation" / f"{stem}.nii.gz", _ct((10, 40, 30)).astype(np.int16))
    seg = np.zeros((10, 40, 30), np.uint8)
    seg[3:7, 5:15, 5:25] = 1
    seg[3:7, 17:20, 5:25] = 2
    _nifti(root / "segmentation" / f"{stem}_SEG.nii.gz", seg)
    (root / "structured" / "annotation_file_RSNA_20250321.tsv").write_text(
        "file_name\tmr_series_files.submitter_id\n" f"{stem}.nii.gz\t1.2.3\n")
    (root / "structured" / "mr_series_RSNA_20250321.tsv").write_text(
        "submitter_id\timaging_studies.submitter_id\tmanufacturer\n1.2.3\t9.9\tACME\n")
    (root / "structured" / "imaging_study_RSNA_20250321.tsv").write_text(
        "submitter_id\tcase_ids\n9.9\t123456\n")
    (root / "structured" / "case_RSNA_20250321.tsv").write_text(
        "submitter_id\tage_at_index\tsex\n123456\t50\tFemale\n")
    return root


# -- the fuzz runs -----------------------------------------------------------------------------
def test_fuzz_nifti(tmp_path):
    rng = np.random.default_rng(SEED)
    table: Counter = Counter()
    # the compressed file is large enough (4.6 MB) that a streaming reader stops before the
    # gzip trailer, where a reader that skips the CRC loads flipped bits as wrong voxels
    noisy = rng.normal(0, 30, (256, 256, 60)).astype(np.int16)
    for suffix, data in ((".nii.gz", noisy), (".nii", _ct())):
        good = _nifti(tmp_path / f"good{suffix}", data)
        reference = np.asarray(load_case(good).image)
        raw = good.read_bytes()
        for i, (kind, bad) in enumerate(_mutants(raw, rng, 2 * N_MUTANTS)):
            p = tmp_path / f"m{i}{suffix}"
            p.write_bytes(bad)
            outcome, value = _outcome(lambda p=p: load_case(p))
            table[(suffix, kind, outcome)] += 1
            assert outcome != "KeyError"
            if outcome == "SpineIOError":
                assert str(p) in str(value), value
            elif suffix == ".nii.gz" and bad != raw:
                # the gzip CRC covers header and voxels: what loads is what was written
                assert value.image.shape == reference.shape and np.array_equal(value.image, reference)
            assert _info(p) == outcome
    _report("NIfTI", table)


def test_fuzz_pt_and_zip(tmp_path):
    pytest.importorskip("torch")
    rng = np.random.default_rng(SEED + 1)
    table: Counter = Counter()
    good = _ssmspine_pt(tmp_path / "aug0.pt")
    raw_pt = good.read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("Train/p1/aug0.pt", raw_pt)
    raw_zip = buf.getvalue()
    reference = np.asarray(open_dataset(good).load_case(0).image)
    for name, raw in (("pt", raw_pt), ("zip", raw_zip)):
        for i, (kind, bad) in enumerate(_mutants(raw, rng, N_MUTANTS)):
            root = tmp_path / f"{name}{i}" / "dataset" / "Train" / "p1"
            root.mkdir(parents=True)
            p = root / ("aug0.pt" if name == "pt" else "SSMSpine_Train.zip")
            p.write_bytes(bad)

            def run(p=p):
                ds = open_dataset(p.parent)
                return [ds.load_case(ref) for ref in ds.cases]

            outcome, value = _outcome(run)
            table[(name, kind, outcome)] += 1
            assert outcome != "KeyError"
            if outcome == "loaded" and kind == "flip":  # zip members carry CRC-32s: checked
                assert all(np.array_equal(c.image, reference) for c in value)
            _info(p.parent)
    # structural edits of the dict the files hold
    import torch

    for i, payload in enumerate([{1: np.zeros((4, 4))}, {"img": "text", "label": 3, "bone": None, "disk": []},
                                 {"img": np.zeros((8, 8)), "label": np.zeros((8, 8)), "bone": np.zeros((2, 3)),
                                  "disk": np.zeros(5)}, [1, 2, 3], {"img": np.zeros((8, 8)),
                                  "label": np.full((1, 8, 8), 2**40, np.int64), "bone": np.zeros((6, 4, 2)),
                                  "disk": np.zeros((5, 4, 2))}]):
        root = tmp_path / f"struct{i}" / "Train"
        root.mkdir(parents=True)
        torch.save(payload, root / "aug0.pt")

        def run(root=root):
            ds = open_dataset(root)
            return [ds.load_case(ref) for ref in ds.cases]

        outcome, _ = _outcome(run)
        table[("pt", "structure", outcome)] += 1
        assert outcome != "KeyError"
    _report(".pt / zip", table)


def _mutate_tree(base: Path, target: str, bad: bytes, dest: Path) -> Path:
    shutil.copytree(base, dest)
    (dest / target).write_bytes(bad)
    return dest


def _open_and_load(root: Path):
    ds = open_dataset(root)
    return [ds.load_case(ref, None) for ref in ds.cases], ds.warnings


def test_fuzz_xlsx_tsv_and_dataset_json(tmp_path):
    rng = np.random.default_rng(SEED + 2)
    table: Counter = Counter()
    mmcsd = _mmcsd_tree(tmp_path / "mmcsd")
    xlsx = "text/high_pain_text.xlsx"
    for i, (kind, bad) in enumerate(_mutants((mmcsd / xlsx).read_bytes(), rng, N_MUTANTS)):
        root = _mutate_tree(mmcsd, xlsx, bad, tmp_path / f"x{i}")
        outcome, _ = _outcome(lambda root=root: _open_and_load(root))
        table[("xlsx", kind, outcome)] += 1
        assert outcome != "KeyError"
        _info(root)
    # hostile XML inside a well-formed xlsx: an entity bomb and an external entity
    for j, doctype in enumerate([
        '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>',
        f'<!DOCTYPE x [<!ENTITY e SYSTEM "file://{tmp_path}/secret.txt">]>']):
        (tmp_path / "secret.txt").write_text("secret")
        src = zipfile.ZipFile(mmcsd / xlsx)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as z:
            for item in src.infolist():
                text = src.read(item)
                if item.filename == "xl/worksheets/sheet1.xml":
                    text = text.replace(b"?>", b"?>" + doctype.encode(), 1).replace(
                        b"<v>54</v>", b"<v>&d;</v>" if j == 0 else b"<v>&e;</v>")
                z.writestr(item, text)
        root = _mutate_tree(mmcsd, xlsx, out.getvalue(), tmp_path / f"xml{j}")
        outcome, value = _outcome(lambda root=root: _open_and_load(root))
        table[("xlsx", "entities", outcome)] += 1
        assert outcome != "KeyError"
        if outcome == "loaded":
            cases, _ = value
            assert all("secret" not in json.dumps(dict(c.metadata), default=str) for c in cases)

    cspine = _cspineseg_tree(tmp_path / "cspine")
    tsv = "structured/annotation_file_RSNA_20250321.tsv"
    text = (cspine / tsv).read_bytes()
    structural = [text.replace(b"1.2.3", b'"1.2.3'), text + b"x" * 200_000 + b"\n",
                  text + text.splitlines(keepends=True)[1], b"\x00\xff" * 50]
    for i, (kind, bad) in enumerate(_mutants(text, rng, N_MUTANTS) + [("structure", s) for s in structural]):
        root = _mutate_tree(cspine, tsv, bad, tmp_path / f"t{i}")
        outcome, _ = _outcome(lambda root=root: _open_and_load(root))
        table[("tsv", kind, outcome)] += 1
        assert outcome != "KeyError"
        _info(root)
    folder = _mutate_tree(cspine, tsv, b"", tmp_path / "tsv_folder")
    (folder / tsv).unlink()
    (folder / tsv).mkdir()  # a folder named like a TSV
    table[("tsv", "folder", _outcome(lambda: _open_and_load(folder))[0])] += 1

    for i, doc in enumerate([b"[]", b'"a string"', b"{}", b'{"labels": [1, 2]}', b"{broken", b"\xff\xfe",
                             b'{"labels": {"vertebrae": 1, "disc": 2}, "name": 5}']):
        root = _mutate_tree(cspine, "annotation/x.txt", b"", tmp_path / f"j{i}")
        (root / "dataset.json").write_bytes(doc)
        (root / "annotation" / "dataset.json").write_bytes(doc)  # in a parent folder of a NIfTI too
        outcome, _ = _outcome(lambda root=root: _open_and_load(root))
        table[("dataset.json", "structure", outcome)] += 1
        nifti = next((root / "annotation").glob("*.nii.gz"))
        table[("dataset.json", "nifti below", _outcome(lambda n=nifti: load_case(n))[0])] += 1
        _info(nifti)
    _report("xlsx / TSV / dataset.json", table)


def _report(title: str, table: Counter) -> None:
    lines = [f"{title}: {sum(table.values())} inputs"]
    lines += [f"  {k[0]:<13} {k[1]:<11} {k[2]:<13} {v}" for k, v in sorted(table.items())]
    print("\n".join(lines))
    assert not any(k[2] not in ("loaded", "SpineIOError") for k in table)
