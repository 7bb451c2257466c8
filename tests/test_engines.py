"""External engines (TotalSegmentator, TotalSpineSeg, SPINEPS) with stand-ins that honour
each package's documented command line and output files: a fake package to import and a
fake command on PATH, written here from the engines' documentation.

The stand-ins segment by intensity (the fixture image holds an asymmetric pattern of
values), so labels that come back flipped, transposed or shifted against the case do not
land on the pattern: every file orientation must give labels exactly where the image has
its values."""

from __future__ import annotations

import os
import stat
import sys
import textwrap

import nibabel as nib
import numpy as np
import pytest

from napari_spine import load_case
from napari_spine.anatomy import ontology
from napari_spine.inference import ModelError, load_model, predict
from napari_spine.inference import engines as eng
from napari_spine.inference.types import InferenceCancelled

# the stand-ins' shared part: read the input, label by intensity, keep the input's grid
_COMMON = '''
import os, sys, time
import numpy as np, nibabel as nib
def segment(src, dst, ids, header_names=None):
    img = nib.load(src)
    data = np.asarray(img.dataobj)
    out = np.zeros(data.shape, np.uint8)
    for value, label in ids.items():
        out[data == value] = label
    seg = nib.Nifti1Image(out, img.affine)
    if header_names:
        rows = "".join(f'<Label Key="{k}" Red="1" Green="0" Blue="0" Alpha="1"><![CDATA[{v}]]></Label>'
                       for k, v in header_names.items())
        xml = ('<?xml version="1.0" encoding="UTF-8"?><CaretExtension><VolumeInformation Index="0">'
               f'<LabelTable>{rows}</LabelTable></VolumeInformation></CaretExtension>')
        seg.header.extensions.append(nib.nifti1.Nifti1Extension(0, xml.encode()))
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    nib.save(seg, dst)
if os.environ.get("STANDIN_PID_FILE"):
    with open(os.environ["STANDIN_PID_FILE"], "w") as f:
        f.write(str(os.getpid()))
if os.environ.get("STANDIN_FAIL"):
    print("Predicting part 1 of 5")
    print(os.environ["STANDIN_FAIL"])
    sys.exit(3)
if os.environ.get("STANDIN_HANG"):
    print("Resampling...", flush=True)
    time.sleep(120)
'''

# TotalSegmentator: TotalSegmentator -i IN -o OUT.nii.gz --ml --task T --device D --roi_subset ...
_TOTALSEG = _COMMON + '''
args = sys.argv[1:]
src, dst = args[args.index("-i") + 1], args[args.index("-o") + 1]
assert "--ml" in args and args[args.index("--task") + 1] in ("total", "total_mr"), args
assert args[args.index("--device") + 1] in ("cpu", "gpu", "mps") or args[args.index("--device") + 1].startswith("gpu:")
roi = args[args.index("--roi_subset") + 1:]
assert "spinal_cord" in roi, roi
print("Predicting part 1 of 1 ...", flush=True)
segment(src, dst, {100: 31, 200: 79}, {31: "vertebrae_L1", 79: "spinal_cord"})
print("Saving segmentations...", flush=True)
'''

# TotalSpineSeg: totalspineseg IN OUT [--device cpu|cuda] -> OUT/step2_output/<IN name>
_TSS = _COMMON + '''
src, out = sys.argv[1], sys.argv[2]
assert sys.argv[sys.argv.index("--device") + 1] in ("cpu", "cuda")
print("Running step 1 model:", flush=True)
print("Running step 2 model:", flush=True)
segment(src, os.path.join(out, "step2_output", os.path.basename(src)), {100: 41, 200: 1, 150: 92})
'''

# SPINEPS: spineps sample -i IN -model_semantic M -model_instance M -der_name D [-cpu]
#   -> <IN folder>/D/<BIDS name>_seg-vert_msk.nii.gz and _seg-spine_msk.nii.gz
_SPINEPS = _COMMON + '''
args = sys.argv[1:]
assert args[0] == "sample"
src, der = args[args.index("-i") + 1], args[args.index("-der_name") + 1]
folder = os.path.join(os.path.dirname(src), der)
name = os.path.basename(src).replace("_T2w.nii.gz", "_mod-T2w")
segment(src, os.path.join(folder, name + "_seg-vert_msk.nii.gz"), {100: 20, 150: 120})
segment(src, os.path.join(folder, name + "_seg-spine_msk.nii.gz"), {100: 49, 200: 60, 150: 100})
'''

_SCRIPTS = {"totalsegmentator": ("TotalSegmentator", "totalsegmentator", _TOTALSEG),
            "totalsegmentator-mr": ("TotalSegmentator", "totalsegmentator", _TOTALSEG),
            "totalspineseg": ("totalspineseg", "totalspineseg", _TSS),
            "spineps": ("spineps", "spineps", _SPINEPS)}
#: where each stand-in puts L1 and the cord, in canonical ids
L1, CORD = ontology.vertebra_id("L1"), ontology.SPINAL_CORD


@pytest.fixture
def standin(tmp_path, monkeypatch):
    """Install one engine's stand-in: an importable package, a command on PATH and weights."""

    def install(key: str, weights: bool = True):
        exe, module, body = _SCRIPTS[key]
        site, bindir = tmp_path / "site", tmp_path / "bin"
        (site / module).mkdir(parents=True, exist_ok=True)
        (site / module / "__init__.py").write_text("")
        bindir.mkdir(exist_ok=True)
        script = bindir / exe
        script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
        monkeypatch.syspath_prepend(str(site))
        monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
        root = tmp_path / "weights"
        monkeypatch.setenv("TOTALSEG_WEIGHTS_PATH", str(root / "ts"))
        monkeypatch.setenv("TOTALSPINESEG_DATA", str(root / "tss"))
        monkeypatch.setenv("SPINEPS_SEGMENTOR_MODELS", str(root / "spineps"))
        if weights:
            for i in (291, 292, 293, 294, 295, 298, 730, 731, 732):
                (root / "ts" / f"Dataset{i}_x").mkdir(parents=True, exist_ok=True)
            for s in ("Dataset101_TotalSpineSeg_step1", "Dataset102_TotalSpineSeg_step2"):
                (root / "tss" / "nnUNet" / "results" / "r20250224" / s).mkdir(parents=True, exist_ok=True)
            for m in ("t2w_segmentor", "instance_segmentor", "t2w_labeling"):
                (root / "spineps" / m).mkdir(parents=True, exist_ok=True)
                (root / "spineps" / m / "inference_config.json").write_text("{}")
        return eng.ENGINES[key]

    return install


def pattern_case(tmp_path, codes="RAS", shape=(7, 9, 11)):
    """A case from a file in orientation ``codes`` whose values make an asymmetric pattern:
    100 (the stand-ins' L1), 200 (cord) and 150 (a disc) in blocks no flip maps onto
    themselves; returns the case."""
    data = np.zeros(shape, np.int16)
    data[1:3, 2:5, 3:9] = 100
    data[4, 1:3, 2:4] = 200
    data[5:7, 6:9, 8:11] = 150
    ornt = nib.orientations.axcodes2ornt(tuple(codes))
    aff = np.eye(4)
    aff[:3, :3] = 0
    for i, (ax, sign) in enumerate(ornt):
        aff[int(ax), i] = sign * (0.8 + 0.3 * i)
    aff[:3, 3] = (-5.0, 12.0, 30.0)
    p = tmp_path / f"scan_{codes}.nii.gz"
    nib.save(nib.Nifti1Image(data, aff), str(p))
    return load_case(p)


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
