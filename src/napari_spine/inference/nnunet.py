"""nnU-Net trained-model folders: v2 runs through napari-spine's own pipeline.

**v2** (``plans.json``, ``dataset.json``, ``fold_*/checkpoint_final.pth``; the CSpineSeg
model and TotalSegmentator/TotalSpineSeg weights): nnunetv2's ``PlansManager`` resolves
the configuration (inheritance and old plans formats included) and its network builder
makes the architecture; the weights come from ``network_weights`` read with
``torch.load(weights_only=True)`` and a numpy allow-list, so a checkpoint cannot run
code. The case is fed as nnU-Net sees a file: the file's own voxel order reversed to
(z, y, x), then ``transpose_forward``; the plan's normalisation (CT, z-score, none) and
spacing; sliding window with Gaussian blending at the plan's patch size; folds are
averaged. Differences from ``nnUNetPredictor``: linear instead of third-order spline
resampling, no test-time mirroring, logits kept in fp32 on the CPU; on a case already at
the plan's spacing the labels agree (a test compares them).

Output labels are named in ``dataset.json``; names map onto the anatomy table
(``vertebrae_L1`` -> L1, ``spinal_cord`` -> spinal cord, ...). A folder may carry
``napari_spine_labels.json`` (``{"native name": "anatomy name" or "background"}``) for
names that do not map by themselves.

**v1** (``plans.pkl``, ``*/model_final_checkpoint.model`` + ``.model.pkl``; the
CTSpine1K model) is recognised but not run: its ``.pkl`` files are plain pickles whose
loading can execute code, and nnunet 1.x loads them that way.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .. import ontology
from .card import ModelCard, ModelError

__all__ = ["folder_kind", "load_v1", "load_v2", "canonical_from_label_name"]

_ALLOWED_IMPORT_PREFIXES = ("dynamic_network_architectures.", "torch.nn.")


def folder_kind(path: Path) -> str | None:
    path = Path(path)
    if (path / "plans.json").is_file() and (path / "dataset.json").is_file():
        return "v2"
    if (path / "plans.pkl").is_file() and any(path.glob("*/model_final_checkpoint.model")):
        return "v1"
    return None


def canonical_from_label_name(name: str, overrides: dict | None = None) -> int | None:
    """Anatomy id for an nnU-Net label name, or None when it does not map."""
    if overrides and name in overrides:
        target = str(overrides[name])
        return 0 if target.lower() == "background" else ontology.by_name(target).id
    if name.lower() in ("background", "bg"):
        return 0
    cand = [name, name.replace("_", " ")]
    low = name.lower().replace("-", "_")
    m = re.fullmatch(r"(?:vertebrae|vertebra|vert)_?([ctls]\d{1,2})", low)
    if m:
        cand.append(m.group(1).upper())
    m = re.fullmatch(r"(?:disc|ivd|intervertebral_disc)_?([ctls]\d{1,2})_?([ctls]\d{1,2})", low)
    if m:
        cand.append(f"{m.group(1).upper()}/{m.group(2).upper()} disc")
    if low.endswith("s"):
        cand.append(low[:-1].replace("_", " "))
    for c in cand:
        try:
            return ontology.by_name(c).id
        except KeyError:
            continue
    return None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ModelError(f"{path}: cannot read ({e})") from None


def _check_importable(name: str | None, folder: Path) -> None:
    if name is not None and not str(name).startswith(_ALLOWED_IMPORT_PREFIXES):
        raise ModelError(
            f"{folder}/plans.json: refuses to build {name!r}: only classes from "
            "dynamic_network_architectures and torch.nn are allowed in a plan"
        )


def _build_network(folder: Path, cfg, n_in: int, n_out: int):
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    cls = cfg.network_arch_class_name
    _check_importable(cls, folder)
    kwargs = cfg.network_arch_init_kwargs
    for key in cfg.network_arch_init_kwargs_req_import:
        _check_importable(kwargs.get(key), folder)
    try:
        return get_network_from_plans(cls, kwargs, cfg.network_arch_init_kwargs_req_import,
                                      n_in, n_out, allow_init=False, deep_supervision=False)
    except Exception as exc:  # noqa: BLE001 - plans can fail in many ways
        raise ModelError(f"{folder}/plans.json: cannot build the network {cls} ({exc})") from None


def _ensemble(nets):
    import torch

    class FoldEnsemble(torch.nn.Module):
        """Mean of the folds' logits (what nnU-Net does with several folds)."""

        def __init__(self, members):
            super().__init__()
            self.members = torch.nn.ModuleList(members)

        def forward(self, x):
            out = self.members[0](x)
            for m in self.members[1:]:
                out = out + m(x)
            return out / len(self.members)

    return nets[0] if len(nets) == 1 else FoldEnsemble(nets)


def _normalization(folder: Path, plans, cfg) -> dict:
    scheme = cfg.normalization_schemes[0]
    if scheme == "CTNormalization":
        props = plans.foreground_intensity_properties_per_channel.get("0")
        if not props:
            raise ModelError(f"{folder}/plans.json: CTNormalization without intensity properties")
        return {"scheme": "ct", "lower": props["percentile_00_5"], "upper": props["percentile_99_5"],
                "mean": props["mean"], "std": props["std"]}
    if scheme == "ZScoreNormalization":
        return {"scheme": "zscore"}
    if scheme == "NoNormalization":
        return {"scheme": "none"}
    raise ModelError(f"{folder}/plans.json: normalisation {scheme} is not supported")


def load_v2(folder: Path, folds=None, checkpoint: str = "checkpoint_final.pth"):
    """Load an nnU-Net v2 trained-model folder (all ``fold_*`` unless ``folds`` says)."""
    from ..datasets._pt import safe_torch_load
    from ..errors import SpineIOError
    from .model import SpineModel

    folder = Path(folder)
    try:
        from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
    except ImportError:
        raise ModelError(
            f"{folder}: nnU-Net v2 folders need the nnunetv2 package "
            "(pip install 'napari-spine[nnunet]')"
        ) from None
    dataset = _read_json(folder / "dataset.json")
    plans_dict = _read_json(folder / "plans.json")
    if folds is None:
        fold_dirs = sorted(p for p in folder.glob("fold_*") if (p / checkpoint).is_file())
    else:
        fold_dirs = [folder / (f if str(f).startswith("fold_") else f"fold_{f}") for f in folds]
    if not fold_dirs:
        raise ModelError(f"{folder}: no fold_*/{checkpoint} in this nnU-Net folder")
    labels = dataset.get("labels")
    if not isinstance(labels, dict) or not labels:
        raise ModelError(f"{folder}/dataset.json: no 'labels'")
    if any(isinstance(v, (list, tuple)) for v in labels.values()):
        raise ModelError(f"{folder}/dataset.json: region-based labels are not supported")
    n_in = len(dataset.get("channel_names", dataset.get("modality", {"0": "?"})))
    if n_in != 1:
        raise ModelError(f"{folder}: the model takes {n_in} input channels; cases have one image")
    override_path = folder / "napari_spine_labels.json"
    overrides = _read_json(override_path) if override_path.is_file() else None
    by_index = {int(v): k for k, v in labels.items()}
    if sorted(by_index) != list(range(len(by_index))):
        raise ModelError(f"{folder}/dataset.json: label values must be 0..K-1")
    names = {}
    for i, name in sorted(by_index.items()):
        try:
            cid = canonical_from_label_name(name, overrides)
        except KeyError as e:
            raise ModelError(f"{override_path}: {e}") from None
        if cid is None:
            raise ModelError(
                f"{folder}/dataset.json: label {name!r} ({i}) is not in the anatomy table; "
                f"name it in {override_path.name} as an anatomy name or 'background'"
            )
        names[i] = "background" if cid == 0 else ontology.name_of(cid)

    plans = PlansManager(plans_dict)
    states = []
    config = None
    for fd in fold_dirs:
        ck = fd / checkpoint
        if not ck.is_file():
            raise ModelError(f"{ck}: missing")
        try:
            obj = safe_torch_load(str(ck), what="an nnU-Net checkpoint")
        except SpineIOError as exc:
            raise ModelError(str(exc)) from None
        if not isinstance(obj, dict) or "network_weights" not in obj:
            raise ModelError(f"{ck}: not an nnU-Net v2 checkpoint (no 'network_weights')")
        cfg_name = (obj.get("init_args") or {}).get("configuration")
        if config is None:
            config = cfg_name
        elif cfg_name != config:
            raise ModelError(f"{ck}: configuration {cfg_name} differs from the other folds ({config})")
        states.append((ck, obj["network_weights"]))
    if config is None:
        config = "3d_fullres" if "3d_fullres" in plans.available_configurations else None
    if config not in plans.available_configurations:
        raise ModelError(f"{folder}/plans.json: no configuration {config!r}")
    cfg = plans.get_configuration(config)
    if len(cfg.patch_size) != 3:
        raise ModelError(
            f"{folder}: configuration {config} is 2-D; napari-spine runs 3-D nnU-Net configurations"
        )
    nets = []
    for ck, state in states:
        net = _build_network(folder, cfg, n_in, len(by_index))
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            msg = " ".join(s.strip() for s in str(exc).strip().splitlines()[:3])
            raise ModelError(f"{ck}: the weights do not fit the network of plans.json ({msg})") from None
        nets.append(net)
    card = ModelCard(
        name=f"{dataset.get('name') or plans.dataset_name} {config} (nnU-Net v2, "
        f"{len(nets)} fold{'s' if len(nets) > 1 else ''})",
        axcodes="file-reversed",
        spacing=tuple(float(s) for s in cfg.spacing),
        patch_size=tuple(int(p) for p in cfg.patch_size),
        normalization=_normalization(folder, plans, cfg),
        labels=names,
        extra={"transpose": list(plans.transpose_forward), "configuration": config},
        description=f"nnU-Net v2 model from {folder}",
    )
    card.validate(str(folder))
    return SpineModel(card, _ensemble(nets), str(folder), "nnunetv2",
                      info={"folds": [p.name for p in fold_dirs], "configuration": config})


def load_v1(folder: Path):
    raise ModelError(
        f"{folder}: an nnU-Net v1 model (such as CTSpine1K's). napari-spine does not run v1 "
        "folders: their plans.pkl and .model.pkl are plain pickles that execute code when "
        "loaded. Run it with nnunet 1.7.1 in its own environment (pip install nnunet==1.7.1; "
        "nnUNet_predict -i IN -o OUT -t 056 -m 3d_fullres -f all), then open the predicted "
        "NIfTI with napari-spine (label scheme ctspine1k)."
    )
