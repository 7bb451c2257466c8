"""The MMCSD outcome classifier: preprocessing checked against MONAI's own transforms."""

import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
monai = pytest.importorskip("monai")

from napari_spine import SpineCase  # noqa: E402
from napari_spine.inference import ModelError, load_model, predict  # noqa: E402
from napari_spine.inference.classifier import CLASSES, mmcsd_preprocess  # noqa: E402


def monai_reference(vol):
    from monai.transforms import Compose, CropForeground, EnsureChannelFirst, Resize

    t = Compose([CropForeground(select_fn=lambda x: x >= 10),
                 EnsureChannelFirst(channel_dim="no_channel"), Resize((320, 320, 32))])
    return t(vol.astype(np.float32)).as_tensor()[None]


@pytest.mark.parametrize("shape,box", [
    ((40, 30, 12), (slice(10, 20), slice(5, 15), slice(3, 9))),
    ((64, 48, 20), (slice(0, 64), slice(7, 40), slice(1, 19))),
    ((33, 17, 9), (slice(30, 33), slice(2, 3), slice(0, 9))),
])
def test_preprocessing_equals_monai(shape, box):
    rng = np.random.default_rng(0)
    vol = rng.uniform(0, 9, shape).astype(np.float32)  # below the threshold
    vol[box] = rng.uniform(10, 500, vol[box].shape)
    ours = mmcsd_preprocess(vol)
    ref = monai_reference(vol)
    assert ours.shape == ref.shape == (1, 1, 320, 320, 32)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-3)


def test_the_dataset_quirk_axis_0_is_never_cropped():
    vol = np.zeros((40, 30, 12), np.float32)
    vol[10:20, 5:15, 3:9] = 100
    x = mmcsd_preprocess(vol)
    # axis 0 kept whole: the rows that were background (0-9, 20-39) stay zero-valued rows
    assert float(x[0, 0, :60].abs().max()) == 0 and float(x[0, 0, 100:140].min()) == 100


def test_empty_foreground_is_a_clear_error(tmp_path):
    case = SpineCase.from_arrays(np.zeros((8, 9, 10), np.int16), np.eye(4), modality="MR-T2")
    state = _densenet().state_dict()
    torch.save(state, tmp_path / "best_auc.pth")
    with pytest.raises(ModelError, match=r"no voxel is >= 10"):
        predict(case, load_model(tmp_path / "best_auc.pth"), "cpu")


def _densenet(out_channels=2):
    from monai.networks.nets import DenseNet121

    torch.manual_seed(0)
    return DenseNet121(spatial_dims=3, in_channels=1, out_channels=out_channels)


def test_classifier_end_to_end_with_the_recorded_outcome(tmp_path):
    net = _densenet().eval()
    torch.save(net.state_dict(), tmp_path / "best_auc.pth")
    model = load_model(tmp_path / "best_auc.pth")
    assert model.backend == "mmcsd-densenet" and model.card.task == "classification"
    rng = np.random.default_rng(1)
    vol = rng.integers(0, 400, (48, 40, 12)).astype(np.int16)
    case = SpineCase.from_arrays(vol, np.diag([0.5, 0.5, 3.0, 1.0]), modality="MR-T2",
                                 metadata={"outcome": 1, "vas_post_1y": 2.0})
    t0 = time.perf_counter()
    pred = predict(case, model, "cpu")
    assert 0 < pred.timings["total_s"] <= time.perf_counter() - t0  # the call's own duration
    assert list(pred.scores) == list(CLASSES)
    assert sum(pred.scores.values()) == pytest.approx(1.0, abs=1e-6)
    with torch.inference_mode():
        ref = torch.softmax(net(monai_reference(vol)), 1)[0, 1].item()
    assert pred.scores[CLASSES[1]] == pytest.approx(ref, abs=1e-4)
    assert pred.recorded["outcome"] == 1 and pred.recorded["vas_post_1y"] == 2.0
    assert pred.labels is None
    with pytest.raises(ValueError, match="classifier"):
        pred.apply_to(case)


def test_a_densenet_with_other_outputs_is_refused(tmp_path):
    torch.save(_densenet(out_channels=3).state_dict(), tmp_path / "other.pth")
    with pytest.raises(ModelError, match=r"other\.pth: does not fit DenseNet121"):
        load_model(tmp_path / "other.pth")
