"""nnU-Net v1 folders (the CTSpine1K format), built here with nnunet 1.x's own network class."""

import contextlib
import io
import pickle

import numpy as np
import pytest

from helpers import FileOpeningPickle

torch = pytest.importorskip("torch")
with contextlib.redirect_stdout(io.StringIO()):
    v1 = pytest.importorskip("nnunet.network_architecture.generic_UNet")

from napari_spine import SpineCase, geometry  # noqa: E402
from napari_spine.inference import ModelError, load_model, predict  # noqa: E402

POOLS = [[2, 2, 2], [1, 2, 2]]          # anisotropic: the decoder kernels differ from v2's
KERNELS = [[3, 3, 3], [3, 3, 3], [1, 3, 3]]
INTENSITY = {"mean": 300.0, "sd": 350.0, "percentile_00_5": -800.0, "percentile_99_5": 1200.0}


def v1_net(n_classes, seed=0):
    import torch.nn as nn

    torch.manual_seed(seed)
    net = v1.Generic_UNet(1, 4, n_classes, len(POOLS), 2, 2, nn.Conv3d, nn.InstanceNorm3d,
                          {"eps": 1e-5, "affine": True}, nn.Dropout3d, {"p": 0, "inplace": True},
                          nn.LeakyReLU, {"negative_slope": 1e-2, "inplace": True}, True, False,
                          lambda x: x, v1.InitWeights_He(1e-2), POOLS, KERNELS, False, True, True)
    net.do_ds = False
    return net.eval()


def make_v1_folder(root, n_classes=26, spacing=(1.0, 1.0, 1.0), fold="all", transpose=(0, 1, 2)):
    root.mkdir(parents=True, exist_ok=True)
    plans = {
        "num_modalities": 1, "num_classes": n_classes - 1, "all_classes": list(range(1, n_classes)),
        "base_num_features": 4, "conv_per_stage": 2, "transpose_forward": list(transpose),
        "transpose_backward": list(np.argsort(transpose)),
        "normalization_schemes": {0: "CT"}, "use_mask_for_norm": {0: False},
        "dataset_properties": {"intensityproperties": {0: {k: np.float64(v) for k, v in INTENSITY.items()}}},
        "plans_per_stage": {0: {"batch_size": 2, "num_pool_per_axis": [1, 2, 2],
                                "patch_size": np.array([16, 32, 32]),
                                "current_spacing": np.array(spacing),
                                "pool_op_kernel_sizes": POOLS, "conv_kernel_sizes": KERNELS,
                                "do_dummy_2D_data_aug": False}},
    }
    (root / "plans.pkl").write_bytes(pickle.dumps(plans))
    net = v1_net(n_classes)
    (root / fold).mkdir(exist_ok=True)
    torch.save({"epoch": 1000, "state_dict": net.state_dict(), "optimizer_state_dict": None,
                "plot_stuff": ([np.float64(0.5)], [np.float64(0.4)], [], []),
                "best_stuff": (1, np.float64(0.4), np.float64(0.4), 1)},
               root / fold / "model_final_checkpoint.model")
    info = {"init": ("plans.pkl", fold, "out", "ds", False, 0, True, False, True),
            "name": "nnUNetTrainerV2", "class": "<class 'nnUNetTrainerV2'>", "plans": plans}
    (root / fold / "model_final_checkpoint.model.pkl").write_bytes(pickle.dumps(info))
    return root, net


def ct(shape=(40, 36, 30), seed=0):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    img = ndimage.gaussian_filter(rng.normal(0, 1, shape), 2.5)
    return (img / img.std() * 500 + 200).astype(np.int16)


def v1_reference(net, arr_zyx):
    x = np.clip(arr_zyx.astype(np.float32), -800, 1200)
    x = (x - 300) / 350
    seg, _ = net.predict_3D(x[None], do_mirroring=False, use_sliding_window=True, step_size=0.5,
                            patch_size=(16, 32, 32), use_gaussian=True, all_in_gpu=False,
                            verbose=False, mixed_precision=False)
    return seg


def test_ctspine1k_style_folder_runs_in_the_normalised_orientation(tmp_path):
    folder, net = make_v1_folder(tmp_path / "Task056_VerSe" / "nnUNetTrainerV2__nnUNetPlansv2.1")
    model = load_model(folder)
    assert model.backend == "nnunetv1" and model.card.axcodes == "SPL"
    assert model.card.label_ids == tuple(range(26))  # CTSpine1K ids 1-25 are C1-L6
    # one window (the RAS file's (S, P, L) array is exactly the patch): no blending, so the
    # labels must agree voxel for voxel, which checks the orientation and the weights
    img = ct((32, 32, 16))
    case = SpineCase.from_arrays(img, np.eye(4), modality="CT")  # an RAS file
    pred = predict(case, model, "cpu")
    # what v1 saw: the ITK-identity (L, P, S) array, reversed by SimpleITK to (S, P, L)
    spl = img.transpose(2, 1, 0)[:, ::-1, ::-1]
    ref = v1_reference(net, spl)
    ours = geometry.from_display(pred.labels, case.source.ornt).transpose(2, 1, 0)[:, ::-1, ::-1]
    assert len(np.unique(ref)) >= 3
    assert (ours == ref).mean() > 0.999
    # several windows: v1 blends softmax probabilities, napari-spine blends logits; with 26
    # near-tied random classes that flips some voxels, but most agree
    img = ct()
    case = SpineCase.from_arrays(img, np.eye(4), modality="CT")
    ours = geometry.from_display(predict(case, model, "cpu").labels, case.source.ornt)
    ref = v1_reference(net, img.transpose(2, 1, 0)[:, ::-1, ::-1])
    assert (ours.transpose(2, 1, 0)[:, ::-1, ::-1] == ref).mean() > 0.8


def test_generic_v1_folder_is_fed_as_nnunet_reads_the_file(tmp_path):
    folder, net = make_v1_folder(tmp_path / "Task999_X" / "nnUNetTrainerV2__nnUNetPlansv2.1",
                                 n_classes=3, fold="fold_0")
    (folder / "napari_spine_model.json").write_text('{"label_scheme": "cspineseg"}')
    model = load_model(folder)
    assert model.card.axcodes == "file-reversed" and model.card.label_ids == (0, 50, 100)
    img = ct((32, 32, 16), seed=1)  # one window again: exact agreement
    case = SpineCase.from_arrays(img, np.diag([-1.0, -1.0, 1.0, 1.0]), modality="CT")  # LPS
    pred = predict(case, model, "cpu")
    ref = v1_reference(net, img.transpose(2, 1, 0))
    ours = geometry.from_display(pred.labels, case.source.ornt).transpose(2, 1, 0)
    lut = np.array([0, 50, 100], np.uint8)
    assert len(np.unique(ref)) >= 2 and (ours == lut[ref]).mean() > 0.999


def test_v1_labels_must_be_named(tmp_path):
    folder, _ = make_v1_folder(tmp_path / "Task999_X" / "T", n_classes=3)
    with pytest.raises(ModelError, match="do not name their labels"):
        load_model(folder)


def test_a_plans_pickle_that_would_run_code_is_refused(tmp_path):
    folder, _ = make_v1_folder(tmp_path / "Task056_VerSe" / "T")
    marker = tmp_path / "pwned"
    (folder / "plans.pkl").write_bytes(pickle.dumps({"plans_per_stage": FileOpeningPickle(str(marker))}))
    with pytest.raises(ModelError, match=r"plans\.pkl: refused to load: the file needs io\.open"):
        load_model(folder)
    assert not marker.exists()


def test_corrupt_v1_pickles(tmp_path):
    folder, _ = make_v1_folder(tmp_path / "Task056_VerSe" / "T")
    good = (folder / "plans.pkl").read_bytes()
    rng = np.random.default_rng(1)
    for i in range(20):
        cut = good[: int(rng.integers(1, len(good)))] if i % 2 else rng.bytes(2000)
        (folder / "plans.pkl").write_bytes(cut)
        with pytest.raises(ModelError, match=r"plans\.pkl"):
            load_model(folder)


def test_v1_checkpoint_for_another_network(tmp_path):
    folder, _ = make_v1_folder(tmp_path / "Task056_VerSe" / "T")
    torch.save({"state_dict": torch.nn.Conv3d(1, 2, 3).state_dict()},
               folder / "all" / "model_final_checkpoint.model")
    with pytest.raises(ModelError, match="do not fit the network of plans.pkl"):
        load_model(folder)
