"""A case is reused only when nothing its outputs depend on has changed.

Each test changes exactly one input (a file's bytes, its time, a folder's file, the model, an
option) and checks that the fingerprint moves; the options that must not matter (trusting a
model) are checked to leave it alone.
"""

from __future__ import annotations

import json
import os

import pytest

from napari_spine.batch.fingerprint import case_fingerprint, model_fingerprint, up_to_date
from napari_spine.batch.options import BatchError, BatchOptions
from napari_spine.datasets.base import CaseRef


def _file(path, data: bytes, mtime_ns: int | None = None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


@pytest.fixture
def case(tmp_path):
    img = _file(tmp_path / "data" / "ct.nii.gz", b"image-bytes", 1_700_000_000_000_000_000)
    lab = _file(tmp_path / "data" / "ct_seg.nii.gz", b"label-bytes", 1_700_000_000_000_000_000)
    return CaseRef("ctspine1k", "c1", images={"ct": str(img)}, labels=str(lab)), img, lab


def _fp(ref, opts=None, model="m0"):
    return case_fingerprint(ref, opts or BatchOptions("export"), model)


def test_same_inputs_same_fingerprint(case):
    ref, _, _ = case
    assert _fp(ref) == _fp(ref)
    assert len(_fp(ref)) == 64


@pytest.mark.parametrize("which", ["image", "labels"])
def test_a_changed_size_or_time_of_an_input_changes_it(case, which):
    ref, img, lab = case
    path = img if which == "image" else lab
    before = _fp(ref)
    _file(path, path.read_bytes() + b"x", 1_700_000_000_000_000_000)  # size only
    after_size = _fp(ref)
    assert after_size != before
    os.utime(path, ns=(1_700_000_000_000_000_001,) * 2)  # time only, 1 ns later
    assert _fp(ref) not in (before, after_size)


def test_a_missing_input_differs_from_a_present_one(case):
    ref, img, _ = case
    before = _fp(ref)
    img.unlink()
    assert _fp(ref) != before


def test_a_dicom_folder_counts_every_file_in_it(tmp_path):
    series = tmp_path / "series"
    _file(series / "a" / "1.dcm", b"one", 1_700_000_000_000_000_000)
    ref = CaseRef("cspineseg", "s1", images={"t2": str(series)})
    before = _fp(ref)
    _file(series / "a" / "2.dcm", b"two", 1_700_000_000_000_000_000)  # a file added deep inside
    added = _fp(ref)
    assert added != before
    os.utime(series / "a" / "1.dcm", ns=(1_700_000_000_000_000_005,) * 2)
    assert _fp(ref) not in (before, added)


def test_a_changed_model_or_option_changes_it_but_trust_does_not(case):
    ref, _, _ = case
    base = _fp(ref, BatchOptions("predict"))
    assert _fp(ref, BatchOptions("predict"), model="m1") != base
    assert _fp(ref, BatchOptions("predict", device="cpu")) != base
    assert _fp(ref, BatchOptions("predict", scheme="native")) != base
    assert _fp(ref, BatchOptions("export")) != base
    assert _fp(ref, BatchOptions("predict", trust_model=True)) == base


def test_qa_counts_the_prediction_it_compares(tmp_path, case):
    ref, _, _ = case
    preds = tmp_path / "preds"
    opts = BatchOptions("qa", predictions=str(preds))
    missing = _fp(ref, opts)
    pred = _file(preds / "cases" / "c1" / "prediction.nii.gz", b"p", 1_700_000_000_000_000_000)
    present = _fp(ref, opts)
    assert present != missing
    _file(pred, b"pp", 1_700_000_000_000_000_000)
    assert _fp(ref, opts) not in (missing, present)
    # an export run does not look at predictions, so the same file does not count there
    plain = _fp(ref, BatchOptions("export", predictions=str(preds)))
    pred.unlink()
    assert _fp(ref, BatchOptions("export", predictions=str(preds))) == plain


def test_model_fingerprint_is_the_content(tmp_path):
    f = _file(tmp_path / "m.pt", b"weights")
    g = _file(tmp_path / "copy" / "other-name.pt", b"weights", 1)
    assert model_fingerprint(str(f)) == model_fingerprint(str(g))  # name and time do not count
    fp = model_fingerprint(str(f))
    _file(f, b"weightz")
    assert model_fingerprint(str(f)) != fp


def test_model_folder_counts_names_and_contents_of_nested_files(tmp_path):
    d = tmp_path / "model"
    _file(d / "fold_0" / "checkpoint.pth", b"A")
    _file(d / "plans.json", b"{}")
    fp = model_fingerprint(str(d))
    (d / "fold_0" / "checkpoint.pth").rename(d / "fold_0" / "checkpoint_final.pth")
    renamed = model_fingerprint(str(d))
    assert renamed != fp
    _file(d / "fold_0" / "checkpoint_final.pth", b"B")
    changed = model_fingerprint(str(d))
    assert changed not in (fp, renamed)
    (d / "fold_1").mkdir()  # an empty folder adds no file
    assert model_fingerprint(str(d)) == changed


def test_model_fingerprint_of_the_bundled_model_and_a_missing_one(tmp_path):
    from napari_spine.inference.model import default_model_path

    assert model_fingerprint("default") == model_fingerprint(str(default_model_path()))
    with pytest.raises(BatchError, match="no such model"):
        model_fingerprint(str(tmp_path / "absent.pt"))


def _done(out, case_id, fingerprint, outputs):
    d = out / "cases" / case_id
    d.mkdir(parents=True, exist_ok=True)
    for o in outputs:
        (d / o).write_bytes(b"x")
    row = {"case": case_id, "status": "ok", "outputs": ";".join(outputs)}
    (d / "done.json").write_text(json.dumps({"fingerprint": fingerprint, "row": row}))
    return d, row


def test_up_to_date_needs_the_same_fingerprint_and_every_output(tmp_path, case):
    ref, _, _ = case
    out = tmp_path / "out"
    d, row = _done(out, "c1", "abc", ["labels.nii.gz", "landmarks.csv"])
    assert up_to_date(ref, out, "abc") == row
    assert up_to_date(ref, out, "abd") is None
    (d / "landmarks.csv").unlink()  # one output gone: computed again
    assert up_to_date(ref, out, "abc") is None


def test_up_to_date_with_no_outputs_or_a_broken_record(tmp_path, case):
    ref, _, _ = case
    out = tmp_path / "out"
    d, row = _done(out, "c1", "abc", [])
    assert up_to_date(ref, out, "abc") == row
    (d / "done.json").write_text("{not json")
    assert up_to_date(ref, out, "abc") is None
    (d / "done.json").unlink()
    assert up_to_date(ref, out, "abc") is None


def test_an_engine_is_fingerprinted_by_its_name_and_installed_version(monkeypatch):
    import hashlib

    from napari_spine.inference import engines as eng

    monkeypatch.setattr(eng.Engine, "version", lambda self: "2.18.0")
    a = model_fingerprint("totalsegmentator")
    assert a == hashlib.sha256(b"totalsegmentator 2.18.0").hexdigest()
    assert model_fingerprint("totalspineseg") != a
    monkeypatch.setattr(eng.Engine, "version", lambda self: "2.19.0")
    assert model_fingerprint("totalsegmentator") != a
