"""nnU-Net v2 trained-model folders, built here with real nnU-Net architecture classes."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nnunetv2")

from napari_spine import SpineCase, geometry  # noqa: E402
from napari_spine.inference import ModelError, load_model, predict  # noqa: E402
from napari_spine.inference.nnunet import canonical_from_label_name  # noqa: E402

ARCH = {
    "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
    "arch_kwargs": {
        "n_stages": 3, "features_per_stage": [4, 8, 16],
        "conv_op": "torch.nn.modules.conv.Conv3d",
        "kernel_sizes": [[3, 3, 3]] * 3, "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
        "n_conv_per_stage": [1, 1, 1], "n_conv_per_stage_decoder": [1, 1], "conv_bias": True,
        "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
        "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None,
        "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
        "nonlin_kwargs": {"inplace": True},
    },
    "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
}
LABELS = {"background": 0, "vertebral_body": 1, "disc": 2}


def make_folder(root, *, spacing=(1.0, 1.0, 1.0), folds=(0,), labels=LABELS, norm="CTNormalization",
                seed=0, arch=ARCH, weights_from=None):
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "CT"}, "labels": labels, "numTraining": 1, "file_ending": ".nii.gz"}))
    cfg = {
        "data_identifier": "nnUNetPlans_3d_fullres", "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 2, "patch_size": [32, 32, 32], "median_image_size_in_voxels": [40, 50, 45],
        "spacing": list(spacing), "normalization_schemes": [norm], "use_mask_for_norm": [False],
        "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None},
        "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None},
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0,
                                               "force_separate_z": None},
        "architecture": arch, "batch_dice": False,
    }
    plans = {
        "dataset_name": "Dataset999_Tiny", "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": list(spacing),
        "original_median_shape_after_transp": [40, 50, 45], "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
        "configurations": {"3d_fullres": cfg}, "experiment_planner_used": "ExperimentPlanner",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {"0": {
            "max": 1500.0, "mean": 300.0, "median": 250.0, "min": -1000.0,
            "percentile_00_5": -800.0, "percentile_99_5": 1200.0, "std": 350.0}},
    }
    (root / "plans.json").write_text(json.dumps(plans))
    torch.manual_seed(seed)
    for f in folds:
        net = get_network_from_plans(ARCH["network_class_name"], ARCH["arch_kwargs"],
                                     ARCH["_kw_requires_import"], 1, len(labels),
                                     deep_supervision=False)
        sd = weights_from.state_dict() if weights_from is not None else net.state_dict()
        (root / f"fold_{f}").mkdir(exist_ok=True)
        torch.save({"network_weights": sd, "trainer_name": "nnUNetTrainer",
                    "init_args": {"configuration": "3d_fullres"},
                    "inference_allowed_mirroring_axes": (0, 1, 2),
                    "current_epoch": 1, "_best_ema": np.float64(0.5)},  # a numpy scalar, as real ones have
                   root / f"fold_{f}" / "checkpoint_final.pth")
    return root


def ct_image(shape=(45, 50, 40), seed=0):
    rng = np.random.default_rng(seed)
    from scipy import ndimage

    img = ndimage.gaussian_filter(rng.normal(0, 1, shape), 3)
    return (img / img.std() * 500 + 200).astype(np.int16)


@pytest.mark.parametrize("affine_diag", [(1.0, 1.0, 1.0), (-1.0, -1.0, 1.0)])
def test_matches_nnunet_predictor_at_the_plan_spacing(tmp_path, affine_diag):
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    folder = make_folder(tmp_path / "Dataset999")
    img = ct_image()
    case = SpineCase.from_arrays(img, np.diag([*affine_diag, 1.0]), modality="CT")
    model = load_model(folder)
    assert model.backend == "nnunetv2" and model.card.label_ids == (0, 50, 100)
    # constant window weights: nnU-Net accumulates in fp16, where Gaussian-weighted logits
    # underflow to 0 near the volume's corners; with constant weights both are exact sums
    ours = predict(case, model, "cpu", probabilities=True, blend="constant")

    p = nnUNetPredictor(tile_step_size=0.5, use_gaussian=False, use_mirroring=False,
                        perform_everything_on_device=False, device=torch.device("cpu"),
                        verbose=False, verbose_preprocessing=False, allow_tqdm=False)
    p.initialize_from_trained_model_folder(str(folder), use_folds=(0,),
                                           checkpoint_name="checkpoint_final.pth")
    seg, probs = p.predict_single_npy_array(img.transpose(2, 1, 0)[None].astype(np.float32),
                                            {"spacing": [1.0, 1.0, 1.0]}, None, None, True)
    ref = np.array([0, 50, 100], np.uint8)[seg.transpose(2, 1, 0)]  # back to the file's (x, y, z)
    got = geometry.from_display(ours.labels, case.source.ornt)
    assert len(np.unique(ref)) >= 2  # the comparison is not trivially one class
    assert (got == ref).mean() > 0.999
    ours_p = np.stack([geometry.from_display(c, case.source.ornt) for c in ours.probabilities])
    ref_p = probs.transpose(0, 3, 2, 1)
    assert np.abs(ours_p.astype(np.float32) - ref_p).max() < 5e-3  # fp16 storage


def test_folds_are_averaged_and_one_fold_can_be_chosen(tmp_path):
    folder = make_folder(tmp_path / "m", folds=(0, 1))  # two folds with different weights
    both = load_model(folder)
    assert both.info["folds"] == ["fold_0", "fold_1"] and "2 folds" in both.name
    one = load_model(folder / "fold_1" / "checkpoint_final.pth")
    zero = load_model(folder / "fold_0" / "checkpoint_final.pth")
    assert one.info["folds"] == ["fold_1"]
    x = torch.randn(1, 1, 32, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b, mean = zero.network.eval()(x), one.network.eval()(x), both.network.eval()(x)
    assert (a - b).abs().max() > 1e-3  # the folds disagree, so the mean is a real test
    assert torch.allclose(mean, (a + b) / 2, atol=1e-5)  # nnU-Net's ensemble: the mean of the logits


def test_resampling_to_the_plan_spacing(tmp_path):
    folder = make_folder(tmp_path / "m", spacing=(2.0, 2.0, 2.0))
    case = SpineCase.from_arrays(ct_image((30, 40, 26)), np.diag([1.0, 1.0, 1.5, 1.0]), modality="CT")
    pred = predict(case, load_model(folder), "cpu")
    assert pred.labels.shape == case.shape
    assert set(np.unique(pred.labels)) <= {0, 50, 100}


def test_label_names_map_onto_the_anatomy_table():
    assert canonical_from_label_name("vertebrae_L1") == 20
    assert canonical_from_label_name("vertebrae_C2") == 2
    assert canonical_from_label_name("spinal_cord") == 60
    assert canonical_from_label_name("intervertebral_discs") == 100
    assert canonical_from_label_name("liver") is None
    assert canonical_from_label_name("liver", {"liver": "background"}) == 0


def test_unknown_label_needs_an_override(tmp_path):
    folder = make_folder(tmp_path / "m", labels={"background": 0, "liver": 1, "vertebrae_L1": 2})
    with pytest.raises(ModelError, match=r"label 'liver' \(1\) is not in the anatomy table"):
        load_model(folder)
    (folder / "napari_spine_labels.json").write_text(json.dumps({"liver": "background"}))
    assert load_model(folder).card.label_ids == (0, 0, 20)


def test_checkpoint_for_another_architecture(tmp_path):
    other = torch.nn.Sequential(torch.nn.Conv3d(1, 3, 3))
    folder = make_folder(tmp_path / "m", weights_from=other)
    with pytest.raises(ModelError, match="the weights do not fit the network of plans.json"):
        load_model(folder)


def test_plans_cannot_name_arbitrary_classes(tmp_path):
    arch = json.loads(json.dumps(ARCH))
    arch["network_class_name"] = "os.system"
    folder = make_folder(tmp_path / "m")
    plans = json.loads((folder / "plans.json").read_text())
    plans["configurations"]["3d_fullres"]["architecture"] = arch
    (folder / "plans.json").write_text(json.dumps(plans))
    with pytest.raises(ModelError, match="refuses to build 'os.system'"):
        load_model(folder)


def test_missing_pieces(tmp_path):
    folder = make_folder(tmp_path / "m")
    (folder / "fold_0" / "checkpoint_final.pth").unlink()
    with pytest.raises(ModelError, match="no fold_"):
        load_model(folder)
    (folder / "dataset.json").write_text("{broken")
    with pytest.raises(ModelError, match=r"dataset\.json: cannot read"):
        load_model(folder)


def test_v1_folder_without_nnunet_1_gets_a_clear_message(tmp_path, monkeypatch):
    import pickle
    import sys

    monkeypatch.setitem(sys.modules, "nnunet.network_architecture.generic_UNet", None)
    root = tmp_path / "nnUNetTrainerV2__nnUNetPlansv2.1"
    (root / "all").mkdir(parents=True)
    (root / "plans.pkl").write_bytes(pickle.dumps({"plans_per_stage": {0: {}}}))
    (root / "all" / "model_final_checkpoint.model").write_bytes(b"x")
    with pytest.raises(ModelError, match=r"nnU-Net v1 model.*pip install nnunet==1\.7\.1"):
        load_model(root)
