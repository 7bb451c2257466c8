"""Model files are code: plans cannot reach arbitrary callables, TorchScript needs trust.

Each attack here ran code or touched a file with the earlier loaders (a prefix check on
``network_class_name`` followed by ``pydoc.locate``; TorchScript tried before anything
else); now each is refused and leaves no trace.
"""

from __future__ import annotations

import json
import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nnunetv2")

from helpers import sign_model_file  # noqa: E402
from napari_spine.inference import ModelError, UntrustedModelError, load_model  # noqa: E402
from napari_spine.inference.trust import file_sha256, is_trusted  # noqa: E402
from test_inference_nnunet import ARCH, make_folder  # noqa: E402


def _with_arch(folder, **changes):
    arch = json.loads(json.dumps(ARCH))
    kwargs = changes.pop("arch_kwargs", {})
    arch.update(changes)
    arch["arch_kwargs"].update(kwargs)
    plans = json.loads((folder / "plans.json").read_text())
    plans["configurations"]["3d_fullres"]["architecture"] = arch
    (folder / "plans.json").write_text(json.dumps(plans))
    return folder


def test_plans_cannot_reach_torch_hub_load(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    marker = tmp_path / "hubconf-ran"
    (repo / "hubconf.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\ndependencies = []\n")
    folder = _with_arch(make_folder(tmp_path / "m"),
                        network_class_name="torch.nn.modules.module.torch.hub.load",
                        arch_kwargs={"repo_or_dir": str(repo), "model": "x", "source": "local",
                                     "trust_repo": True})
    with pytest.raises(ModelError, match=r"refuses to build 'torch\.nn\.modules\.module\.torch\.hub\.load'"):
        load_model(folder)
    assert not marker.exists()


def test_plans_cannot_truncate_a_file_through_logging(tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    folder = _with_arch(make_folder(tmp_path / "m"),
                        network_class_name="torch.nn.attention._registry.logging.basicConfig",
                        arch_kwargs={"filename": str(victim), "filemode": "w"})
    with pytest.raises(ModelError, match="refuses to build"):
        load_model(folder)
    assert victim.read_text() == "keep me"


@pytest.mark.parametrize("key, value", [
    ("nonlin", "torch.nn.modules.module.torch.os.system"),  # nonlin(**nonlin_kwargs) = a shell
    ("conv_op", "torch.nn.modules.conv.torch.hub.load"),
    ("norm_op", "torch.nn.InstanceNorm3d.__init__.__globals__"),
    ("dropout_op", "os.remove"),
])
def test_required_imports_are_looked_up_exactly(tmp_path, key, value):
    marker = tmp_path / "shell-ran"
    folder = _with_arch(make_folder(tmp_path / "m"),
                        arch_kwargs={key: value, "nonlin_kwargs": {"command": f"touch {marker}"}})
    with pytest.raises(ModelError, match=rf"refuses to build {value!r} \(building block\)"):
        load_model(folder)
    assert not marker.exists()


def test_short_and_long_torch_names_and_a_legitimate_folder_still_load(tmp_path):
    folder = _with_arch(make_folder(tmp_path / "m"),
                        arch_kwargs={"conv_op": "torch.nn.Conv3d",
                                     "nonlin": "torch.nn.modules.activation.LeakyReLU"})
    model = load_model(folder)
    mods = list(model.network.modules())
    assert any(isinstance(m, torch.nn.Conv3d) for m in mods)
    assert any(isinstance(m, torch.nn.InstanceNorm3d) for m in mods)
    assert any(isinstance(m, torch.nn.LeakyReLU) for m in mods)


def _marker_model(path, at_load, at_forward):
    """A scripted module whose ``__setstate__`` creates ``at_load`` and whose ``forward``
    creates ``at_forward`` (``torch.from_file(shared=True)`` creates missing files)."""

    class Marker(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = str(at_load)
            self.q = str(at_forward)
            self.n = 0

        @torch.jit.export
        def __getstate__(self):
            return (self.p, self.q, self.training)

        @torch.jit.export
        def __setstate__(self, state: tuple[str, str, bool]):
            self.p, self.q, self.training = state[0], state[1], state[2]
            self.n = int(torch.from_file(self.p, True, 8, dtype=torch.uint8).sum())

        def forward(self, x):
            t = torch.from_file(self.q, True, 8, dtype=torch.uint8)
            return torch.cat([-x, x], 1) + t.sum().float() * 0 + self.n

    card = {"name": "marker", "axcodes": "LIP", "spacing": None, "patch_size": [8, 8, 8],
            "normalization": {"scheme": "none"}, "labels": {"0": "background", "1": "L1"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(Marker()), str(path),
                       _extra_files={"model_card.json": json.dumps(card)})
    at_load.unlink(missing_ok=True)  # scripting itself does not run __setstate__, but be sure
    at_forward.unlink(missing_ok=True)
    return path


@pytest.mark.parametrize("name", ["marker.ts", "best_auc.pth"])
def test_torchscript_is_refused_without_trust(tmp_path, name):
    at_load, at_forward = tmp_path / "loaded", tmp_path / "predicted"
    path = _marker_model(tmp_path / name, at_load, at_forward)
    with pytest.raises(UntrustedModelError, match="is program code") as info:
        load_model(path)
    assert not at_load.exists() and not at_forward.exists()
    assert info.value.sha256 == file_sha256(path) and info.value.path == str(path)
    if name.endswith(".pth"):  # never silently taken for a weights file either
        assert "named like a weights file (.pth)" in str(info.value)


def test_trust_is_remembered_per_file_content(tmp_path):
    from napari_spine import SpineCase, predict

    at_load, at_forward = tmp_path / "loaded", tmp_path / "predicted"
    path = _marker_model(tmp_path / "marker.ts", at_load, at_forward)
    model = load_model(path, trust=True)  # the user said yes: it runs
    assert at_load.exists() and is_trusted(file_sha256(path))
    case = SpineCase.from_arrays(torch.randn(8, 8, 8).numpy(), torch.eye(4).numpy())
    predict(case, model, "cpu")
    assert at_forward.exists()
    load_model(path)  # remembered: no second question
    other = sign_model_file(tmp_path / "other.ts")  # another file content asks again
    with pytest.raises(UntrustedModelError):
        load_model(other)
    data = bytearray(path.read_bytes())  # a changed file is a different program
    path.write_bytes(bytes(data) + b"\0")
    with pytest.raises(UntrustedModelError):
        load_model(path)


def test_the_bundled_model_needs_no_question():
    assert load_model("default").backend == "torchscript"


def test_batch_refuses_an_untrusted_torchscript_before_starting(tmp_path):
    from napari_spine import batch
    from napari_spine.testing import trees as syn

    root = syn.write_ctspine1k(tmp_path / "data")
    at_load, at_forward = tmp_path / "loaded", tmp_path / "predicted"
    model = _marker_model(tmp_path / "marker.ts", at_load, at_forward)
    with pytest.raises(batch.BatchError, match="--trust-model"):
        batch.run("predict", root, tmp_path / "out", workers=0, model=str(model), device="cpu",
                  progress=lambda m: None)
    assert not at_load.exists() and not (tmp_path / "out").exists()
