"""Safe reading of PyTorch ``.pt`` files, from folders, zips and byte-split zips.

``torch.load(..., weights_only=True)`` with an explicit allow-list of numpy array
reconstruction globals: a file that needs anything else (a class, a function, any code)
is refused before it runs, with a message naming the file. torch is imported only here,
when a ``.pt`` file is actually read.

Archive locations are written ``"<archive>::<member>"``. A byte-split archive
(``Train.zip.001``, ``.002``, ...: 7-Zip "split to volumes") is read through a file object
that joins the parts, so members are decoded one at a time without unpacking to disk.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SpineIOError
from ..io.safeload import torch_safe_globals

SEP = "::"
_PART = re.compile(r"^(?P<base>.+\.zip)\.(?P<n>\d{3})$", re.IGNORECASE)
_ARCHIVE = re.compile(r"\.zip(\.\d{3})?$", re.IGNORECASE)
#: No ``.pt`` of these datasets comes near this (a 2-D slice dict is a few MB): a bigger
#: member is refused before it is read (a zip bomb, or not this dataset)
MAX_MEMBER_BYTES = 1 << 30


def split_location(location: str) -> tuple[str, str | None]:
    """``(file path, archive member or None)`` of a location.

    ``"<archive>::<member>"`` splits where the left side is a zip archive on disk, so a
    folder whose name contains ``::`` is still a plain path.

    >>> split_location("/data/with::sep/ct.nii.gz")
    ('/data/with::sep/ct.nii.gz', None)
    """
    if SEP not in location:
        return location, None
    start = 0
    fallback = None
    while (i := location.find(SEP, start)) >= 0:
        left = location[:i]
        if _ARCHIVE.search(left):
            if Path(left).is_file():
                return left, location[i + len(SEP):]
            fallback = fallback or (left, location[i + len(SEP):])
        start = i + 1
    if fallback is not None and not Path(location).exists():
        return fallback
    return location, None


def location_path(location: str) -> str:
    """The file on disk that holds a location (the archive for an archive member)."""
    return split_location(location)[0]


class JoinedParts(io.RawIOBase):
    """A read-only, seekable file object over byte-split parts, in order."""

    def __init__(self, parts: list[Path]):
        super().__init__()
        self._parts = [Path(p) for p in parts]
        self._sizes = [p.stat().st_size for p in self._parts]
        self._starts = np.concatenate([[0], np.cumsum(self._sizes)]).astype(np.int64)
        self._size = int(self._starts[-1])
        self._pos = 0
        self._files: dict[int, Any] = {}

    def readable(self) -> bool:
        """Always True (a read-only stream)."""
        return True

    def seekable(self) -> bool:
        """Always True."""
        return True

    def tell(self) -> int:
        """The position in the joined bytes."""
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move to a position in the joined bytes (``whence`` as for files)."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buf) -> int:
        """Read into ``b`` across part boundaries; returns the byte count."""
        view = memoryview(buf).cast("B")
        done = 0
        while done < len(view) and self._pos < self._size:
            i = int(np.searchsorted(self._starts, self._pos, side="right") - 1)
            f = self._files.get(i)
            if f is None:
                f = self._files[i] = open(self._parts[i], "rb")  # noqa: SIM115 - closed in close()
            f.seek(self._pos - int(self._starts[i]))
            want = min(len(view) - done, int(self._starts[i + 1]) - self._pos)
            n = f.readinto(view[done : done + want])
            if not n:
                break
            done += n
            self._pos += n
        return done

    def close(self) -> None:
        """Close every part file."""
        for f in self._files.values():
            f.close()
        self._files.clear()
        super().close()


def archive_parts(archive: str | os.PathLike) -> list[Path]:
    """The files an archive location stands for (all parts of a split archive)."""
    p = Path(archive)
    m = _PART.match(p.name)
    if not m:
        return [p]
    parts = sorted(p.parent.glob(f"{m.group('base')}.[0-9][0-9][0-9]"))
    expected = [p.parent / f"{m.group('base')}.{i:03d}" for i in range(1, len(parts) + 1)]
    if parts != expected:
        raise SpineIOError(f"{p}: split archive parts are not consecutive ({', '.join(x.name for x in parts)})")
    return parts


@contextmanager
def open_archive(archive: str | os.PathLike) -> Iterator[zipfile.ZipFile]:
    """The zip archive (joined from its parts when split), closed afterwards."""
    parts = archive_parts(archive)
    fobj: Any = io.BufferedReader(JoinedParts(parts)) if len(parts) > 1 else open(parts[0], "rb")  # noqa: SIM115
    try:
        try:
            z = zipfile.ZipFile(fobj)
        except (zipfile.BadZipFile, OSError) as exc:
            raise SpineIOError(f"{archive}: not a readable zip archive ({exc})") from exc
        with z:
            yield z
    finally:
        fobj.close()


def list_members(archive: str | os.PathLike, suffix: str = ".pt") -> list[str]:
    """The ``.pt`` members of a zip archive (or of its joined ``.zip.NNN`` parts)."""
    with open_archive(archive) as z:
        return sorted(i.filename for i in z.infolist() if i.filename.lower().endswith(suffix)
                      and not i.is_dir() and "__MACOSX" not in i.filename)


def read_location(location: str) -> bytes:
    """Raw bytes of a file path or an ``archive::member`` location.

    A member larger than :data:`MAX_MEMBER_BYTES` uncompressed, encrypted, compressed
    with a method zipfile lacks, or damaged is a :class:`SpineIOError` naming it.
    """
    archive, member = split_location(location)
    if member is not None:
        try:
            with open_archive(archive) as z:
                info = z.getinfo(member)
                if info.file_size > MAX_MEMBER_BYTES:
                    raise SpineIOError(
                        f"{location}: the member is {info.file_size / 1e9:.1f} GB uncompressed, "
                        f"more than any .pt file of these datasets; it was not read")
                if info.flag_bits & 0x1:
                    raise SpineIOError(f"{location}: the member is encrypted (password-protected zip)")
                return z.read(info)
        except KeyError as exc:
            raise SpineIOError(f"{location}: no such member in the archive") from exc
        except NotImplementedError as exc:
            raise SpineIOError(f"{location}: compressed with a method that cannot be read ({exc})") from exc
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, zlib.error, ValueError) as exc:
            raise SpineIOError(f"{location}: corrupt archive member ({type(exc).__name__}: {exc})") from exc
    p = Path(location)
    if p.is_dir():
        raise SpineIOError(f"{location}: is a folder, expected a file")
    try:
        return p.read_bytes()
    except OSError as exc:
        raise SpineIOError(f"{location}: cannot read ({exc.strerror or exc})") from exc


def _to_numpy(value: Any) -> Any:
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return value.detach().cpu().numpy()
    return value


def safe_torch_load(location: str, what: str = "a plain array") -> Any:
    """``torch.load(weights_only=True)`` with the numpy allow-list; tensors stay tensors.

    Raises SpineIOError (naming the location) when torch is missing, when the file is
    not a torch file, or when it needs any global outside the allow-list; in that case
    nothing in the file was executed.
    """
    try:
        import torch
    except ImportError as exc:
        raise SpineIOError(
            f"{location}: reading .pt files needs PyTorch (pip install 'napari-spine[torch]')"
        ) from exc
    import pickle

    if split_location(location)[1] is not None:  # an archive member: read it whole
        source: Any = io.BytesIO(read_location(location))
        empty = not source.getbuffer().nbytes
    else:  # a plain file: torch reads it in place (no second copy of a large checkpoint)
        try:
            empty = Path(location).stat().st_size == 0
        except OSError as exc:
            raise SpineIOError(f"{location}: cannot read ({exc})") from exc
        source = location
    if empty:
        raise SpineIOError(f"{location}: file is empty")
    _check_crcs(source, location)
    try:
        with torch.serialization.safe_globals(torch_safe_globals()):
            return torch.load(source, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        # torch's own text advises weights_only=False, which would run the file's code: the
        # user is told what the file needs, never that
        detail = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        needs = (f"needs {detail.group(1)}" if detail
                 else "uses Python objects outside the allow-list")
        raise SpineIOError(
            f"{location}: refused to load: the file {needs}, which is not {what} "
            "(only numpy arrays, tensors and plain containers are allowed; nothing in the "
            "file was executed)"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - corrupt bytes fail anywhere in the unpickler
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if "weights_only" in text:
            text = "the file is damaged or not a PyTorch file"
        raise SpineIOError(
            f"{location}: not a readable PyTorch file ({type(exc).__name__}: {text})"
        ) from exc


def _check_crcs(source: Any, location: str) -> None:
    """Compare every member of a zip-format ``.pt`` with its CRC-32 (torch does not): a
    flipped bit in a tensor is an error, never a silently different array. Legacy
    (non-zip) files carry no checksum."""
    try:
        if not zipfile.is_zipfile(source):
            return
        with zipfile.ZipFile(source) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError,
            zlib.error) as exc:
        raise SpineIOError(f"{location}: damaged PyTorch file ({type(exc).__name__}: {exc})") from None
    finally:
        if hasattr(source, "seek"):
            source.seek(0)
    if bad is not None:
        raise SpineIOError(f"{location}: damaged PyTorch file: {bad} fails its CRC-32 check")


def load_pt(location: str) -> Any:
    """Load a ``.pt`` file safely (:func:`safe_torch_load`); tensors come back as numpy."""
    obj = safe_torch_load(location)
    if isinstance(obj, dict):
        return {k: _to_numpy(v) for k, v in obj.items()}
    return _to_numpy(obj)


def peek_keys(location: str) -> set[str]:
    """The top-level keys of a ``.pt`` file's dict (empty when it holds something else)."""
    obj = load_pt(location)
    return set(obj) if isinstance(obj, dict) else set()


def iter_pt_files(root: Path, warn=None) -> Iterator[str]:
    """``.pt`` locations under ``root``: plain files, and members of ``*.zip`` / ``*.zip.001``.

    Parts of a split archive whose ``.001`` is missing are reported to ``warn`` (their
    cases cannot be read), not skipped silently.
    """
    from .base import scan_files

    firsts = set()
    for f in scan_files(root, (".pt", ".zip", ".zip.001")):
        if f.name.lower().endswith(".pt"):
            yield str(f)
        else:
            firsts.add(f.name.lower().removesuffix(".001"))
            members = list_members(f)
            twice = sorted(m for m, n in Counter(members).items() if n > 1)
            if twice and warn is not None:
                warn(f"{f}: {len(twice)} member name(s) stored twice ({', '.join(twice[:3])}); "
                     "the last copy of each is read")
            for m in dict.fromkeys(members):
                yield f"{f}{SEP}{m}"
    if warn is None:
        return
    orphans: dict[Path, list[str]] = {}
    for f in scan_files(root, tuple(f".zip.{i:03d}" for i in range(2, 100))):
        m = _PART.match(f.name)
        if m and m.group("base").lower() not in firsts:
            orphans.setdefault(f.parent / m.group("base"), []).append(f.name)
    for base, names in sorted(orphans.items()):
        warn(f"{base}.001: missing, so the split archive {base.name} ({', '.join(sorted(names))}) "
             "cannot be read; its cases are not listed")
