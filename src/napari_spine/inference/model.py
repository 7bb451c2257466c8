"""Loading models: the bundled default, TorchScript + card, nnU-Net folders, MMCSD DenseNet.

:func:`load_model` looks at what it is given and picks the backend:

- ``"default"``: the bundled phantom-trained 3-D U-Net (TorchScript + card).
- a TorchScript file (``.ts``/``.pt``/``.pth``): the card is embedded (extra file
  ``model_card.json``) or lies beside it as ``<stem>.json`` or ``model_card.json``.
- an nnU-Net v2 trained-model folder (``plans.json``, ``dataset.json``,
  ``fold_*/checkpoint_final.pth``), or one of its ``fold_*`` folders.
- an nnU-Net v1 folder (``plans.pkl``, ``*/model_final_checkpoint.model``; CTSpine1K):
  see :mod:`.nnunet`.
- a plain state dict of MONAI's ``DenseNet121`` (the MMCSD outcome classifier).

Checkpoints are read with ``torch.load(weights_only=True)`` and a numpy allow-list: a
file that needs any other Python object is refused without running anything.
TorchScript archives are programs (their code runs while loading and at every
prediction), so they load only with the user's trust (``trust=True``; see
:mod:`.trust`); a TorchScript archive named like a weights file (``.pth``, ``.ckpt``) is
refused with a message that says what it is, never loaded in place of the weights-only path.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .card import ModelCard, ModelError
from .types import SpineModel

__all__ = ["BACKENDS", "DEFAULT_MODEL", "Backend", "SpineModel", "load_model"]

DEFAULT_MODEL = "default"
_DEFAULT_FILE = "default_spine_unet.ts"


def _require_torch(source: str):
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise ModelError(
            f"{source}: running models needs PyTorch (pip install 'napari-spine[torch]')"
        ) from exc


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any("/code/" in n or n.startswith("code/") for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _torchscript_of(source: str | Path) -> Path | None:
    """The TorchScript file ``load_model(source)`` would load, or None for other formats."""
    if str(source) == DEFAULT_MODEL:
        return None
    path = Path(source).expanduser()
    if path.is_dir():
        return _card_folder_script(path)
    return path if path.is_file() and _is_torchscript(path) else None


def trust_question(source: str | Path):
    """The :class:`~.trust.UntrustedModelError` that loading ``source`` would raise (the
    file carries code and was never trusted), or None: what a panel asks about before it
    loads anything."""
    from .trust import UntrustedModelError, file_sha256, is_trusted

    path = _torchscript_of(source)
    if path is None:
        return None
    sha = file_sha256(path)
    return None if is_trusted(sha) else UntrustedModelError(path, sha, _code_kind(path))


def _code_kind(path: Path) -> str:
    if path.suffix.lower() in (".pth", ".ckpt", ".bin", ".model"):
        return f"TorchScript archive named like a weights file ({path.suffix})"
    return "TorchScript model"


def _load_torchscript(path: Path, *, trust: bool, bundled: bool = False) -> SpineModel:
    import warnings

    import torch

    if not bundled:
        from .trust import require_trust

        require_trust(path, trust, _code_kind(path))
    card = None

    extra = {"model_card.json": ""}
    try:
        with warnings.catch_warnings():  # torch >= 2.14 calls TorchScript deprecated
            warnings.filterwarnings("ignore", ".*deprecated.*", FutureWarning)
            net = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds here
        raise ModelError(f"{path}: not a loadable TorchScript model ({exc})") from None
    if card is None:
        if extra["model_card.json"]:
            card = ModelCard.from_json(extra["model_card.json"], f"{path} (embedded card)")
        else:
            for cand in (path.with_suffix(".json"), path.parent / "model_card.json"):
                if cand.is_file():
                    card = ModelCard.read(cand)
                    break
    if card is None:
        raise ModelError(
            f"{path}: TorchScript model without a model card; embed model_card.json "
            f"(torch.jit.save(..., _extra_files=...)) or put {path.stem}.json beside it"
        )
    return SpineModel(card, net, str(path), "torchscript")


def default_model_path() -> Path:
    """Where the bundled default model (TorchScript + card) is installed."""
    return Path(str(resources.files("napari_spine") / "models" / _DEFAULT_FILE))


@dataclass(frozen=True)
class Backend:
    """One model format: ``probe(path)`` says whether a path is in it, ``load(path, trust)``
    loads it. :data:`BACKENDS` is tried in order; the first probe that says yes loads."""

    name: str
    probe: Callable[[Path], bool]
    load: Callable[[Path, bool], SpineModel]


def _nnunet_kind(path: Path) -> str | None:
    from . import nnunet

    return nnunet.folder_kind(path) if path.is_dir() else None


def _card_folder_script(path: Path) -> Path | None:
    if path.is_dir() and _nnunet_kind(path) is None and (path / "model_card.json").is_file():
        scripts = sorted(path.glob("*.ts")) + sorted(path.glob("*.pt"))
        return scripts[0] if len(scripts) == 1 else None
    return None


def _is_v2_checkpoint(path: Path) -> bool:
    return (path.is_file() and path.name.startswith("checkpoint_")
            and _nnunet_kind(path.parent.parent) == "v2")


def _load_v2(path: Path, trust: bool) -> SpineModel:
    from . import nnunet

    if path.is_file():  # one fold's checkpoint
        return nnunet.load_v2(path.parent.parent, folds=(path.parent.name,), checkpoint=path.name)
    return nnunet.load_v2(path)


def _load_v1(path: Path, trust: bool) -> SpineModel:
    from . import nnunet

    return nnunet.load_v1(path)


#: the model formats, most specific first (weights-only formats never need ``trust``)
BACKENDS: tuple[Backend, ...] = (
    Backend("nnunetv2", lambda p: _nnunet_kind(p) == "v2" or _is_v2_checkpoint(p), _load_v2),
    Backend("nnunetv1", lambda p: _nnunet_kind(p) == "v1", _load_v1),
    Backend("torchscript-folder", lambda p: _card_folder_script(p) is not None,
            lambda p, trust: _load_torchscript(_card_folder_script(p), trust=trust)),
    Backend("torchscript", lambda p: p.is_file() and _is_torchscript(p),
            lambda p, trust: _load_torchscript(p, trust=trust)),
    Backend("state-dict", lambda p: p.is_file(), lambda p, trust: _load_state_dict(p)),
)


def load_model(source: str | Path = DEFAULT_MODEL, *, trust: bool = False) -> SpineModel:
    """Load a model for :func:`napari_spine.predict` (see the module docstring).

    ``trust=True`` says the user trusts a model file that carries code (TorchScript) and
    remembers its hash; without it such a file raises
    :class:`~napari_spine.inference.trust.UntrustedModelError` before anything in it runs.
    Weights-only formats ignore ``trust``. The format is the first of :data:`BACKENDS`
    whose probe recognises the path.
    """
    src = str(source)
    from .engines import ENGINES, engine_model

    if src in ENGINES:  # an engine runs in its own process, through its own package
        return engine_model(src)
    _require_torch(src)
    if src == DEFAULT_MODEL:
        path = default_model_path()
        if not path.is_file():
            raise ModelError(f"{path}: the bundled default model is missing from the installation")
        return _load_torchscript(path, trust=True, bundled=True)
    path = Path(source).expanduser()
    if not path.exists():
        raise ModelError(f"{path}: no such file or folder")
    if path.is_file() and path.stat().st_size == 0:
        raise ModelError(f"{path}: file is empty")
    for backend in BACKENDS:
        if backend.probe(path):
            return backend.load(path, trust)
    raise ModelError(
        f"{path}: not a model folder (expected an nnU-Net v2 folder with plans.json, "
        "dataset.json and fold_*/checkpoint_final.pth, an nnU-Net v1 folder with "
        "plans.pkl, or one TorchScript file with model_card.json)"
    )


def _load_state_dict(path: Path) -> SpineModel:
    from ..datasets._pt import safe_torch_load
    from ..errors import SpineIOError

    try:
        obj = safe_torch_load(str(path), what="a plain state dict")
    except SpineIOError as exc:
        raise ModelError(str(exc)) from None
    if isinstance(obj, dict) and "network_weights" in obj:
        raise ModelError(
            f"{path}: an nnU-Net checkpoint: open the trained-model folder that holds "
            "plans.json and dataset.json (the folder above fold_*)"
        )
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        raise ModelError(f"{path}: not a state dict (got {type(obj).__name__})")
    from . import classifier

    if classifier.looks_like_densenet(obj):
        return classifier.load_mmcsd(obj, path)
    keys = ", ".join(list(obj)[:4])
    raise ModelError(
        f"{path}: a state dict of an unknown network (keys {keys} ...): napari-spine runs "
        "TorchScript models with a model card, nnU-Net folders and the MMCSD DenseNet121; "
        "export other networks with torch.jit.script/trace and a model_card.json"
    )
