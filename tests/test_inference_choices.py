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
