"""NIfTI-1 files built in memory: the header block as nibabel lays it out, the voxels as
one Fortran-order buffer (no copy when the array is already in that order), gzip through
zlib-ng on every core.

nibabel's writer converts the array slice by slice (``tobytes`` per slice, about 0.3 s
for a 512×512×535 volume) and streams it through a gzip file object. Here the payload is
the array's own memory whenever it is Fortran-contiguous (the layout of a loaded file, and
of labels mapped back to it). It is compressed as one gzip member whose deflate stream is
cut into one segment per core (zlib-ng level 6 in each, side by side; the cuts cost a few
bytes), and the same segments are checked side by side by decoding them again
(:func:`check_stream`). ``benchmarks/bench_hot_paths.py`` measures it against SimpleITK's
writer and nibabel's; tests check that the bytes equal nibabel's own serialisation for
every dtype and axis order, and that every gzip reader decodes the stream.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np

__all__ = ["GzipStream", "NiftiBytes", "check_stream", "gzip_bytes", "gzip_stream", "nifti_bytes"]


@dataclass(frozen=True)
class NiftiBytes:
    """The parts of a single-file NIfTI: header block (header, extensions, padding) and voxels."""

    header: bytes
    payload: memoryview

    @property
    def size(self) -> int:
        """Bytes of the uncompressed file."""
        return len(self.header) + self.payload.nbytes


def nifti_bytes(img) -> NiftiBytes:
    """Serialise a nibabel ``Nifti1Image`` / ``Nifti2Image`` as nibabel's ``to_file_map``
    does (same header, extensions, offset and scaling fields), without the per-slice copy."""
    from nibabel.arraywriters import get_slope_inter, make_array_writer

    data = np.asanyarray(img.dataobj)
    img.update_header()
    hdr = img.header
    out_dtype = hdr.get_data_dtype()
    slope = hdr["scl_slope"].item() if hdr.has_data_slope else np.nan
    inter = hdr["scl_inter"].item() if hdr.has_data_intercept else np.nan
    if np.all(np.isnan((slope, inter))):
        writer = make_array_writer(data, out_dtype, hdr.has_data_slope, hdr.has_data_intercept)
        hdr.set_slope_inter(*get_slope_inter(writer))
    if data.dtype.newbyteorder("=") != out_dtype.newbyteorder("="):
        raise ValueError(f"in-memory NIfTI writing needs data already in {out_dtype} (got {data.dtype})")
    buf = io.BytesIO()
    hdr.write_to(buf)
    offset = int(hdr.get_data_offset())
    head = buf.getvalue()
    if len(head) > offset:
        raise ValueError(f"NIfTI header block ({len(head)} bytes) overruns vox_offset {offset}")
    head += b"\x00" * (offset - len(head))
    arr = np.asarray(data, dtype=out_dtype)  # byte order of the header (native for ours)
    fortran = np.asfortranarray(arr)  # no copy when the array is Fortran-contiguous already
    return NiftiBytes(head, memoryview(fortran.ravel(order="F")).cast("B"))


#: at least this many uncompressed bytes per segment (one core each)
_SEGMENT = 16 << 20  # mutation-equivalent: a work size
#: the check decodes this much at a time, compared while it is in cache
_PIECE = 1 << 20  # mutation-equivalent: a work size


@dataclass(frozen=True)
class GzipStream:
    """A whole ``.gz`` file in memory and how it was made: one gzip member whose deflate
    stream is cut into independent segments (each compressed by its own core).

    ``segments[i]`` is ``(start, stop, zstart, zstop)``: the segment's bytes of the
    uncompressed file, and where its deflate bytes lie in ``data``.
    """

    data: bytes
    segments: tuple[tuple[int, int, int, int], ...]
    name: str = ""


def _gzip_header(name: str) -> bytes:
    flags = 0x08 if name else 0
    header = b"\x1f\x8b\x08" + bytes([flags]) + b"\x00\x00\x00\x00" + b"\x00\xff"
    return header + (name.encode("latin-1", "replace") + b"\x00" if name else b"")


def _views(parts) -> list[memoryview]:
    return [memoryview(p).cast("B") if memoryview(p).format != "B" else memoryview(p) for p in parts]


def _pieces(views: list[memoryview], start: int, stop: int):
    """The bytes ``start:stop`` of the concatenation of ``views``, as views (no copy)."""
    pos = 0
    for v in views:
        end = pos + v.nbytes
        # mutation-equivalent[Gt -> GtE, Lt -> LtE]: adds empty views only
        if end > start and pos < stop:
            yield v[max(start - pos, 0):min(stop, end) - pos]
        pos = end


def _bounds(total: int, segments: int | None) -> list[tuple[int, int]]:
    from .._threads import cores

    if not total:
        return [(0, 0)]
    # mutation-equivalent[FloorDiv -> Div]: int() below floors it alike
    n = segments if segments is not None else min(cores(), total // _SEGMENT)
    n = max(min(int(n), total), 1)  # at least one segment, and no more than bytes
    step = -(-total // n)
    return [(a, min(a + step, total)) for a in range(0, total, step)]


def gzip_stream(parts, name: str = "", level: int = 6, segments: int | None = None) -> GzipStream:
    """One gzip member of ``parts`` (bytes-like, in order), naming the uncompressed file
    (``name`` without ``.gz``, as gzip does) and with no time stamp (reruns give the same
    bytes).

    The deflate stream is cut into ``segments`` pieces (default: one per core, at least
    16 MiB each), compressed side by side by zlib-ng. Each piece but the last ends with a
    full flush (byte-aligned, no back-reference across it), so the pieces joined are one
    ordinary deflate stream that every gzip reader decodes, and each can be checked on
    its own (:func:`check_stream`). A cut costs a few bytes of output.
    """
    from zlib_ng import zlib_ng as z

    from .._threads import map_slabs

    if name.lower().endswith(".gz"):
        name = name[:-3]
    views = _views(parts)
    total = sum(v.nbytes for v in views)
    bounds = _bounds(total, segments)

    def one(i: int) -> tuple[bytes, int]:
        a, b = bounds[i]
        comp = z.compressobj(level, z.DEFLATED, -15, 9)  # memLevel 9: smaller files, same speed
        out, crc = [], 0
        for piece in _pieces(views, a, b):
            out.append(comp.compress(piece))
            crc = z.crc32(piece, crc)
        out.append(comp.flush(z.Z_FINISH if i == len(bounds) - 1 else z.Z_FULL_FLUSH))
        return b"".join(out), crc

    done = map_slabs(one, range(len(bounds)))
    header = _gzip_header(name)
    # mutation-equivalent[0 -> 1]: the first segment sets the CRC
    crc, pos, segs = 0, len(header), []
    for (a, b), (blob, seg_crc) in zip(bounds, done):
        crc = z.crc32_combine(crc, seg_crc, b - a) if a else seg_crc
        segs.append((a, b, pos, pos + len(blob)))
        pos += len(blob)
    trailer = struct.pack("<II", crc & 0xFFFFFFFF, total & 0xFFFFFFFF)
    return GzipStream(b"".join([header, *(blob for blob, _ in done), trailer]), tuple(segs), name)


def gzip_bytes(parts, name: str = "", level: int = 6) -> bytes:
    """The bytes of :func:`gzip_stream`."""
    return gzip_stream(parts, name, level).data


def check_stream(stream: GzipStream, parts) -> list[str]:
    """What is wrong with ``stream`` as the gzip file of ``parts`` (empty: nothing).

    The segments are decoded side by side by zlib-ng's inflate, a megabyte at a time, and
    each piece is compared with the bytes it should be while both are in cache; the
    segments must tile the file and the stream, only the last may end the deflate stream,
    and the trailer's CRC-32 (computed again by libdeflate) and length must match.
    """
    from zlib_ng import zlib_ng as z

    from .._threads import map_slabs

    views = _views(parts)
    total = sum(v.nbytes for v in views)
    data = memoryview(stream.data)
    header = _gzip_header(stream.name)
    segs = stream.segments
    if bytes(data[:len(header)]) != header:
        return ["gzip header differs"]
    expected_z = [len(header)] + [s[3] for s in segs[:-1]]
    if (not segs or [s[0] for s in segs] != [0] + [s[1] for s in segs[:-1]] or segs[-1][1] != total
            or [s[2] for s in segs] != expected_z or segs[-1][3] != len(data) - 8):
        return ["deflate segments do not tile the file"]
    head_len = sum(v.nbytes for v in views[:1])  # the first part is the header block
    done = map_slabs(lambda i: _check_segment(data, views, segs, i, head_len), range(len(segs)))
    problems = [p for p, _ in done if p]
    if problems:
        return problems[:1]
    crc = 0  # mutation-equivalent: the first segment sets it
    for (a, b, _, _), (_, seg_crc) in zip(segs, done):
        crc = z.crc32_combine(crc, seg_crc, b - a) if a else seg_crc
    if struct.unpack("<II", bytes(data[-8:])) != (crc & 0xFFFFFFFF, total & 0xFFFFFFFF):
        return ["gzip trailer (CRC-32 or length) differs"]
    return []


def _check_segment(data: memoryview, views, segs, i: int, head_len: int) -> tuple[str | None, int]:
    """Decode segment ``i`` piece by piece against the bytes it should give: the problem
    (or None) and the libdeflate CRC-32 of the segment's bytes."""
    import deflate
    from zlib_ng import zlib_ng as z

    a, b, za, zb = segs[i]
    d = z.decompressobj(-15)
    pending, pos, crc = data[za:zb], a, 0
    while True:
        try:
            out = d.decompress(pending, _PIECE)
        except z.error as exc:
            return f"segment {i} does not decode ({exc})", crc
        n = len(out)
        if pos + n > b:
            return f"segment {i} decodes to more than its {b - a} bytes", crc
        got = np.frombuffer(out, np.uint8)
        at = 0
        for piece in _pieces(views, pos, pos + n):
            want = np.frombuffer(piece, np.uint8)
            if not np.array_equal(got[at:at + want.size], want):
                first = pos + at + int(np.flatnonzero(got[at:at + want.size] != want)[0])
                what = "header bytes differ" if first < head_len else "label voxels differ"
                return f"{what} (first at byte {first} of the file)", crc
            crc = deflate.crc32(piece, crc)
            at += want.size
        pos += n
        pending = d.unconsumed_tail
        # mutation-equivalent[and -> or, Eq -> NotEq]: either form stops after the last output
        if not pending and (d.eof or n == 0):
            break
    if pos != b:
        return f"segment {i} decodes to {pos - a} of its {b - a} bytes", crc
    if d.eof != (i == len(segs) - 1) or d.unused_data:
        return f"segment {i} ends the deflate stream in the wrong place", crc
    return None, crc
