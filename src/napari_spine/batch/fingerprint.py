"""When a case is up to date: fingerprints of its inputs, the options and the model."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

from ..io.files import case_output, unique_name
from .options import BatchError, BatchOptions

__all__ = ["case_fingerprint", "model_fingerprint", "up_to_date"]


def _location_stamp(loc: str) -> list:
    from ..datasets._pt import location_path

    path = location_path(loc)
    try:
        if os.path.isdir(path):  # a DICOM series folder: every file in it counts
            files = sorted(p for p in Path(path).rglob("*") if p.is_file())
            return [loc, [[str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns] for p in files]]
        st = os.stat(path)
        return [loc, st.st_size, st.st_mtime_ns]
    except OSError:
        return [loc, None, None]


def _hash_file(path: Path, h) -> None:
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):  # mutation-equivalent: read size only
            h.update(chunk)


def model_fingerprint(source: str) -> str:
    """Content hash of a model file or folder (``default``: the bundled file); for an
    external engine, its name and installed version."""
    from ..inference.engines import ENGINES

    if source in ENGINES:
        engine = ENGINES[source]
        return hashlib.sha256(f"{engine.key} {engine.version()}".encode()).hexdigest()
    if source == "default":
        from ..inference.model import default_model_path

        path = default_model_path()
    else:
        path = Path(source)
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                h.update(str(p.relative_to(path)).encode())
                _hash_file(p, h)
    elif path.is_file():
        _hash_file(path, h)
    else:
        raise BatchError(f"{path}: no such model file or folder")
    return h.hexdigest()


def _fingerprinted(opts: BatchOptions) -> dict:
    """The options that change a case's outputs (trusting a model changes none)."""
    d = asdict(opts)
    d.pop("trust_model")
    return d


def case_fingerprint(ref, opts: BatchOptions, model_fp: str) -> str:
    """A hash of everything a case's outputs depend on: its files (size and mtime), the
    options and the model; an unchanged fingerprint means the outputs are up to date."""
    from .. import __version__

    stamps = [_location_stamp(v) for v in ref.images.values()]
    if ref.labels:
        stamps.append(_location_stamp(ref.labels))
    if opts.command == "qa" and opts.predictions:
        pred = case_output(opts.predictions, ref.case_id, "prediction.nii.gz")
        stamps.append(_location_stamp(str(pred)))
    blob = json.dumps({"version": __version__, "options": _fingerprinted(opts), "inputs": stamps,
                       "model": model_fp},
                      sort_keys=True,  # mutation-equivalent: the code fixes the keys' order anyway
                      default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def up_to_date(ref, out: Path, fingerprint: str) -> dict | None:
    """The stored row of a case whose ``done.json`` matches ``fingerprint`` and whose outputs
    all exist, else None (the case is computed again)."""
    case_dir = out / "cases" / unique_name(ref.case_id)
    try:
        done = json.loads((case_dir / "done.json").read_text())
    except (OSError, ValueError):
        return None
    if done.get("fingerprint") != fingerprint:
        return None
    row = done.get("row", {})
    outputs = [o for o in str(row.get("outputs", "")).split(";") if o]
    if not all((case_dir / o).is_file() for o in outputs):
        return None
    return row
