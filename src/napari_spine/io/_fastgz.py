"""Verified whole-buffer decoding of ``.nii.gz`` voxel data (libdeflate, then zlib).

nibabel streams ``.nii.gz`` through indexed_gzip (~0.6 GB/s here), which never checks the
gzip CRC-32: a flipped bit in the compressed stream can decode to a few wrong voxels
without any error. This reader decodes the whole file instead and checks every member's
CRC-32 and length: libdeflate first (~1 GB/s; it preallocates the output from the gzip
size trailer), and when libdeflate cannot take the file (several gzip members, over
4 GiB) Python's gzip module, which checks each member too. A file that fails the check
is a :class:`~napari_spine.errors.SpineIOError`, never a silent load.

The voxel array comes straight from the buffer when it equals what
``np.asanyarray(img.dataobj)`` gives (native byte order, no intensity scaling); otherwise
nibabel reads it from the verified buffer. Tests check byte equality with nibabel.
"""

from __future__ import annotations

import gzip
import io
import math
import zlib
from pathlib import Path

import numpy as np

from ..errors import SpineIOError

__all__ = ["check_readable", "gunzip_verified", "is_gzip", "max_gunzipped_size", "read_gz_array"]

# deflate's best ratio is 1032:1 (258-byte matches in 2-bit codes): a compressed file can
# never hold more than this many bytes per compressed byte
_MAX_RATIO = 1032


def max_gunzipped_size(compressed_bytes: int) -> int:
    """An upper bound on what ``compressed_bytes`` of gzip can decode to."""
    return compressed_bytes * _MAX_RATIO + (1 << 16)


def is_gzip(path: str | Path) -> bool:
    """True when the file starts with the gzip magic bytes."""
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def gunzip_verified(path: str | Path, need: int = 1) -> bytes:
    """The decoded content of a gzip file, every decoded member's CRC-32 and length checked.

    ``need`` is how many bytes the caller reads: libdeflate decodes only the first gzip
    member (into a buffer sized by the file's last size trailer), so its output is taken
    only when it holds at least that much; otherwise every member is decoded with zlib.
    Raises :class:`SpineIOError` naming the file for truncated or corrupt data.
    """
    raw = Path(path).read_bytes()
    if len(raw) < 18:  # 10-byte header + empty deflate block + 8-byte trailer
        raise SpineIOError(f"{path}: truncated gzip file ({len(raw)} bytes)")
    trailer_size = int.from_bytes(raw[-4:], "little")
    try:
        import deflate
    except ImportError:  # pragma: no cover - a dependency; zlib below is the slower way
        deflate = None
    if deflate is not None:
        try:
            out = deflate.gzip_decompress(raw)  # checks this member's CRC-32 and length
        except (deflate.DeflateError, ValueError, MemoryError):
            out = None
        if out is not None and len(out) >= max(need, 1) and len(out) % 2**32 == trailer_size:
            return out
    try:
        return gzip.decompress(raw)
    except (gzip.BadGzipFile, EOFError, zlib.error, OSError) as exc:
        raise SpineIOError(
            f"{path}: corrupt gzip data ({exc}): the file is damaged or truncated "
            "(copy it again from its source)") from None
    except MemoryError:
        raise SpineIOError(f"{path}: the decompressed data do not fit in memory") from None


def read_gz_array(path: str | Path, image) -> np.ndarray:
    """The voxel array of a loaded ``.nii.gz`` image, decoded with every check.

    ``image`` is the nibabel image from ``nib.load``; its array proxy knows the data offset
    (nibabel resets a loaded header's ``vox_offset``).
    """
    header = image.header
    proxy = image.dataobj
    dtype = np.dtype(header.get_data_dtype())
    shape = tuple(int(s) for s in header.get_data_shape())
    count = math.prod(shape)
    offset = int(getattr(proxy, "offset", header.get_data_offset()))
    need = offset + count * dtype.itemsize
    buf = gunzip_verified(path, need)
    if len(buf) < need:
        raise SpineIOError(
            f"{path}: truncated: the header says {count * dtype.itemsize:,} bytes of voxel data "
            f"from byte {offset}, the file holds {max(0, len(buf) - offset):,}")
    slope, inter = getattr(proxy, "slope", None), getattr(proxy, "inter", None)
    plain = (dtype.isnative and not dtype.hasobject and slope is not None and inter is not None
             and float(slope) == 1.0 and float(inter) == 0.0)
    if plain:
        return np.frombuffer(buf, dtype=dtype, count=count, offset=offset).reshape(shape, order="F")
    again = type(image).from_stream(io.BytesIO(buf))  # scaling, byte order: nibabel's rules
    return np.asanyarray(again.dataobj)


def check_readable(path: str | os.PathLike) -> None:
    """Raise :class:`~napari_spine.errors.SpineIOError` naming the file when it cannot be
    opened for reading (no permission, a broken mount), before any decoder sees it: the
    gzip index reader nibabel uses crashes the whole process on a file it cannot read."""
    from ..errors import SpineIOError

    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        raise SpineIOError(f"{path}: cannot be read ({exc.strerror or exc})") from None
