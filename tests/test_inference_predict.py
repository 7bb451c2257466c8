"""The prediction pipeline with networks whose right answer is known."""

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helpers import (  # noqa: E402
    FileOpeningPickle,
    all_axcodes,
    drain,
    save_torchscript,
    sign_card,
    sign_model_file,
)
from napari_spine import SpineCase, geometry, make_phantom  # noqa: E402
from napari_spine.inference import (  # noqa: E402
    InferenceCancelled,
    ModelCard,
    ModelError,
    available_devices,
    load_model,
    predict,
    predict_iter,
    resolve_device,
)
from napari_spine.inference.model import SpineModel  # noqa: E402


class Sign(torch.nn.Module):
    """Two classes: background where the input is negative, the other where positive."""

    def forward(self, x):
        return torch.cat([-x, x], 1)


class TwoChannel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(2, 2, 1)

    def forward(self, x):
        return self.conv(x)


def pattern_case(axcodes="RAS", shape=(23, 30, 19), spacing=(1.0, 1.0, 1.0)):
    """A file-ordered random +-1 pattern; the sign is the right answer voxel by voxel."""
    rng = np.random.default_rng(3)
    img = np.where(rng.random(shape) > 0.6, 1, -1).astype(np.int16) * rng.integers(1, 5, shape)
    aff = np.eye(4)
    aff[:3, :3] = 0
    for i, c in enumerate(axcodes):
        w = next(k for k, pair in enumerate(("LR", "PA", "IS")) if c in pair)
        aff[w, i] = (1 if c in "RAS" else -1) * spacing[i]
    aff[:3, 3] = (4.0, -7.0, 11.0)
    assert "".join(geometry.axcodes(aff)) == axcodes
    return SpineCase.from_arrays(img.astype(np.int16), aff, modality="CT")


def sign_model(tmp_path, **card):
    return load_model(sign_model_file(tmp_path / "sign.ts", **card), trust=True)


@pytest.mark.parametrize("model_axes", ["LIP", "RAS", "PSL", "file", "file-reversed"])
@pytest.mark.parametrize("file_axes", [a for i, a in enumerate(all_axcodes()) if i % 6 == 0])
def test_orientation_round_trip_is_exact(tmp_path, file_axes, model_axes):
    case = pattern_case("".join(file_axes))
    model = sign_model(tmp_path, axcodes=model_axes)
    pred = predict(case, model, "cpu")
    assert pred.labels.shape == case.shape and pred.labels.dtype == np.uint8
    np.testing.assert_array_equal(pred.labels, np.where(np.asarray(case.image) > 0, 20, 0))


def test_resampling_to_model_spacing_and_back_keeps_a_blob_in_place(tmp_path):
    # a smooth anisotropic blob at 0.8 x 0.8 x 3 mm, model at 2 mm isotropic
    shape, sp = (60, 70, 16), (0.8, 0.8, 3.0)
    g = np.meshgrid(*[(np.arange(n) + 0.5) * s for n, s in zip(shape, sp, strict=True)],
                    indexing="ij")
    c = (21.0, 30.0, 25.0)
    r = np.sqrt(sum(((gi - ci) / rad) ** 2 for gi, ci, rad in zip(g, c, (10, 14, 12), strict=True)))
    img = (100 * (1 - r)).astype(np.int16)  # positive inside the ellipsoid
    case = SpineCase.from_arrays(img, np.diag([*sp, 1.0]), modality="CT")
    pred = predict(case, sign_model(tmp_path, spacing=[2.0, 2.0, 2.0]), "cpu")
    truth = np.asarray(case.image) > 0
    got = pred.labels == 20
    dice = 2 * (got & truth).sum() / (got.sum() + truth.sum())
    assert dice > 0.95
    np.testing.assert_allclose(np.argwhere(got).mean(0), np.argwhere(truth).mean(0), atol=0.35)


@pytest.mark.parametrize("plane_axes", ["IP", "SA", "PI"])
def test_2d_model_on_each_sagittal_plane(tmp_path, plane_axes):
    class Sign2d(torch.nn.Module):
        def forward(self, x):
            return torch.cat([-x, x], 1)

    path = save_torchscript(Sign2d(), tmp_path / "s2.ts",
                   sign_card(spatial_dims=2, axcodes=plane_axes, patch_size=[16, 16]))
    case = pattern_case("PIR", shape=(25, 31, 4))
    pred = predict(case, load_model(path, trust=True), "cpu")
    np.testing.assert_array_equal(pred.labels, np.where(np.asarray(case.image) > 0, 20, 0))


def test_current_slice_only(tmp_path):
    case = pattern_case("LPS")
    pred = predict(case, sign_model(tmp_path), "cpu", slice_index=7)
    full = np.where(np.asarray(case.image) > 0, 20, 0)
    np.testing.assert_array_equal(pred.labels[7], full[7])
    assert not pred.labels[:7].any() and not pred.labels[8:].any()
    assert pred.region == (7, 8)
    with pytest.raises(IndexError):
        predict(case, sign_model(tmp_path), "cpu", slice_index=99)


def test_progress_events_and_probabilities(tmp_path):
    case = pattern_case("RAS", shape=(40, 33, 20))
    gen = predict_iter(case, sign_model(tmp_path), "cpu", probabilities=True)
    events, pred = drain(gen)
    windows = [e for e in events if e.stage == "windows"]
    total = windows[-1].total
    # two windows a batch on the CPU: every second count, and the odd last one
    assert [e.done for e in windows] == [*range(2, total + 1, 2), *([total] if total % 2 else [])]
    assert pred.windows == {"windows": total, "run": total, "skipped": 0, "batch": 2, "precision": "fp32"}
    one = [e.done for e in drain(predict_iter(case, sign_model(tmp_path), "cpu", batch_size=1))[0]
           if e.stage == "windows"]
    assert one == list(range(1, total + 1))
    assert events[0].stage == "device" and "CPU" in events[0].message
    assert events[-1].stage == "done"
    assert pred.probabilities.shape == (2, *case.shape)
    np.testing.assert_allclose(pred.probabilities.astype(np.float32).sum(0), 1, atol=2e-3)
    assert pred.class_ids == (0, 20)
    assert {"windows_s", "total_s"} <= set(pred.timings)


def test_cancel(tmp_path):
    case = pattern_case("RAS", shape=(60, 60, 60))
    n = {"polls": 0}

    def cancel():
        n["polls"] += 1
        return n["polls"] > 2

    with pytest.raises(InferenceCancelled):
        predict(case, sign_model(tmp_path), "cpu", cancel=cancel)


# -- devices ---------------------------------------------------------------------------------
def test_device_resolution(monkeypatch):
    monkeypatch.delenv("NAPARI_SPINE_DEVICE", raising=False)
    devs = available_devices()
    assert devs[-1].name == "cpu" and "CPU" in devs[-1].label
    auto = resolve_device("auto")
    assert auto.type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("NAPARI_SPINE_DEVICE", "cpu")
    assert resolve_device("auto").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="not available here; available: cpu"):
            resolve_device("cuda")
        monkeypatch.setenv("NAPARI_SPINE_DEVICE", "cuda")
        with pytest.raises(RuntimeError, match="not available"):
            resolve_device("auto")
    with pytest.raises(RuntimeError, match="unknown device"):
        resolve_device("tpu-ish")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_matches_cpu():
    model = load_model("default")
    case = make_phantom((48, 96, 64), (2, 2, 2), levels=("T12", "S1"), seed=5)
    a = predict(case, model, "cpu")
    b = predict(case, model, "cuda")
    assert b.device.startswith("cuda")
    assert (a.labels == b.labels).mean() > 0.995


# -- bad input -------------------------------------------------------------------------------
def test_card_label_missing_from_the_anatomy_table(tmp_path):
    p = save_torchscript(Sign(), tmp_path / "m.ts", sign_card(labels={"0": "background", "1": "femur"}))
    with pytest.raises(ModelError, match=r"label 'femur' is not a structure of the anatomy table"):
        load_model(p, trust=True)


def test_card_problems_are_named(tmp_path):
    with pytest.raises(ModelError, match="expects 2 input channels"):
        load_model(save_torchscript(Sign(), tmp_path / "a.ts", sign_card(in_channels=2)), trust=True)
    with pytest.raises(ModelError, match="patch_size needs 3"):
        load_model(save_torchscript(Sign(), tmp_path / "b.ts", sign_card(patch_size=[16, 16])), trust=True)
    with pytest.raises(ModelError, match="normalization scheme 'magic'"):
        load_model(save_torchscript(Sign(), tmp_path / "c.ts", sign_card(normalization={"scheme": "magic"})), trust=True)
    with pytest.raises(ModelError, match="without a model card"):
        load_model(save_torchscript(Sign(), tmp_path / "d.ts", None), trust=True)
    (tmp_path / "e.json").write_text("{not json")
    save_torchscript(Sign(), tmp_path / "e.ts", None)
    with pytest.raises(ModelError, match=r"e\.json: model card is not valid JSON"):
        load_model(tmp_path / "e.ts", trust=True)


def test_network_with_the_wrong_channel_count(tmp_path):
    model = load_model(save_torchscript(TwoChannel(), tmp_path / "two.ts", sign_card()), trust=True)
    with pytest.raises(ModelError, match=r"two\.ts: sign failed on a window of shape \(2, 1, 16, 16, 16\)"):
        predict(pattern_case(), model, "cpu")


def test_output_channels_must_match_the_card(tmp_path):
    p = save_torchscript(Sign(), tmp_path / "m.ts",
                sign_card(labels={"0": "background", "1": "L1", "2": "L2"}))
    with pytest.raises(ModelError, match="produced 2 output channels but its card names 3"):
        predict(pattern_case(), load_model(p, trust=True), "cpu")


def test_corrupt_and_empty_files(tmp_path):
    good = save_torchscript(Sign(), tmp_path / "good.ts", sign_card())
    bad = tmp_path / "cut.ts"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ModelError, match=r"cut\.ts"):
        load_model(bad)
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(ModelError, match=r"empty\.pth: file is empty"):
        load_model(tmp_path / "empty.pth")
    rng = np.random.default_rng(0)
    for i in range(30):  # random bytes break the unpickler in many different ways
        noise = tmp_path / f"noise{i}.pth"
        noise.write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
        with pytest.raises(ModelError, match=rf"noise{i}\.pth"):
            load_model(noise)
    pk = tmp_path / "cut.pth"  # a real checkpoint cut short
    torch.save({"w": torch.zeros(1000)}, pk)
    pk.write_bytes(pk.read_bytes()[:700])
    with pytest.raises(ModelError, match=r"cut\.pth"):
        load_model(pk)
    with pytest.raises(ModelError, match="no such file"):
        load_model(tmp_path / "missing.pth")


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"weights": torch.zeros(3), "payload": FileOpeningPickle(str(marker))}, tmp_path / "evil.pth")
    with pytest.raises(ModelError, match=r"evil\.pth: refused to load.*nothing in the file was executed"):
        load_model(tmp_path / "evil.pth")
    assert not marker.exists()
    # the same with a plain pickle renamed .pth
    (tmp_path / "evil2.pth").write_bytes(pickle.dumps(FileOpeningPickle(str(marker))))
    with pytest.raises(ModelError):
        load_model(tmp_path / "evil2.pth")
    assert not marker.exists()


def test_state_dict_of_an_unknown_network(tmp_path):
    torch.save(torch.nn.Linear(3, 2).state_dict(), tmp_path / "lin.pth")
    with pytest.raises(ModelError, match=r"lin\.pth: a state dict of an unknown network"):
        load_model(tmp_path / "lin.pth")


def test_not_a_model_folder(tmp_path):
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ModelError, match="not a model folder"):
        load_model(tmp_path)


def test_spine_model_describe(tmp_path):
    m = sign_model(tmp_path)
    assert isinstance(m, SpineModel) and "L1" in m.describe() and m.backend == "torchscript"


def test_card_json_round_trip():
    card = ModelCard.from_dict(sign_card(spacing=[1, 2, 3]))
    again = ModelCard.from_json(card.to_json())
    assert again == card and again.label_ids == (0, 20)


def test_out_of_memory_on_the_gpu_reruns_on_the_cpu_with_a_message(tmp_path, monkeypatch):
    import importlib

    from napari_spine.inference import devices

    pmod = importlib.import_module("napari_spine.inference.predict")

    real = pmod._segment

    def segment(case, model, dev, *a):
        if dev.type == "cuda":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")
            yield  # a generator, like the real one
        return (yield from real(case, model, dev, *a))

    monkeypatch.setattr(pmod, "_segment", segment)
    monkeypatch.setattr(devices, "resolve_device", lambda d=None: torch.device("cuda", 0))
    monkeypatch.setattr(devices, "describe_device", lambda d: "a GPU")
    emptied = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    case = pattern_case()
    gen = predict_iter(case, sign_model(tmp_path), "cuda")
    events, pred = drain(gen)
    warn = [e for e in events if e.stage == "warning"]
    assert warn and "running on the CPU instead" in warn[0].message
    assert pred.device == "cpu" and any("out of memory" in m for m in pred.messages)
    assert emptied == [True]  # the GPU's cache is released before the CPU run
    np.testing.assert_array_equal(pred.labels, np.where(np.asarray(case.image) > 0, 20, 0))


def test_other_errors_on_a_gpu_are_raised_and_only_cuda_caches_are_emptied(tmp_path, monkeypatch):
    import importlib

    from napari_spine.inference import devices

    pmod = importlib.import_module("napari_spine.inference.predict")
    real = pmod._segment
    failure = {"error": ValueError("a shape the network cannot take")}

    def segment(case, model, dev, *a):
        if dev.type != "cpu":
            raise failure["error"]
            yield
        return (yield from real(case, model, dev, *a))

    emptied = []
    monkeypatch.setattr(pmod, "_segment", segment)
    monkeypatch.setattr(devices, "resolve_device", lambda d=None: torch.device("mps"))
    monkeypatch.setattr(devices, "describe_device", lambda d: "an Apple GPU")
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    with pytest.raises(ValueError, match="cannot take"):  # not hidden by a CPU rerun
        drain(predict_iter(pattern_case(), sign_model(tmp_path), "mps"))
    failure["error"] = torch.OutOfMemoryError("MPS backend out of memory")
    _, pred = drain(predict_iter(pattern_case(), sign_model(tmp_path), "mps"))
    assert pred.device == "cpu" and emptied == []  # no CUDA cache to release


def test_precision_is_checked_and_bf16_needs_the_instructions(tmp_path, monkeypatch):
    import importlib

    pr = importlib.import_module("napari_spine.inference.predict")  # the module, not the function

    case = pattern_case("RAS", shape=(20, 20, 20))
    with pytest.raises(ModelError, match="precision must be 'fp32', 'bf16' or 'fp16', not 'int8'"):
        predict(case, sign_model(tmp_path), "cpu", precision="int8")
    monkeypatch.setattr(pr, "cpu_has_bf16", lambda: False)
    with pytest.raises(ModelError, match="this CPU has no bfloat16 instructions"):
        predict(case, sign_model(tmp_path), "cpu", precision="bf16")


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="needs oneDNN")
def test_bf16_on_the_cpu_runs_in_bf16_and_keeps_the_labels():
    from napari_spine.inference.predict import cpu_has_bf16

    if not cpu_has_bf16():
        pytest.skip("this CPU has no bfloat16 instructions")
    case = make_phantom((60, 150, 90), (1.5, 1.5, 1.5), levels=("T11", "S1"), seed=4242)
    a = predict(case, "default", "cpu", probabilities=True)
    b = predict(case, "default", "cpu", probabilities=True, precision="bf16")
    assert (a.windows["precision"], a.windows["batch"]) == ("fp32", 2)
    assert (b.windows["precision"], b.windows["batch"]) == ("bf16", 1)
    assert not np.array_equal(a.probabilities, b.probabilities)  # it did run at another precision
    fg = (a.labels > 0) | (b.labels > 0)
    assert (a.labels[fg] == b.labels[fg]).mean() > 0.98


@pytest.mark.parametrize(("model_axes", "spacing", "grid"), [
    # file RAS at 0.8 x 0.8 x 3 mm, 60 x 70 x 16 voxels: 48 mm left-right, 56 mm antero-posterior,
    # 48 mm cranio-caudal; each model axis takes its own extent over its own voxel size
    ("PSL", (1.0, 2.0, 3.0), (56, 24, 16)),
    ("LIP", (3.0, 2.0, 1.0), (16, 24, 56)),
    ("SRA", (4.0, 0.8, 2.0), (12, 60, 28)),
    ("IPL", (2.0, 1.0, 3.0), (24, 56, 16)),  # a three-cycle of the display axes, not a swap
    ("PLS", (1.0, 3.0, 2.0), (56, 16, 24)),
])
def test_the_model_grid_takes_each_axis_spacing_in_the_models_own_order(tmp_path, monkeypatch, model_axes,
                                                                      spacing, grid):
    import importlib

    pr = importlib.import_module("napari_spine.inference.predict")
    seen = []
    real = pr.sliding_window

    def recording(x, *args, **kwargs):
        seen.append(tuple(x.shape[1:]))
        return real(x, *args, **kwargs)

    monkeypatch.setattr(pr, "sliding_window", recording)
    img = np.zeros((60, 70, 16), np.int16)
    img[10:30, 20:50, 4:12] = 100
    case = SpineCase.from_arrays(img, np.diag([0.8, 0.8, 3.0, 1.0]), modality="CT")
    pred = predict(case, sign_model(tmp_path, axcodes=model_axes, spacing=list(spacing)), "cpu")
    assert seen == [grid]
    assert pred.labels.shape == case.shape
