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

**v1** (``plans.pkl``, ``<fold>/model_final_checkpoint.model`` + ``.model.pkl``; the
CTSpine1K model) runs through the same pipeline with the network class of ``nnunet`` 1.x
(``Generic_UNet`` built as ``nnUNetTrainerV2`` builds it; ``pip install nnunet==1.7.1``).
nnunet 1.x itself is never asked to load anything: its ``.pkl`` files are plain pickles, so
napari-spine reads them with a restricted unpickler that admits only numpy arrays,
scalars, dtypes and ordered dicts (anything else is refused before it runs), and the
``.model`` checkpoint with ``torch.load(weights_only=True)``. The case is fed in the voxel
order nnU-Net v1 saw: the file's own order reversed, or, for CTSpine1K's
``Task056_VerSe`` (trained on volumes whose orientation nnU-Net had normalised to an
identity ITK direction), (S, P, L); ``napari_spine_model.json`` in the folder can set
``axcodes`` and ``label_scheme`` for other v1 models. Differences from v1's own
inference: v1 normalises after resampling and blends softmax probabilities (napari-spine
blends logits); a test compares the two on a tiny v1 network.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..anatomy import ontology
from .card import ModelCard, ModelError
from .types import SpineModel

__all__ = ["allowed_class", "folder_kind", "load_v1", "load_v2", "canonical_from_label_name"]

# Every class a plan may name, by its fully qualified name (nnU-Net writes the long form,
# ``torch.nn.modules.conv.Conv3d``; older plans the short one, ``torch.nn.Conv3d``). Names are
# looked up exactly in this table and resolved by importing the module and taking one
# attribute: nothing in a plan is ever walked attribute by attribute (``pydoc.locate``), so a
# plan cannot reach ``torch.hub.load``, ``logging.basicConfig`` or any other callable.
_DNA = "dynamic_network_architectures.architectures"
_ALLOWED_NETWORKS = tuple(
    [f"{_DNA}.unet.{n}" for n in ("PlainConvUNet", "ResidualEncoderUNet", "ResidualUNet")]
    + [f"{_DNA}.primus.{n}" for n in (
        "Primus", "PrimusX", "PrimusS", "PrimusB", "PrimusM", "PrimusL",
        "PrimusV2", "PrimusV2X", "PrimusV2S", "PrimusV2B", "PrimusV2M", "PrimusV2L",
        "PrimusV3", "PrimusV3X", "PrimusV3S", "PrimusV3B", "PrimusV3M", "PrimusV3L")]
)
_TORCH_NN_OPS = {
    "conv": ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"),
    "instancenorm": ("InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"),
    "batchnorm": ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d"),
    "normalization": ("GroupNorm", "LayerNorm"),
    "dropout": ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d"),
    "activation": ("LeakyReLU", "ReLU", "PReLU", "ELU", "GELU", "SiLU", "Sigmoid", "Tanh"),
    "linear": ("Identity",),
}
_ALLOWED_OPS = {
    **{f"torch.nn.modules.{mod}.{n}": (f"torch.nn.modules.{mod}", n)
       for mod, names in _TORCH_NN_OPS.items() for n in names},
    **{f"torch.nn.{n}": (f"torch.nn.modules.{mod}", n)
       for mod, names in _TORCH_NN_OPS.items() for n in names},
}
_ALLOWED_CLASSES = {**{n: tuple(n.rsplit(".", 1)) for n in _ALLOWED_NETWORKS}, **_ALLOWED_OPS}



def folder_kind(path: Path) -> str | None:
    """``"v2"`` or ``"v1"`` for an nnU-Net trained-model folder, else None."""
    path = Path(path)
    if (path / "plans.json").is_file() and (path / "dataset.json").is_file():
        return "v2"
    if (path / "plans.pkl").is_file() and any(path.glob("*/model_final_checkpoint.model")):
        return "v1"
    return None


def canonical_from_label_name(name: str, overrides: dict | None = None) -> int | None:
    """Anatomy id for an nnU-Net label name, or None when it does not map.

    ``overrides`` (``napari_spine_labels.json``) come first; then the names real tools use
    (:func:`napari_spine.anatomy.labelnames.match_anatomy`).
    """
    if overrides and name in overrides:
        target = str(overrides[name])
        return 0 if target.lower() == "background" else ontology.by_name(target).id
    from ..anatomy.labelnames import match_anatomy

    return match_anatomy(name)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ModelError(f"{path}: cannot read ({e})") from None


def allowed_class(name, folder: Path, *, networks: bool = False):
    """The class a plan names, looked up exactly in the allow-list, or a ModelError.

    ``networks`` selects the architecture table (``network_class_name``); otherwise the
    ``torch.nn`` building blocks (``_kw_requires_import`` entries such as ``conv_op``).
    """
    import importlib

    table = dict.fromkeys(_ALLOWED_NETWORKS) if networks else _ALLOWED_OPS
    if not isinstance(name, str) or name not in table:
        what = "network class" if networks else "building block"
        raise ModelError(
            f"{folder}/plans.json: refuses to build {name!r} ({what}): a plan may name only "
            "the nnU-Net architectures of dynamic_network_architectures and the torch.nn "
            "conv/norm/dropout/activation classes (nothing was imported or run)")
    module, attr = _ALLOWED_CLASSES[name]
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        raise ModelError(f"{folder}/plans.json: {name} is not in the installed "
                         f"{module.split('.')[0]} (update it)") from None
    if not isinstance(cls, type):  # pragma: no cover - the table names classes only
        raise ModelError(f"{folder}/plans.json: {name} is not a class")
    return cls


def _build_network(folder: Path, cfg, n_in: int, n_out: int):
    """The plan's network, built as nnunetv2's ``get_network_from_plans`` builds it but with
    every class resolved through :func:`allowed_class` (never ``pydoc.locate``)."""
    name = cfg.network_arch_class_name
    cls = allowed_class(name, folder, networks=True)
    kwargs = dict(cfg.network_arch_init_kwargs)
    for key in cfg.network_arch_init_kwargs_req_import:
        if kwargs.get(key) is not None:
            kwargs[key] = allowed_class(kwargs[key], folder)
    kwargs["deep_supervision"] = False
    try:
        return cls(input_channels=n_in, num_classes=n_out, **kwargs)
    except Exception as exc:  # noqa: BLE001 - plans can fail in many ways
        raise ModelError(f"{folder}/plans.json: cannot build the network {name} ({exc})") from None


def _with_weights(net, state, checkpoint: Path, plans_name: str):
    """``net`` with ``state`` loaded strictly, or a ModelError naming the checkpoint."""
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        msg = " ".join(x.strip() for x in str(exc).strip().splitlines()[:3])
        raise ModelError(
            f"{checkpoint}: the weights do not fit the network of {plans_name} ({msg})") from None
    return net


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


# long: the nnU-Net v2 folder contract checked step by step (plans, dataset, folds,
# checkpoints, network), each step with its own error naming the file
def load_v2(folder: Path, folds=None, checkpoint: str = "checkpoint_final.pth"):
    """Load an nnU-Net v2 trained-model folder (all ``fold_*`` unless ``folds`` says)."""
    from ..datasets._pt import safe_torch_load
    from ..errors import SpineIOError

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
        nets.append(_with_weights(net, state, ck, "plans.json"))
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


# -- nnU-Net v1 -----------------------------------------------------------------------------------
_V1_TRAINERS = ("nnUNetTrainerV2", "nnUNetTrainerV2_noMirroring", "nnUNetTrainerV2_ep4000",
                "nnUNetTrainerV2_Loss_DiceCE_noSmooth")


def restricted_pickle_load(path: Path):
    """Unpickle a v1 ``.pkl`` admitting only numpy data and plain containers."""
    import pickle

    from ..io.safeload import restricted_load

    try:
        with open(path, "rb") as f:
            return restricted_load(f)
    except pickle.UnpicklingError as exc:
        raise ModelError(
            f"{path}: refused to load: the file needs {exc}, which is not plain data "
            "(only numpy arrays, scalars and dicts are allowed; nothing in the file was executed)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - corrupt bytes fail anywhere in the unpickler
        raise ModelError(
            f"{path}: not a readable nnU-Net v1 pickle ({type(exc).__name__}: {exc})") from None


def _v1_overrides(folder: Path) -> dict:
    p = folder / "napari_spine_model.json"
    return _read_json(p) if p.is_file() else {}


def _v1_is_verse(folder: Path) -> bool:
    return any(part.startswith("Task056") for part in folder.resolve().parts)


# long: the nnU-Net v1 folder contract checked step by step (plans.pkl, folds,
# checkpoints, network, label map), each step with its own error naming the file
def load_v1(folder: Path, folds=None):
    """Load an nnU-Net v1 trained-model folder (``Generic_UNet`` of nnunet 1.x)."""
    import contextlib
    import io

    import numpy as np

    from ..anatomy.labelmaps import get_label_map
    from ..datasets._pt import safe_torch_load
    from ..errors import SpineIOError

    folder = Path(folder)
    plans = restricted_pickle_load(folder / "plans.pkl")
    if not isinstance(plans, dict) or "plans_per_stage" not in plans:
        raise ModelError(f"{folder}/plans.pkl: not an nnU-Net v1 plans file")
    ckpts = sorted(folder.glob("*/model_final_checkpoint.model"))
    if folds is not None:
        ckpts = [c for c in ckpts if c.parent.name in {str(f) for f in folds}
                 or c.parent.name in {f"fold_{f}" for f in folds}]
    if not ckpts:
        raise ModelError(f"{folder}: no <fold>/model_final_checkpoint.model")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # nnunet 1.x prints a banner on import
            import torch.nn as nn
            from nnunet.network_architecture.generic_UNet import Generic_UNet
    except ImportError:
        raise ModelError(
            f"{folder}: an nnU-Net v1 model (such as CTSpine1K's): its network class comes "
            "from nnunet 1.x: pip install nnunet==1.7.1 (or napari-spine[nnunet1])"
        ) from None
    info_path = Path(str(ckpts[0]) + ".pkl")
    info = restricted_pickle_load(info_path) if info_path.is_file() else {}
    trainer = info.get("name", "nnUNetTrainerV2")
    if trainer not in _V1_TRAINERS:
        raise ModelError(f"{info_path}: trainer {trainer} is not supported (nnUNetTrainerV2 family only)")
    stages = sorted(plans["plans_per_stage"])
    init = info.get("init") or ()
    stage = init[5] if len(init) > 5 and init[5] in plans["plans_per_stage"] else stages[-1]
    sp = plans["plans_per_stage"][stage]
    patch = [int(p) for p in sp["patch_size"]]
    if len(patch) != 3:
        raise ModelError(f"{folder}: 2-D nnU-Net v1 models are not supported")
    n_in = int(plans.get("num_modalities", 1))
    if n_in != 1:
        raise ModelError(f"{folder}: the model takes {n_in} input channels; cases have one image")
    n_classes = int(plans["num_classes"]) + 1
    pools = [list(map(int, k)) for k in sp["pool_op_kernel_sizes"]]
    kernels = [list(map(int, k)) for k in sp["conv_kernel_sizes"]]
    nets = []
    for ck in ckpts:
        try:
            obj = safe_torch_load(str(ck), what="an nnU-Net v1 checkpoint")
        except SpineIOError as exc:
            raise ModelError(str(exc)) from None
        state = obj.get("state_dict") if isinstance(obj, dict) else None
        if not isinstance(state, dict):
            raise ModelError(f"{ck}: not an nnU-Net v1 checkpoint (no 'state_dict')")
        state = {k.removeprefix("module."): v for k, v in state.items()}
        net = Generic_UNet(
            n_in, int(plans["base_num_features"]), n_classes, len(pools),
            int(plans.get("conv_per_stage", 2)), 2, nn.Conv3d, nn.InstanceNorm3d,
            {"eps": 1e-5, "affine": True}, nn.Dropout3d, {"p": 0, "inplace": True},
            nn.LeakyReLU, {"negative_slope": 1e-2, "inplace": True}, True, False,
            lambda x: x, None, pools, kernels, False, True, True)
        net.do_ds = False
        nets.append(_with_weights(net, state, ck, "plans.pkl"))
    over = _v1_overrides(folder)
    verse = _v1_is_verse(folder)
    classes = [int(c) for c in plans.get("all_classes", range(1, n_classes))]
    scheme = over.get("label_scheme") or (
        "ctspine1k" if verse or classes == list(range(1, 26)) else None)
    if scheme is None and "labels" not in over:
        raise ModelError(
            f"{folder}: nnU-Net v1 plans do not name their labels; put napari_spine_model.json "
            'in the folder with {"label_scheme": "<scheme>"} or {"labels": {"1": "L1", ...}}')
    if "labels" in over:
        names = {0: "background", **{int(k): str(v) for k, v in over["labels"].items()}}
    else:
        lm = get_label_map(scheme)
        names = {0: "background"}
        for c in range(1, n_classes):
            if c not in lm.to_canonical:
                raise ModelError(f"{folder}: output {c} has no entry in the {scheme} label map")
            names[c] = ontology.name_of(lm.to_canonical[c])
    norm_name = plans["normalization_schemes"][0]
    if norm_name == "CT":
        ip = plans["dataset_properties"]["intensityproperties"][0]
        norm = {"scheme": "ct", "lower": float(ip["percentile_00_5"]),
                "upper": float(ip["percentile_99_5"]), "mean": float(ip["mean"]),
                "std": float(ip["sd"])}
    elif norm_name == "nonCT":
        norm = {"scheme": "zscore"}
    elif norm_name == "noNorm":
        norm = {"scheme": "none"}
    else:
        raise ModelError(f"{folder}/plans.pkl: normalisation {norm_name} is not supported")
    axcodes = over.get("axcodes") or ("SPL" if verse else "file-reversed")
    card = ModelCard(
        name=f"{folder.parent.name or folder.name} 3d_fullres (nnU-Net v1, {len(nets)} "
        f"fold{'s' if len(nets) > 1 else ''})",
        axcodes=axcodes,
        spacing=tuple(float(s) for s in np.asarray(sp["current_spacing"])),
        patch_size=tuple(patch),
        normalization=norm,
        labels=names,
        extra={"transpose": [int(t) for t in plans.get("transpose_forward", (0, 1, 2))]},
        description=f"nnU-Net v1 model from {folder}",
    )
    card.validate(str(folder))
    return SpineModel(card, _ensemble(nets), str(folder), "nnunetv1",
                      info={"folds": [c.parent.name for c in ckpts], "stage": stage,
                            "trainer": trainer})
