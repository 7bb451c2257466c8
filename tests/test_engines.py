"""External engines (TotalSegmentator, TotalSpineSeg, SPINEPS) with stand-ins that honour
each package's documented command line and output files: a fake package to import and a
fake command on PATH, written here from the engines' documentation.

The stand-ins segment by intensity (the fixture image holds an asymmetric pattern of
values), so labels that come back flipped, transposed or shifted against the case do not
land on the pattern: every file orientation must give labels exactly where the image has
its values."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from napari_spine.anatomy import ontology
from napari_spine.inference import ModelError, load_model, predict
from napari_spine.inference import engines as eng
from napari_spine.inference.types import InferenceCancelled

from engine_standins import CORD, L1, pattern_case, standin  # noqa: F401  (standin: a fixture)


ORIENTATIONS = ["RAS", "LPS", "LAI", "PIR", "SLA", "IRP", "ASL", "RSP"]


@pytest.mark.parametrize("codes", ORIENTATIONS)
@pytest.mark.parametrize("key", ["totalsegmentator", "totalspineseg", "spineps"])
def test_engine_labels_land_on_the_case_grid(standin, tmp_path, key, codes):
    standin(key)
    case = pattern_case(tmp_path, codes)
    pred = predict(case, key, device="cpu")
    image = np.asarray(case.image)
    assert np.array_equal(pred.labels == L1, image == 100), (key, codes)
    if key != "totalsegmentator":  # TotalSpineSeg and SPINEPS label the disc too
        assert np.array_equal(pred.labels == ontology.by_name("L1/L2").id, image == 150)
    assert np.array_equal(pred.labels == CORD, image == 200)
    assert pred.labels.dtype == np.uint8 and pred.labels.shape == case.shape
    assert pred.provenance["engine"] == key and pred.provenance["device"] == "cpu"
    assert pred.model_name == eng.ENGINES[key].title


def test_totalsegmentator_mr_asks_for_its_spine_classes(standin, tmp_path):
    engine = standin("totalsegmentator-mr")
    cmd = engine.command(tmp_path / "in.nii.gz", tmp_path / "out", "cuda:1")
    assert cmd[cmd.index("--task") + 1] == "total_mr" and cmd[cmd.index("--device") + 1] == "gpu:1"
    assert cmd[cmd.index("--roi_subset") + 1:] == ["vertebrae", "intervertebral_discs", "spinal_cord", "sacrum"]
    pred = predict(pattern_case(tmp_path), "totalsegmentator-mr", device="cpu")
    assert pred.provenance["task"] == "total_mr"


def test_progress_is_the_engines_own_lines(standin, tmp_path):
    standin("totalspineseg")
    gen = eng.run_engine(pattern_case(tmp_path), "totalspineseg", "cpu")
    said = []
    try:
        while True:
            said.append(next(gen))
    except StopIteration:
        pass
    lines = [e.message for e in said if e.stage == "engine"]
    assert lines == ["Running step 1 model:", "Running step 2 model:"]
    assert said[0].stage == "device" and said[-1].stage == "done"


def test_cancel_terminates_the_engine(standin, tmp_path, monkeypatch):
    standin("totalsegmentator")
    pid_file = tmp_path / "pid"
    monkeypatch.setenv("STANDIN_PID_FILE", str(pid_file))
    monkeypatch.setenv("STANDIN_HANG", "1")
    asked = []
    gen = eng.run_engine(pattern_case(tmp_path), "totalsegmentator", "cpu", cancel=lambda: bool(asked))
    with pytest.raises(InferenceCancelled):
        for ev in gen:
            if ev.stage == "engine":  # the engine is running: the user presses Cancel
                asked.append(True)
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone (and reaped), not left running


def test_an_engine_error_says_what_the_engine_said(standin, tmp_path, monkeypatch):
    standin("totalsegmentator")
    monkeypatch.setenv("STANDIN_FAIL", "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB")
    with pytest.raises(ModelError, match=r"TotalSegmentator failed \(exit status 3\): RuntimeError: CUDA out of "
                                         r"memory\. Tried to allocate 2\.00 GiB"):
        predict(pattern_case(tmp_path), "totalsegmentator", device="cpu")


def test_labels_on_another_grid_are_refused(standin, tmp_path):
    engine = standin("totalspineseg")
    case = pattern_case(tmp_path)
    other = pattern_case(tmp_path, "LPS")  # same voxels, another affine
    with pytest.raises(ModelError, match="wrote labels on another grid"):
        eng._on_case_grid(case, other, tmp_path / "x.nii.gz", engine)


# -- weights and installation --------------------------------------------------------------------
@pytest.mark.parametrize("key", list(eng.ENGINES))
def test_status_ready_weights_missing_and_not_installed(standin, key, monkeypatch):
    engine = standin(key, weights=False)
    st = engine.status()
    assert st.state == "weights missing" and not st.ready
    assert str(engine.weights_dir()) in st.detail and "Download weights" in st.detail
    standin(key, weights=True)
    assert engine.status().state == "ready"
    monkeypatch.setattr(eng.importlib.util, "find_spec", lambda name: None)
    st = engine.status()
    assert st.state == "not installed" and f"pip install 'napari-spine[{engine.extra}]'" in st.detail


def test_a_run_with_weights_missing_stops_before_the_engine_starts(standin, tmp_path, monkeypatch):
    standin("totalspineseg", weights=False)
    pid_file = tmp_path / "pid"
    monkeypatch.setenv("STANDIN_PID_FILE", str(pid_file))
    with pytest.raises(ModelError, match="weights missing"):
        predict(pattern_case(tmp_path), "totalspineseg", device="cpu")
    assert not pid_file.exists()  # the engine (which would download by itself) never ran


def test_weights_follow_each_engines_own_variables(monkeypatch, tmp_path):
    ts = eng.ENGINES["totalsegmentator"]
    env = {"TOTALSEG_HOME_DIR": str(tmp_path / "home")}
    assert ts.weights_dir(env) == tmp_path / "home" / "nnunet" / "results"
    env["TOTALSEG_WEIGHTS_PATH"] = str(tmp_path / "w")
    assert ts.weights_dir(env) == tmp_path / "w"
    assert ts.weights_dir({}) == eng.Path.home() / ".totalsegmentator" / "nnunet" / "results"
    assert eng.ENGINES["totalspineseg"].weights_dir({"TOTALSPINESEG_DATA": "/d"}) == eng.Path("/d")
    assert eng.ENGINES["spineps"].weights_dir({"SPINEPS_SEGMENTOR_MODELS": "/m"}) == eng.Path("/m")


def test_offline_the_download_fails_at_once_with_a_clear_message(standin):
    standin("totalsegmentator", weights=False)
    gen = eng.download_weights("totalsegmentator", reachable=lambda host: False)
    with pytest.raises(ModelError, match=r"cannot reach github\.com to download its weights \(offline\?\); "
                                         r"nothing was downloaded"):
        list(gen)


def test_the_download_runs_the_engines_own_code(standin, monkeypatch):
    engine = standin("totalsegmentator", weights=False)
    cmd = engine.download_command()
    assert cmd[0] == sys.executable and "download_pretrained_weights" in cmd[2]
    assert all(str(i) in cmd[2] for i in (291, 292, 293, 294, 295, 298))
    calls = []

    def fake_lines(cmd, env, cancel, tail):
        calls.append(cmd)
        yield "Downloading pretrained weights for Dataset291"

    monkeypatch.setattr(eng, "_lines", fake_lines)
    gen = eng.download_weights(engine, reachable=lambda host: True)
    msgs = []
    try:
        while True:
            msgs.append(next(gen).message)
    except StopIteration as stop:
        status = stop.value
    assert calls == [cmd] and "Downloading pretrained weights for Dataset291" in msgs
    assert status.state == "weights missing"  # the stand-in downloaded nothing


def test_engines_load_by_name_without_a_model_file():
    model = load_model("totalspineseg")
    assert model.engine is eng.ENGINES["totalspineseg"] and model.name == "TotalSpineSeg"
    with pytest.raises(ModelError, match="is not an engine"):
        eng.engine_model("nnunet")


def test_batch_predict_runs_an_engine_and_records_its_provenance(standin, tmp_path):
    import json

    from napari_spine import batch
    from napari_spine.testing import trees as syn

    standin("totalspineseg")
    root = syn.write_ctspine1k(tmp_path / "data")
    res = batch.run("predict", root, tmp_path / "p", workers=0, model="totalspineseg", device="cpu",
                    progress=lambda m: None)
    assert res.ok and res.rows
    doc = json.loads((tmp_path / "p" / "cases" / batch.unique_name(res.rows[0]["case_id"])
                      / "prediction.json").read_text())
    assert doc["model"] == "TotalSpineSeg" and doc["provenance"]["engine"] == "totalspineseg"


@pytest.mark.parametrize("key", list(eng.ENGINES))
def test_the_real_package_without_weights_says_so_within_seconds(key, tmp_path, monkeypatch):
    """Runs where the engine's real package is installed (it is not part of the test set-up)."""
    import importlib.util
    import time

    engine = eng.ENGINES[key]
    if importlib.util.find_spec(engine.module) is None or engine.command_path() is None:
        pytest.skip(f"{engine.distribution} is not installed here")
    for var in ("TOTALSEG_WEIGHTS_PATH", "TOTALSEG_HOME_DIR", "TOTALSPINESEG_DATA", "SPINEPS_SEGMENTOR_MODELS"):
        monkeypatch.setenv(var, str(tmp_path / "empty" / var))
    assert engine.status().state == "weights missing"
    t = time.perf_counter()
    with pytest.raises(ModelError, match="weights missing"):
        predict(pattern_case(tmp_path), key, device="cpu")
    assert time.perf_counter() - t < 10
