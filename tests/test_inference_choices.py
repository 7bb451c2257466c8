"""The prediction pipeline's decisions, each checked on its own: where the blended logits
live on each kind of device (GPU memory faked), which precision runs, normalisation against
its formulas, the region computed for one slice, spacing through axis reorders."""

from __future__ import annotations

import contextlib
import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import importlib  # noqa: E402

pr = importlib.import_module("napari_spine.inference.predict")  # the module (the package exports the function)
from napari_spine.inference.card import ModelError  # noqa: E402


def _dev(kind):
    return types.SimpleNamespace(type=kind)


@pytest.mark.parametrize("free,where", [(10 * 2**30, "cuda"), (2**30, "cpu")])
def test_gpu_accumulator_in_half_precision_on_the_card_while_it_fits(monkeypatch, free, where):
    """4 classes x 100 Mi voxels x 2 bytes = 800 MiB: under 40 % of 10 GiB free, over 40 % of 1 GiB."""
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, 80 * 2**30))
    cuda = _dev("cuda")
    dev, dtype = pr._accumulator(cuda, 4, 100 * 2**20)
    assert dtype == torch.float16
    assert (dev is cuda) if where == "cuda" else dev == torch.device("cpu")


def test_gpu_accumulator_at_exactly_forty_percent_goes_to_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (1000, 2000))
    dev, _ = pr._accumulator(_dev("cuda"), 1, 200)  # 400 bytes = 0.4 x 1000: not under
    assert dev == torch.device("cpu")
    dev, _ = pr._accumulator(_dev("cuda"), 1, 199)
    assert dev.type == "cuda"


def test_cpu_accumulator_float32_under_a_quarter_of_the_memory(monkeypatch):
    monkeypatch.setattr(pr, "_phys_memory", lambda: 4000)
    assert pr._accumulator(torch.device("cpu"), 1, 249) == (torch.device("cpu"), torch.float32)
    assert pr._accumulator(torch.device("cpu"), 1, 250) == (torch.device("cpu"), torch.float16)
    mps = _dev("mps")
    assert pr._accumulator(mps, 1, 10) == (mps, torch.float16)


def test_physical_memory_is_the_machines():
    import os

    assert pr._phys_memory() == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@pytest.mark.parametrize("asked,bf16_gpu,want", [(None, True, "bf16"), ("auto", True, "bf16"), ("bf16", True, "bf16"),
                                                 (None, False, "fp16"), ("fp16", True, "fp16"),
                                                 ("fp32", True, "fp32")])
def test_precision_on_a_gpu(monkeypatch, asked, bf16_gpu, want):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_gpu)
    card = types.SimpleNamespace(extra={})
    assert pr._precision(_dev("cuda"), card, asked) == want


def test_precision_from_the_card_and_on_the_cpu(monkeypatch):
    monkeypatch.setattr(pr, "cpu_has_bf16", lambda: True)
    cpu = torch.device("cpu")
    assert pr._precision(cpu, types.SimpleNamespace(extra={"precision": "bf16"}), None) == "bf16"
    assert pr._precision(cpu, types.SimpleNamespace(extra={"precision": "bf16"}), "fp32") == "fp32"
    assert pr._precision(cpu, types.SimpleNamespace(extra={}), "fp16") == "fp32"  # no fp16 on the CPU
    assert pr._precision(_dev("mps"), types.SimpleNamespace(extra={}), "bf16") == "fp32"
    with pytest.raises(ModelError, match="precision must be 'fp32', 'bf16' or 'fp16', not 'half'"):
        pr._precision(cpu, types.SimpleNamespace(extra={}), "half")


def test_autocast_only_where_it_runs():
    assert isinstance(pr._autocast(torch.device("cpu"), "fp32"), contextlib.nullcontext)
    assert isinstance(pr._autocast(_dev("mps"), "bf16"), contextlib.nullcontext)
    with pr._autocast(torch.device("cpu"), "bf16"):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16


def test_normalisation_formulas():
    x = torch.tensor([-2000.0, -100.0, 0.0, 400.0, 3000.0])
    assert torch.equal(pr._normalize(x.clone(), {"scheme": "none"}), x)
    ct = pr._normalize(x.clone(), {"scheme": "ct", "lower": -1000, "upper": 2000, "mean": 100.0, "std": 50.0})
    np.testing.assert_allclose(ct.numpy(), (np.clip(x.numpy(), -1000, 2000) - 100) / 50)
    win = pr._normalize(x.clone(), {"scheme": "window", "lower": -100, "upper": 400})
    np.testing.assert_allclose(win.numpy(), [0, 0, 0.2, 1, 1])
    flat = pr._normalize(torch.full((3,), 7.0), {"scheme": "window", "lower": 5, "upper": 5})
    assert torch.isfinite(flat).all()  # a zero-width window divides by a tiny number, not zero
    z = pr._normalize(x.clone(), {"scheme": "zscore"})
    np.testing.assert_allclose(z.numpy(), (x.numpy() - x.numpy().mean()) / x.numpy().std(ddof=1), rtol=1e-6)
    given = pr._normalize(x.clone(), {"scheme": "zscore", "mean": 10.0, "std": 2.0})
    np.testing.assert_allclose(given.numpy(), (x.numpy() - 10) / 2)
    half = pr._normalize(x.clone(), {"scheme": "zscore", "mean": 10.0})  # no std: the image's own
    np.testing.assert_allclose(half.numpy(), z.numpy(), rtol=1e-6)
    const = pr._normalize(torch.full((4,), 3.0), {"scheme": "zscore"})
    assert torch.equal(const, torch.zeros(4))  # std 0: no division by zero


def _case(shape=(40, 30, 20), spacing=(2.0, 1.0, 1.0)):
    return types.SimpleNamespace(shape=shape, spacing=spacing)


def _model(dims=3, patch=(16, 16, 16), spacing=None):
    return types.SimpleNamespace(card=types.SimpleNamespace(spatial_dims=dims, patch_size=patch, spacing=spacing))


def test_the_region_around_one_slice():
    case = _case()
    assert pr._region(case, _model(), None) == (0, 40, 0, 40)
    # a 16-voxel patch at the model's 1.5 mm is 24 mm: 12 display slices of 2 mm, 6 each side
    assert pr._region(case, _model(spacing=(1.5, 1.5, 1.5)), 20) == (14, 27, 20, 21)
    # without a model spacing the case's: the widest patch side is 16 x 2 mm = 32 mm, 8 slices each side
    assert pr._region(case, _model(spacing=None), 20) == (12, 29, 20, 21)
    assert pr._region(case, _model(), 0)[:2] == (0, 9) and pr._region(case, _model(), 39)[:2] == (31, 40)
    assert pr._region(case, _model(dims=2, patch=(16, 16)), 7) == (7, 8, 7, 8)
    with pytest.raises(IndexError, match=r"slice 40 is outside 0\.\.39"):
        pr._region(case, _model(), 40)
    with pytest.raises(IndexError, match=r"slice -1 is outside"):
        pr._region(case, _model(), -1)


def test_spacing_follows_the_axes_through_a_reorder():
    ornt = pr._transpose_ornt((2, 0, 1))  # np.transpose(a, (2, 0, 1)): new axes are old 2, 0, 1
    a = np.zeros((3, 4, 5))
    from nibabel.orientations import apply_orientation

    assert apply_orientation(a, ornt).shape == np.transpose(a, (2, 0, 1)).shape
    assert pr._spacing_through((1.0, 2.0, 3.0), ornt) == (3.0, 1.0, 2.0)


def test_physical_memory_falls_back_to_8_gib(monkeypatch):
    import os

    def broken(name):
        raise ValueError(name)

    monkeypatch.setattr(os, "sysconf", broken)
    assert pr._phys_memory() == 8 << 30


def test_no_bf16_where_the_check_itself_fails(monkeypatch):
    def broken():
        raise RuntimeError("no oneDNN")

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", broken)
    assert pr.cpu_has_bf16() is False


def _rule_case(modality, image):
    return types.SimpleNamespace(modality=modality)


def _card(ids=(0, 20), **extra):
    return types.SimpleNamespace(label_ids=ids, extra=extra)


def test_the_empty_window_rule_per_modality():
    mr = np.zeros((16, 16, 16), np.float32)
    mr[::4, ::4, ::4] = np.arange(64, dtype=np.float32).reshape(4, 4, 4)  # only the sampled voxels
    mr[1, 1, 1] = 1e6  # an outlier off the 4-voxel sample grid: not seen
    top = float(np.percentile(np.arange(64, dtype=np.float32), 99.5))
    assert pr._skip_rule(_rule_case("CT", None), _card(), None) == (-500.0, 1)
    assert pr._skip_rule(_rule_case("MR-T2", None), _card(), mr) == pytest.approx((0.05 * top, 4))
    plane = np.zeros((16, 16), np.float32)
    plane[::4, ::4] = np.arange(16, dtype=np.float32).reshape(4, 4)
    assert pr._skip_rule(_rule_case("MR-T1", None), _card(), plane) == pytest.approx(
        (0.05 * float(np.percentile(np.arange(16, dtype=np.float32), 99.5)), 4))
    assert pr._skip_rule(_rule_case("MR-T2", None), _card(), np.zeros((8, 8, 8))) is None  # all dark
    unit = np.full((8, 8, 8), 0.8, np.float32)  # an MR already scaled to [0, 1]
    assert pr._skip_rule(_rule_case("MR-T2", None), _card(), unit) == pytest.approx((0.04, 4))
    assert pr._skip_rule(_rule_case("XA", None), _card(), mr) is None
    assert pr._skip_rule(_rule_case("CT", None), _card(skip_empty=False), None) is None
    assert pr._skip_rule(_rule_case("CT", None), _card(ids=()), None) is None
    assert pr._skip_rule(_rule_case("CT", None), _card(ids=(20, 0)), None) is None  # no background channel first


def test_a_failing_network_is_named_with_its_last_error_line():
    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("first line\nshape mismatch in conv3")

    model = types.SimpleNamespace(module_on=lambda device: Broken(), source="m.pt",
                                  card=types.SimpleNamespace(name="Broken net"))
    run = pr._predictor(model, torch.device("cpu"))
    with pytest.raises(ModelError, match=r"m\.pt: Broken net failed on a window of shape \(1, 1, 4, 4, 4\) "
                                         r"\(shape mismatch in conv3\)$"):
        run(torch.zeros((1, 1, 4, 4, 4)))


def test_one_slice_deep_inside_a_volume_and_honest_timings(tmp_path):
    import time

    from helpers import sign_model_file
    from napari_spine import SpineCase
    from napari_spine.inference import load_model, predict

    rng = np.random.default_rng(5)
    img = (np.where(rng.random((60, 20, 18)) > 0.5, 1, -1) * rng.integers(1, 5, (60, 20, 18))).astype(np.int16)
    case = SpineCase.from_arrays(img, np.diag([-1.0, -1.0, 1.0, 1.0]), modality="CT")
    model = load_model(sign_model_file(tmp_path / "sign.ts"), trust=True)
    t0 = time.perf_counter()
    pred = predict(case, model, "cpu", slice_index=45)
    wall = time.perf_counter() - t0
    want = np.where(np.asarray(case.image) > 0, 20, 0)
    assert np.array_equal(pred.labels[45], want[45])
    assert not pred.labels[:45].any() and not pred.labels[46:].any()
    assert pred.probabilities is None  # not asked for
    for key in ("prepare_s", "windows_s", "finish_s", "total_s"):
        assert 0 <= pred.timings[key] <= wall, key
    assert pred.timings["prepare_s"] + pred.timings["windows_s"] + pred.timings["finish_s"] <= pred.timings["total_s"]


def test_progress_of_a_2d_model_counts_across_its_planes(tmp_path):
    from helpers import drain, save_torchscript, sign_card
    from napari_spine import SpineCase
    from napari_spine.inference import load_model, predict_iter

    class Sign2d(torch.nn.Module):
        def forward(self, x):
            return torch.cat([-x, x], 1)

    path = save_torchscript(Sign2d(), tmp_path / "s2.ts", sign_card(spatial_dims=2, axcodes="IP", patch_size=[16, 16]))
    img = np.ones((3, 20, 20), np.int16)
    case = SpineCase.from_arrays(img, np.eye(4), modality="CT")
    events, _ = drain(predict_iter(case, load_model(path, trust=True), "cpu", batch_size=1))
    done = [e.done for e in events if e.stage == "windows"]
    assert done == list(range(1, len(done) + 1)) and len(done) % 3 == 0  # every plane's windows, in one count
    assert [e.message for e in events if e.stage == "windows"] == [f"window {k} of {len(done)}" for k in done]
