"""File utilities every writer shares: atomic writes, safe names, JSON values, NIfTI headers.

Every file napari-spine writes goes through :func:`atomic_path` (or :func:`write_bytes_atomic`):
the data lands in a hidden sibling, is flushed, and is renamed over the target in one step,
so a crash or a full disk never leaves a half-written file under the final name.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ExportError
from .nifti import split_name

__all__ = ["atomic_path", "clean_nan", "jsonable", "nifti_header", "remove_stale_parts",
           "safe_name", "write_bytes_atomic", "write_json"]


@contextmanager
def atomic_path(path: str | os.PathLike, *, replace_readonly: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; on success rename it over ``path``.

    On any exception the temporary file is removed and the target is untouched; an
    ``OSError`` (a full disk, a vanished folder) becomes an :class:`ExportError` naming the
    target. Temporary files that killed writers left in the folder are removed first. A
    write-protected target (no write bit: someone protected it) is refused unless
    ``replace_readonly``; a rename would otherwise replace it without a word.
    """
    target = Path(path)
    if target.is_dir():
        raise ExportError(f"{target}: is a folder, expected a file name")
    if not replace_readonly and target.is_file() and not target.stat().st_mode & 0o222:
        raise ExportError(f"{target}: the file is write-protected; it was not replaced (make it writable "
                          "or choose another name)")
    if not target.parent.is_dir():
        raise ExportError(f"{target}: folder {target.parent} does not exist")
    if not os.access(target.parent, os.W_OK):
        raise ExportError(f"{target}: folder {target.parent} is not writable")
    remove_stale_parts(target.parent)
    base, ext = split_name(target)
    # hidden sibling with the same extension, so readers recognise the format on re-read
    tmp = target.with_name(f".{base}.part-{os.getpid()}-{secrets.token_hex(4)}{ext}")
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, ExportError):  # a full disk ...
            raise ExportError(f"{target}: not written ({exc.strerror or exc}); the previous file, "
                              "if any, is untouched") from exc
        raise
    _fsync_dir(target.parent)


_PART_FILE = re.compile(r"^\..+\.part-(?P<pid>\d+)-[0-9a-f]{8}(\.[A-Za-z.]+)?$")


def remove_stale_parts(folder: Path) -> list[Path]:
    """Remove the temporary files of writes whose process is gone (killed mid-write).

    Only names of the form :func:`atomic_path` makes, with a process id that no longer
    runs, are touched; returns what was removed.
    """
    removed = []
    try:
        # mutation-equivalent[and -> or]: a quick pre-check; the pattern below requires both
        entries = [e for e in os.scandir(folder) if e.name.startswith(".") and ".part-" in e.name]
    except OSError:
        return removed
    for e in entries:
        m = _PART_FILE.match(e.name)
        if m is None or not e.is_file(follow_symlinks=False):
            continue
        pid = int(m.group("pid"))
        if pid == os.getpid() or _process_alive(pid):
            continue
        try:
            os.unlink(e.path)
            removed.append(Path(e.path))
        except OSError:
            pass
    return removed


def _process_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill would end the process there; nothing to ask: keep the file
        return True  # mutation-equivalent: Windows only
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process: leave its files alone
    return True


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_path`, flushed to disk before the rename."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically; NaN becomes ``null``.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.json"
    >>> write_json(p, {"b": float("nan"), "a": 1})
    >>> json.loads(p.read_text())
    {'a': 1, 'b': None}
    """
    text = json.dumps(clean_nan(obj), indent=1, sort_keys=True, default=jsonable)
    write_bytes_atomic(path, text.encode("utf-8"))  # flushed to disk before the rename


def jsonable(v: Any) -> Any:
    """``default=`` for :func:`json.dumps`: numpy scalars and arrays as Python values, else text.

    >>> import numpy as np
    >>> jsonable(np.int16(3)), jsonable(np.arange(2)), jsonable(Path("a"))
    (3, [0, 1], 'a')
    """
    import numpy as np

    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def clean_nan(v: Any) -> Any:
    """NaN -> ``None``, recursively through dicts, lists and tuples (JSON has no NaN).

    >>> clean_nan({"a": [1.0, float("nan")]})
    {'a': [1.0, None]}
    """
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, dict):
        return {k: clean_nan(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [clean_nan(x) for x in v]
    return v


def safe_name(name: str) -> str:
    """A file-name-safe form of a case id or key: runs of other characters become ``_``.

    >>> safe_name("sub-01/ses 2"), safe_name("../..")
    ('sub-01_ses_2', 'case')
    """
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "case"


def unique_name(name: str) -> str:
    """:func:`safe_name` made one-to-one: a name that had to change gets a short hash of
    the original, so that "case 1" and "case_1" never share a folder.

    >>> unique_name("case_1"), unique_name("case 1") != unique_name("case_1")
    ('case_1', True)
    """
    safe = safe_name(name)
    if safe == name:
        return safe
    import hashlib

    return f"{safe}-{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def case_output(folder: str | os.PathLike, case_id: str, name: str) -> Path:
    """``folder/cases/<case>/name`` of a batch output: the case's own folder
    (:func:`unique_name`), or the folder an earlier version named by :func:`safe_name`
    when only that one holds the file."""
    base = Path(folder) / "cases"
    own = base / unique_name(case_id) / name
    legacy = base / safe_name(case_id) / name
    return legacy if not own.exists() and legacy.exists() else own


def nifti_header(base, affine, shape, dtype) -> tuple[Any, type]:
    """A header for writing ``shape``/``dtype`` voxels: a copy of ``base``, or a new NIfTI-1.

    The copy keeps the source's geometry, units and extensions; the new header carries
    ``affine`` as qform and sform (code 1, mm). Intensity scaling is reset to 1/0 because
    the voxels written are the values as loaded. Returns the header and the image class
    (``Nifti2Image`` for a NIfTI-2 source).
    """
    import nibabel as nib

    if base is None:
        hdr = nib.Nifti1Header()
        hdr.set_qform(affine, code=1)
        hdr.set_sform(affine, code=1)
        hdr.set_xyzt_units("mm", "sec")
        klass: type = nib.Nifti1Image
    else:
        hdr = base.copy()
        klass = nib.Nifti2Image if isinstance(hdr, nib.Nifti2Header) else nib.Nifti1Image
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(dtype)
    hdr.set_slope_inter(1.0, 0.0)
    return hdr, klass
