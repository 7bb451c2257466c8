"""The segmented gzip writer and its check: one ordinary gzip member that every reader
decodes, and a check that finds each way a stream can be wrong."""

from __future__ import annotations

import gzip
import struct
import zlib

import numpy as np
import pytest

from napari_spine.io import _niftiwrite
from napari_spine.io._niftiwrite import GzipStream, check_stream, gzip_stream


def _parts(seed=0, n=60_000):
    rng = np.random.default_rng(seed)
    head = rng.integers(0, 256, 352, dtype=np.uint8).tobytes()
    body = np.zeros(n, np.uint8)
    body[n // 5: n // 2] = 7
    picks = rng.integers(0, n, n // 50)
    body[picks] = rng.integers(1, 30, picks.size)
    return [head, memoryview(body)]


def _spec_stream(parts, cuts, name="x.nii", finish_early=False):
    """A segmented member built from RFC 1951/1952 with the standard library's zlib."""
    whole = b"".join(bytes(p) for p in parts)
    edges = [0, *cuts, len(whole)]
    header = b"\x1f\x8b\x08\x08\x00\x00\x00\x00\x00\xff" + name.encode() + b"\x00"
    out, segs, pos = [header], [], len(header)
    for i, (a, b) in enumerate(zip(edges, edges[1:])):
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        last = i == len(edges) - 2
        blob = c.compress(whole[a:b]) + c.flush(zlib.Z_FINISH if last or finish_early else zlib.Z_FULL_FLUSH)
        out.append(blob)
        segs.append((a, b, pos, pos + len(blob)))
        pos += len(blob)
    out.append(struct.pack("<II", zlib.crc32(whole), len(whole)))
    return GzipStream(b"".join(out), tuple(segs), name), whole


@pytest.mark.parametrize("segments", [1, 2, 3, 7])
def test_every_reader_decodes_the_segmented_member_to_the_parts(segments):
    import deflate

    parts = _parts(segments)
    whole = b"".join(bytes(p) for p in parts)
    st = gzip_stream(parts, "labels.nii.gz", segments=segments)
    assert len(st.segments) == segments
    assert st.data[:10] == b"\x1f\x8b\x08\x08\x00\x00\x00\x00\x00\xff" and st.data[10:20] == b"labels.nii"
    assert gzip.decompress(st.data) == whole
    assert deflate.gzip_decompress(st.data) == whole
    d = zlib.decompressobj(31)  # one member: nothing is left after the first
    assert d.decompress(st.data) == whole and d.eof and d.unused_data == b""
    assert check_stream(st, parts) == []
    assert gzip_stream(parts, "labels.nii.gz", segments=segments).data == st.data  # no time stamp


def test_a_stream_built_from_the_specification_passes_the_check():
    parts = _parts(1)
    st, _ = _spec_stream(parts, [10_000, 30_000])
    assert check_stream(st, parts) == []


@pytest.mark.parametrize("fault, message", [
    ("voxel", "label voxels differ (first at byte 20352 of the file)"),
    ("header", "header bytes differ (first at byte 17 of the file)"),
    ("crc", "gzip trailer (CRC-32 or length) differs"),
    ("length", "gzip trailer (CRC-32 or length) differs"),
    ("tiles", "deflate segments do not tile the file"),
    ("finished early", "segment 0 ends the deflate stream in the wrong place"),
    ("garbage", "segment 1 does not decode"),
    ("name", "gzip header differs"),
    ("short", "segment 1 decodes to 25000 of its 25001 bytes"),
    ("long", "segment 1 decodes to more than its 24999 bytes"),
])
def test_the_check_finds_each_fault(fault, message):
    parts = _parts(2)
    st, whole = _spec_stream(parts, [15_000, 40_000], finish_early=fault == "finished early")
    data, segs, name = bytearray(st.data), list(st.segments), st.name
    if fault == "voxel":
        body = bytearray(bytes(parts[1]))
        body[20_000] ^= 1
        parts = [parts[0], bytes(body)]
    elif fault == "header":
        head = bytearray(parts[0])
        head[17] ^= 4
        parts = [bytes(head), parts[1]]
    elif fault == "crc":
        data[-8] ^= 1
    elif fault == "length":
        data[-1] ^= 1
    elif fault == "tiles":
        segs[1] = (segs[1][0] + 1, *segs[1][1:])
    elif fault == "garbage":
        data[segs[1][2]] = 0xFF  # block type 11: reserved
    elif fault == "name":
        name = "y.nii"
    elif fault == "short":
        body = bytearray(bytes(parts[1]))
        parts = [parts[0], bytes(body) + b"\x00"]  # the file should be one byte longer
        segs[2] = (segs[2][0], segs[2][1] + 1, *segs[2][2:])
        segs[1] = (segs[1][0], segs[1][1] + 1, *segs[1][2:])
        segs[2] = (segs[2][0] + 1, *segs[2][1:])
    elif fault == "long":  # the table's cut one byte early: segment 1 decodes past it
        segs[1] = (segs[1][0], segs[1][1] - 1, *segs[1][2:])
        segs[2] = (segs[2][0] - 1, *segs[2][1:])
    problems = check_stream(GzipStream(bytes(data), tuple(segs), name), parts)
    assert len(problems) == 1 and problems[0].startswith(message), problems


def test_segments_follow_the_cores_and_the_minimum_size(monkeypatch):
    import napari_spine._threads as threads

    monkeypatch.setattr(threads, "cores", lambda: 4)
    parts = _parts(3, n=100_000)
    total = 352 + 100_000
    assert len(gzip_stream(parts).segments) == 1  # below 16 MiB a core
    monkeypatch.setattr(_niftiwrite, "_SEGMENT", 30_000)
    st = gzip_stream(parts)
    # three segments of 30 000 bytes fit, though four cores are there; the last is shorter
    assert [s[:2] for s in st.segments] == [(0, 33_451), (33_451, 66_902), (66_902, total)]
    monkeypatch.setattr(_niftiwrite, "_SEGMENT", 1_000)
    assert len(gzip_stream(parts).segments) == 4  # one per core
    assert check_stream(st, parts) == []
