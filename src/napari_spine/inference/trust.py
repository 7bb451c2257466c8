"""Which model files may run: formats that carry code load only with the user's consent.

A TorchScript archive is a program: torch compiles the code stored in it, and its
``__setstate__`` runs while it loads and its ``forward`` at every prediction. Such code can
read and write files like any program. napari-spine therefore loads a TorchScript file only
when the user trusts it: ``load_model(path, trust=True)``, the confirmation the inference
panel shows (it names the file and its SHA-256), or ``--trust-model`` in batch runs. The
consent is remembered per file content (SHA-256) in ``trusted_models.json`` in the
configuration folder (``$NAPARI_SPINE_CONFIG_DIR``, else the platform's user configuration
folder, :mod:`napari_spine.userdirs`); a changed file asks again. The bundled default model ships
with the package and is trusted as the package is.

Weights-only formats (nnU-Net checkpoints, plain state dicts) never need trust: they are read
with ``torch.load(weights_only=True)`` and run only network classes of the allow-list.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from .card import ModelError

__all__ = ["UntrustedModelError", "config_dir", "file_sha256", "is_trusted", "remember_trust"]

_STORE = "trusted_models.json"


class UntrustedModelError(ModelError):
    """A model file carries code and the user has not said it may run (nothing was run)."""

    def __init__(self, path: str | os.PathLike, sha256: str, kind: str = "TorchScript model"):
        self.path = str(path)
        self.sha256 = sha256
        self.kind = kind
        super().__init__(
            f"{self.path}: a {kind} is program code (it runs while loading and at every "
            f"prediction) and was not loaded; load it only if you trust where it came from: "
            f"confirm in the inference panel, pass load_model(..., trust=True), or "
            f"--trust-model in batch runs (SHA-256 {sha256[:16]}...)")


def config_dir() -> Path:
    """napari-spine's per-user configuration folder (not created here): see
    :func:`napari_spine.userdirs.config_dir`."""
    from ..userdirs import config_dir as _config_dir

    return _config_dir()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_store() -> dict:
    path = config_dir() / _STORE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def is_trusted(sha256: str) -> bool:
    """True when the user has trusted a file with this content before."""
    return sha256 in _read_store()


def remember_trust(path: str | os.PathLike, sha256: str) -> None:
    """Remember that the user trusts this file content (best effort: an unwritable
    configuration folder only means the question comes again)."""
    from ..io.files import write_bytes_atomic

    store = _read_store()
    store[sha256] = {"path": str(Path(path).resolve()), "trusted_at": time.time()}
    folder = config_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(folder / _STORE, json.dumps(store, indent=1, sort_keys=True).encode("utf-8"))
    except OSError:
        pass


def require_trust(path: Path, trust: bool, kind: str = "TorchScript model") -> None:
    """Return when ``path`` may run (trusted now or before), else raise
    :class:`UntrustedModelError`. Trusting records the file's hash."""
    sha = file_sha256(path)
    if trust:
        remember_trust(path, sha)
        return
    if not is_trusted(sha):
        raise UntrustedModelError(path, sha, kind)
