"""Batch predict / qa / export over whole datasets, in-process and on a Dask LocalCluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from helpers import sign_model_file
from napari_spine import batch
from napari_spine.batch import BatchError
from napari_spine.cli import main as cli_main
from napari_spine.testing import trees as syn

pytest.importorskip("distributed")
try:  # torch's compiler stack (triton, reached through torchvision by MONAI) loads native
    # code on first import; in a test process that already runs Qt and Dask threads that
    # import crashes, so it is done here, at collection, before either starts
    import torch._dynamo  # noqa: F401
except ImportError:
    pass


def write_kind(kind: str, root: Path) -> Path:
    if kind == "ctspine1k":
        return syn.write_ctspine1k(root)
    if kind == "cspineseg":
        return syn.write_cspineseg(root, n=4)
    if kind == "mmcsd":
        return syn.write_mmcsd(root)
    if kind == "ssmspine":
        return syn.write_ssmspine(root)
    return syn.write_spine_msca(root, archives=False)


def tree(out: Path) -> dict[str, object]:
    """Every output file's content (NIfTI: data + affine; others: bytes), timings excluded."""
    got = {}
    for p in sorted(out.rglob("*")):
        rel = str(p.relative_to(out))
        if p.is_dir() or rel.startswith("logs/"):
            continue
        if p.name.endswith(".nii.gz"):
            img = nib.load(str(p))
            got[rel] = (np.asarray(img.dataobj).tobytes(), img.affine.tobytes(), str(img.get_data_dtype()))
        elif p.name == "done.json":
            d = json.loads(p.read_text())
            d["row"].pop("seconds", None)
            got[rel] = d
        elif p.name == "summary.parquet":
            continue  # Arrow metadata is not byte-stable; summary.csv holds the same table
        elif p.name == "summary.json":
            got[rel] = json.loads(p.read_text())["cases"]
        else:
            got[rel] = p.read_bytes()
    return got


@pytest.mark.parametrize("kind", ["ctspine1k", "cspineseg", "mmcsd", "ssmspine", "spine_msca"])
def test_export_two_workers_equals_one_process(tmp_path, kind):
    root = write_kind(kind, tmp_path / "data")
    one = batch.run("export", root, tmp_path / "one", workers=0, progress=lambda m: None)
    two = batch.run("export", root, tmp_path / "two", workers=2, progress=lambda m: None)
    assert one.ok and two.ok and len(one.rows) >= 2
    def strip(rows):
        return [{k: v for k, v in r.items() if k not in ("seconds", "peak_rss_mb")} for r in rows]

    assert strip(one.rows) == strip(two.rows)
    assert (tmp_path / "one" / "summary.csv").read_bytes() == (tmp_path / "two" / "summary.csv").read_bytes()
    t1, t2 = tree(tmp_path / "one"), tree(tmp_path / "two")
    assert t1.keys() == t2.keys() and t1 == t2
    if kind != "mmcsd":  # MMCSD has no segmentation
        assert any(k.endswith("labels.nii.gz") for k in t1)
    for r in one.rows:
        assert (tmp_path / "one" / "logs" / f"{batch.unique_name(r['case_id'])}.log").is_file()


def test_exported_labels_keep_the_source_geometry(tmp_path):
    root = write_kind("ctspine1k", tmp_path / "data")
    res = batch.run("export", root, tmp_path / "o", workers=0, progress=lambda m: None)
    ds = __import__("napari_spine").open_dataset(root)
    for ref in ds.cases[:3]:
        src = nib.load(ref.labels)
        out = nib.load(str(tmp_path / "o" / "cases" / batch.unique_name(ref.case_id) / "labels.nii.gz"))
        np.testing.assert_allclose(out.affine, src.affine, atol=1e-6)
        np.testing.assert_array_equal(np.asarray(out.dataobj), np.asarray(src.dataobj))
    assert res.ok


def test_a_corrupt_case_is_isolated_and_reported(tmp_path, capsys):
    root = write_kind("ctspine1k", tmp_path / "data")
    ds = __import__("napari_spine").open_dataset(root)
    victim = ds.cases[1]
    image = Path(next(iter(victim.images.values())))
    image.write_bytes(image.read_bytes()[:300])
    rc = cli_main(["batch", "qa", str(root), "--out", str(tmp_path / "o"), "--workers", "2"])
    assert rc == 1
    import csv

    with open(tmp_path / "o" / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    bad = [r for r in rows if r["case_id"] == victim.case_id]
    assert len(rows) == len(ds.cases) and len(bad) == 1
    assert bad[0]["status"] == "failed" and image.name in bad[0]["reason"]
    assert sum(r["status"] == "ok" for r in rows) == len(ds.cases) - 1
    log = (tmp_path / "o" / "logs" / f"{batch.unique_name(victim.case_id)}.log").read_text()
    assert "Traceback" in log
    assert not (tmp_path / "o" / "cases" / batch.unique_name(victim.case_id) / "done.json").exists()
    assert (tmp_path / "o" / "report.html").is_file()
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    table = pd.read_parquet(tmp_path / "o" / "summary.parquet")
    assert list(table["case_id"]) == [r["case_id"] for r in rows]
    assert list(table["status"]) == [r["status"] for r in rows]
    # a rerun retries only the failed case (the others are up to date)
    res = batch.run("qa", root, tmp_path / "o", workers=0, progress=lambda m: None)
    assert res.computed == [victim.case_id] and not res.ok
    assert len(res.reused) == len(ds.cases) - 1


def sign_model(path: Path, patch=16) -> str:
    pytest.importorskip("torch")
    return str(sign_model_file(path, patch_size=[patch] * 3, labels={"0": "background", "1": "vertebral body"},
                               normalization={"scheme": "window", "lower": -100, "upper": 1500}))


def test_predict_then_qa_against_the_predictions(tmp_path):
    pytest.importorskip("torch")
    root = write_kind("ctspine1k", tmp_path / "data")
    model = sign_model(tmp_path / "sign.ts")
    p1 = batch.run("predict", root, tmp_path / "p1", workers=0, model=model, device="cpu",
                   trust_model=True, progress=lambda m: None)
    p2 = batch.run("predict", root, tmp_path / "p2", workers=2, model=model, device="cpu",
                   trust_model=True, progress=lambda m: None)
    assert p1.ok and p2.ok and tree(tmp_path / "p1") == tree(tmp_path / "p2")
    q = batch.run("qa", root, tmp_path / "q", workers=0, predictions=str(tmp_path / "p1"),
                  progress=lambda m: None)
    assert q.ok and all(r["mean_dice"] is not None for r in q.rows)
    doc = json.loads((tmp_path / "q" / "cases" / batch.unique_name(q.rows[0]["case_id"]) / "qa.json").read_text())
    assert doc["levels"] and {"dice", "hd95_mm", "identified"} <= set(doc["levels"][0])
    # a different model is a different fingerprint: everything is recomputed
    other = sign_model(tmp_path / "sign8.ts", patch=8)
    again = batch.run("predict", root, tmp_path / "p1", workers=0, model=other, device="cpu",
                      trust_model=True, progress=lambda m: None)
    assert again.reused == [] and len(again.computed) == len(p1.rows)


def test_mmcsd_classifier_outputs(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("monai")
    from monai.networks.nets import DenseNet121

    root = syn.write_mmcsd(tmp_path / "data", ids=(1, 2), train=(1,), test=(2,))
    torch.save(DenseNet121(spatial_dims=3, in_channels=1, out_channels=2).state_dict(),
               tmp_path / "best_auc.pth")
    res = batch.run("predict", root, tmp_path / "o", workers=0, model=str(tmp_path / "best_auc.pth"),
                    device="cpu", sequence="t2_sag", progress=lambda m: None)
    assert res.ok
    for r in res.rows:
        doc = json.loads((tmp_path / "o" / "cases" / batch.unique_name(r["case_id"]) / "classification.json").read_text())
        assert sum(doc["scores"].values()) == pytest.approx(1.0, abs=1e-5)
        assert 0 <= r["score"] <= 1 and "outcome" in doc["recorded"]


_SLOW = 12  # cases in the kill test


def test_sigkill_midway_then_resume(tmp_path):
    pytest.importorskip("torch")
    root = syn.write_ctspine1k(tmp_path / "data", shape=(40, 60, 40))
    model = sign_model(tmp_path / "sign.ts", patch=8)  # slow enough to kill midway
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "napari_spine", "batch", "predict", str(root), "--out", str(out),
           "--workers", "2", "--model", model, "--device", "cpu", "--trust-model"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    done = lambda: list(out.glob("cases/*/done.json"))  # noqa: E731
    deadline = time.time() + 240
    while len(done()) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    n_cases = len(__import__("napari_spine").open_dataset(root).cases)
    finished = {p.parent.name for p in done()}
    assert 3 <= len(finished) < n_cases, "the run was not interrupted midway"
    assert not (out / "summary.csv").exists()
    res = batch.run("predict", root, out, workers=2, model=model, device="cpu", trust_model=True,
                    progress=lambda m: None)
    assert res.ok
    assert {batch.unique_name(c) for c in res.reused} == finished
    assert {batch.unique_name(c) for c in res.computed} == {batch.unique_name(r["case_id"]) for r in res.rows} - finished
    ref = batch.run("predict", root, tmp_path / "ref", workers=0, model=model, device="cpu",
                    trust_model=True, progress=lambda m: None)
    assert ref.ok and tree(out) == tree(tmp_path / "ref")
    assert not list(out.rglob("*.tmp*"))  # no half-written file survived the kill


# -- bad input ----------------------------------------------------------------------------------
def test_bad_input_is_refused_before_anything_is_written(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BatchError, match="the folder is empty"):
        batch.run("export", tmp_path / "empty", tmp_path / "o1", workers=0)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("hello")
    (other / "photo.png").write_bytes(b"\x89PNG")
    with pytest.raises(BatchError, match="not recognised as MMCSD, CSpineSeg, CTSpine1K"):
        batch.run("export", other, tmp_path / "o2", workers=0)
    root = write_kind("ctspine1k", tmp_path / "data")
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(BatchError, match="output folder is not writable"):
        batch.run("export", root, blocker / "out", workers=0)
    with pytest.raises(BatchError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"):
        batch.run("export", root, tmp_path / "o3", scheduler="tcp://127.0.0.1:9")
    with pytest.raises(BatchError, match=r"nope\.ts: no such model"):
        batch.run("predict", root, tmp_path / "o4", workers=0, model=str(tmp_path / "nope.ts"))
    for o in ("o1", "o2", "o3", "o4"):
        assert not (tmp_path / o).exists()
    assert cli_main(["batch", "export", str(tmp_path / "empty"), "--out", str(tmp_path / "o5")]) == 2
    assert "the folder is empty" in capsys.readouterr().err


def test_filters(tmp_path):
    root = write_kind("ctspine1k", tmp_path / "data")
    ds = __import__("napari_spine").open_dataset(root)
    train = [c.case_id for c in ds.cases if c.split == "train"]
    r = batch.run("export", root, tmp_path / "a", workers=0, split="train", progress=lambda m: None)
    assert [x["case_id"] for x in r.rows] == train
    r = batch.run("export", root, tmp_path / "b", workers=0, glob="liver_*", progress=lambda m: None)
    assert r.rows and all(x["case_id"].startswith("liver_") for x in r.rows)
    with pytest.raises(BatchError, match="no case"):
        batch.run("export", root, tmp_path / "c", workers=0, case_ids=["nope"])


def test_progress_comes_as_events_with_a_count_per_case(tmp_path):
    from napari_spine.inference import ProgressEvent

    root = write_kind("ssmspine", tmp_path / "data")
    events = []
    res = batch.run("export", root, tmp_path / "o", workers=0, progress=events.append)
    n = len(res.rows)
    assert n >= 2 and all(isinstance(e, ProgressEvent) for e in events)
    per_case = [e for e in events if e.stage == "cases"]
    assert [e.done for e in per_case] == list(range(1, n + 1))
    assert all(e.total == n and e.fraction == e.done / n for e in per_case)
    assert events[0].stage == "prepare" and events[-1].stage == "done" and events[-1].fraction == 1.0
    # a rerun computes nothing: no per-case events, everything reported up to date
    again = []
    batch.run("export", root, tmp_path / "o", workers=0, progress=again.append)
    assert not [e for e in again if e.stage == "cases"]
    assert any(f"{n} cases up to date" in e.message for e in again)


def _write_predictions(root, folder, transform):
    """A ``batch predict``-shaped folder whose prediction of each case is ``transform(labels)``."""
    import napari_spine as ns

    ds = ns.open_dataset(root)
    for ref in ds.cases:
        case = ds.load_case(ref.case_id)
        target = folder / "cases" / batch.unique_name(ref.case_id) / "prediction.nii.gz"
        target.parent.mkdir(parents=True, exist_ok=True)
        ns.export_labels(case, transform(case.labels), target, scheme="canonical")
    return ds


def test_qa_numbers_an_unnumbered_candidate_and_names_a_level_shift(tmp_path):
    from napari_spine.anatomy import ontology

    root = write_kind("ctspine1k", tmp_path / "data")
    vert = np.vectorize(lambda v: ontology.is_vertebra(int(v)))

    def generic(lab):  # what the bundled model writes: vertebrae without levels
        return np.where(vert(np.arange(256))[lab], ontology.GENERIC_VERTEBRA, 0).astype(np.uint8)

    def shifted(lab):  # numbered one level lower everywhere
        return np.where(vert(np.arange(256))[lab] & (lab < 26), lab + 1, lab).astype(np.uint8)

    _write_predictions(root, tmp_path / "gen", generic)
    q = batch.run("qa", root, tmp_path / "q1", workers=0, predictions=str(tmp_path / "gen"), progress=lambda m: None)
    assert q.ok
    for r in q.rows:
        doc = json.loads((tmp_path / "q1" / "cases" / batch.unique_name(r["case_id"]) / "qa.json").read_text())
        assert any("numbered by level identification" in n for n in doc["candidate_notes"])
        assert doc["comparable_by_level"] is True or r["mean_dice"] is None  # never a silent 0.000
    _write_predictions(root, tmp_path / "sh", shifted)
    q = batch.run("qa", root, tmp_path / "q2", workers=0, predictions=str(tmp_path / "sh"), progress=lambda m: None)
    doc = json.loads((tmp_path / "q2" / "cases" / batch.unique_name(q.rows[0]["case_id"]) / "qa.json").read_text())
    assert doc["level_shift"]["offset"] == 1 and "shifted by +1 level" in doc["level_shift"]["message"]
    html = (tmp_path / "q2" / "report.html").read_text()
    assert "<title>napari-spine qa: ctspine1k" in html and "ctspine1k ctspine1k" not in html.lower()


def test_report_title_names_the_dataset_once():
    from napari_spine.batch.runner import _title

    assert _title("qa", "ctspine1k", Path("/data/CTSpine1K")) == "napari-spine qa: ctspine1k"
    assert _title("qa", "spine_msca", Path("/data/Spine-MSCA")) == "napari-spine qa: spine_msca"
    assert _title("qa", "ctspine1k", Path("/data/site-b")) == "napari-spine qa: ctspine1k (site-b)"


def test_export_writes_measurements_per_case_and_across_cases(tmp_path):
    import csv

    from napari_spine.measurements import CSV_COLUMNS

    root = write_kind("ctspine1k", tmp_path / "data")
    res = batch.run("export", root, tmp_path / "o", workers=0, progress=lambda m: None)
    assert res.ok
    ds = __import__("napari_spine").open_dataset(root)
    per_case = []
    for ref in ds.cases:
        f = tmp_path / "o" / "cases" / batch.unique_name(ref.case_id) / "measurements.csv"
        rows = list(csv.DictReader(f.open()))
        assert rows and {r["case"] for r in rows} == {f"ctspine1k/{ref.case_id}"}
        per_case += rows
    with (tmp_path / "o" / "measurements.csv").open() as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        assert list(reader) == per_case  # every case's rows, in case order
    assert any(r["kind"] == "body" and r["height_middle_mm"] for r in per_case)


def test_qa_queues_the_checked_cases_for_review(tmp_path, capsys):
    """``batch qa --review-db``: every checked case is queued, the one whose prediction lost
    a level first, each with its level metrics; a rerun keeps what reviewers did."""
    import napari_spine as ns
    from napari_spine.correction import relabel
    from napari_spine.qa.review import ReviewDB

    root = write_kind("ctspine1k", tmp_path / "data")
    ds = ns.open_dataset(root)
    bad = ds.cases[-1].case_id  # the last case in the dataset's order: triage must lift it
    for ref in ds.cases:
        case = ds.load_case(ref.case_id)
        pred = relabel(case.labels, "L3", 0) if ref.case_id == bad else case.labels
        target = tmp_path / "p" / "cases" / batch.unique_name(ref.case_id) / "prediction.nii.gz"
        target.parent.mkdir(parents=True)
        ns.export_labels(case, pred, target, scheme="canonical")
    db_file = tmp_path / "team.sqlite"
    args = ["batch", "qa", str(root), "--out", str(tmp_path / "q"), "--workers", "0",
            "--predictions", str(tmp_path / "p"), "--review-db", str(db_file)]
    assert cli_main(args) == 0
    assert f"{len(ds.cases)} cases queued for review in {db_file}" in capsys.readouterr().err
    db = ReviewDB(db_file)
    queue = db.queue()
    assert len(queue) == len(ds.cases) and queue[0].case_id == bad and queue[0].triage >= 1.0
    for c in queue[1:]:  # a perfect prediction: only the reference's own sequence errors count
        assert c.triage < 1.0
    assert db.source(queue[0].case_key) == {"dataset_path": str(root), "kind": "ctspine1k", "case_id": bad}
    snap, _ = db.latest_snapshot(queue[0].case_key)
    assert {r.name: r.dice for r in snap}["L3"] == 0.0
    db.decide(queue[0].case_key, "ana", "needs correction", "L3 missing")
    assert cli_main(args) == 0  # rerun: the review state stays
    assert db.get(queue[0].case_key).status == "needs correction"
    assert db.get(queue[0].case_key).comment == "L3 missing" and len(db.queue()) == len(ds.cases)
    assert cli_main(args[:-1] + ["postgresql://ana:Pw-123@db.example/r"]) == 2
    assert "Pw-123" not in capsys.readouterr().err


def test_case_ids_that_differ_only_in_unsafe_characters_get_their_own_folders(tmp_path):
    """"case 1" and "case_1" made one folder name, and both reported ok over one set of
    files; now each id has its own folder and summary.csv says which."""
    import csv
    import shutil

    root = syn.write_spine_msca(tmp_path / "m", archives=False, per_split=1)
    shutil.copytree(root / "Train" / "p0", root / "Train" / "case 1")
    shutil.move(root / "Train" / "p0", root / "Train" / "case_1")
    res = batch.run("export", root, tmp_path / "o", workers=0, split="train", progress=lambda m: None)
    assert res.ok and sorted(r["case_id"] for r in res.rows) == ["Train/case 1", "Train/case_1"]
    rows = list(csv.DictReader(open(tmp_path / "o" / "summary.csv", encoding="utf-8")))
    folders = {r["case_id"]: r["folder"] for r in rows}
    assert len(set(folders.values())) == 2 and folders["Train/case 1"] == batch.unique_name("Train/case 1")
    for cid, folder in folders.items():
        assert (tmp_path / "o" / "cases" / folder).is_dir() and folder == batch.unique_name(cid)
    again = batch.run("export", root, tmp_path / "o", workers=0, split="train", progress=lambda m: None)
    assert sorted(again.reused) == ["Train/case 1", "Train/case_1"]  # a rerun finds each case's own files
