"""The MMCSD outcome classifier: MONAI ``DenseNet121`` (3-D, 1 channel, 2 classes).

The dataset's evaluation preprocessing is reproduced exactly, quirk included: the
foreground crop (voxels >= 10) runs *before* the channel axis exists, so MONAI treats
array axis 0 as the channel and crops only axes 1 and 2; then a channel axis is added
and the volume is resized to 320 x 320 x 32 with ``area`` interpolation (adaptive
average pooling). There is no intensity normalisation. The array is the file's own
voxel order as MONAI's ``LoadImage`` returns it, in float32. Output: softmax of the two
logits; class 1 is residual neck pain one year after surgery (post-operative VAS > 0).

The crop and resize are written here in a few lines of torch so that preprocessing does
not need MONAI's transform stack; a test checks them against MONAI's own transforms.
"""

from __future__ import annotations

import time

import numpy as np

from .. import geometry
from .card import ModelCard, ModelError
from .types import Prediction, ProgressEvent, SpineModel

__all__ = ["CLASSES", "looks_like_densenet", "load_mmcsd", "mmcsd_preprocess", "classify_iter"]

INPUT_SIZE = (320, 320, 32)
FOREGROUND_THRESHOLD = 10.0
CLASSES = ("no residual neck pain at 1 year", "residual neck pain at 1 year (VAS > 0)")


def looks_like_densenet(state: dict) -> bool:
    """Whether a state dict has the keys of MONAI's ``DenseNet121``."""
    return any(str(k).startswith("features.conv0") for k in state) and any(
        str(k).startswith("class_layers.out") for k in state
    )


def mmcsd_preprocess(volume: np.ndarray):
    """(D0, D1, D2) file-ordered array -> (1, 1, 320, 320, 32) float32 tensor."""
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(np.asarray(volume, dtype=np.float32))
    fg = x >= FOREGROUND_THRESHOLD
    if not bool(fg.any()):
        raise ValueError(
            f"no voxel is >= {FOREGROUND_THRESHOLD:g}: the MMCSD classifier's foreground crop "
            "would be empty (is the image already normalised?)"
        )
    # axis 0 plays MONAI's "channel": only axes 1 and 2 are cropped (the dataset's quirk)
    any0 = fg.any(dim=0)
    rows = torch.nonzero(any0.any(dim=1)).flatten()
    cols = torch.nonzero(any0.any(dim=0)).flatten()
    x = x[:, int(rows[0]) : int(rows[-1]) + 1, int(cols[0]) : int(cols[-1]) + 1]
    return F.interpolate(x[None, None], size=INPUT_SIZE, mode="area")


def load_mmcsd(state: dict, path) -> SpineModel:
    """The MMCSD outcome classifier from a DenseNet121 state dict (needs MONAI)."""

    try:
        from monai.networks.nets import DenseNet121
    except ImportError:
        raise ModelError(
            f"{path}: the MMCSD classifier is MONAI's DenseNet121: pip install monai"
        ) from None
    net = DenseNet121(spatial_dims=3, in_channels=1, out_channels=2)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ModelError(
            f"{path}: does not fit DenseNet121(spatial_dims=3, in_channels=1, out_channels=2): "
            f"{' '.join(s.strip() for s in first[:3])}"
        ) from None
    card = ModelCard(
        name=f"MMCSD DenseNet121 ({path.name})",
        task="classification",
        axcodes="file",
        classes=CLASSES,
        normalization={"scheme": "none"},
        description="Probability of residual neck pain one year after surgery (MMCSD).",
        modalities=("CT", "MR-T1", "MR-T2", "MR"),
    )
    return SpineModel(card, net, str(path), "mmcsd-densenet")


def classify_iter(case, model, device):
    """Generator for :func:`predict_iter`: preprocess, one forward, softmax."""
    import torch


    t = time.perf_counter()
    yield ProgressEvent("prepare", 0, 2, "cropping and resizing to 320x320x32")
    vol = geometry.from_display(case.image, case.source.ornt)
    try:
        x = mmcsd_preprocess(vol)
    except ValueError as exc:
        raise ModelError(f"{case.source.path or case.case_id}: {exc}") from None
    prep = time.perf_counter() - t
    yield ProgressEvent("windows", 1, 2, "running DenseNet121")
    t = time.perf_counter()
    net = model.module_on(device)
    with torch.inference_mode():
        logits = net(x.to(device)).float()
    p = torch.softmax(logits, 1)[0].cpu().numpy()
    pred = Prediction(model.name, str(device))
    pred.scores = {name: float(v) for name, v in zip(model.card.classes, p, strict=True)}
    outcome = case.metadata.get("outcome")
    if outcome is not None:
        pred.recorded = {
            "outcome": int(outcome),
            "outcome_name": model.card.classes[int(outcome)],
            "vas_post_1y": case.metadata.get("vas_post_1y"),
        }
    pred.timings.update(prepare_s=prep, forward_s=time.perf_counter() - t)
    yield ProgressEvent("done", 2, 2, "done")
    return pred
