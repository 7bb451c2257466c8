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


def test_a_payload_byte_right_after_the_header_and_one_in_the_second_view_of_a_chunk():
    """Segment 0 holds the header block and the start of the voxels: a difference in the
    voxels is found in the second view of a decoded chunk, and byte 352 is the first voxel."""
    parts = _parts(4)
    st, _ = _spec_stream(parts, [20_000])
    for at, what in ((0, "label voxels differ (first at byte 352 of the file)"),
                     (48, "label voxels differ (first at byte 400 of the file)")):
        body = bytearray(bytes(parts[1]))
        body[at] ^= 1
        assert check_stream(st, [parts[0], bytes(body)]) == [what]
    head = bytearray(parts[0])
    head[351] ^= 1
    assert check_stream(st, [bytes(head), parts[1]]) == ["header bytes differ (first at byte 351 of the file)"]


def test_the_last_segment_decoding_past_the_file():
    parts = _parts(5)
    st, whole = _spec_stream(parts, [30_000])
    shorter = [parts[0], bytes(parts[1])[:-1]]  # the file is one byte shorter than the stream
    segs = list(st.segments)
    segs[-1] = (segs[-1][0], segs[-1][1] - 1, *segs[-1][2:])
    got = check_stream(GzipStream(st.data, tuple(segs), st.name), shorter)
    assert got == [f"segment 1 decodes to more than its {len(whole) - 1 - 30_000} bytes"]


def test_a_stream_of_several_mebibytes_per_segment_is_checked_piece_by_piece():
    head = bytes(range(256)) + bytes(96)
    body = np.zeros(5 << 20, np.uint8)
    body[::4097] = 3
    body[(3 << 20) + 5] = 9
    parts = [head, memoryview(body)]
    st = gzip_stream(parts, "big.nii", segments=2)
    assert gzip.decompress(st.data) == head + body.tobytes()
    assert check_stream(st, parts) == []
    late = body.copy()
    late[(4 << 20) + 11] ^= 1  # far past the first mebibyte a segment decodes
    assert check_stream(st, [head, memoryview(late)]) == [
        f"label voxels differ (first at byte {352 + (4 << 20) + 11} of the file)"]


def test_parts_of_wider_items_are_taken_as_their_bytes():
    wide = np.arange(3000, dtype=np.uint16)
    st = gzip_stream([b"head", wide], segments=3)
    assert gzip.decompress(st.data) == b"head" + wide.tobytes()
    assert check_stream(st, [b"head", wide]) == []


def test_small_and_empty_streams():
    one = gzip_stream([b"x"], segments=4)
    assert one.segments == ((0, 1, 10, one.segments[0][3]),) and gzip.decompress(one.data) == b"x"
    empty = gzip_stream([b""])
    assert gzip.decompress(empty.data) == b"" and check_stream(empty, [b""]) == []
    assert len(gzip_stream(_parts(6)).segments) == 1  # under 16 MiB: one segment, whatever the cores


def test_gzip_header_flags_and_the_default_level():
    unnamed = gzip_stream([b"abc" * 100]).data
    assert unnamed[3] == 0 and unnamed[:4] == b"\x1f\x8b\x08\x00"  # no FNAME, no FTEXT
    named = gzip_stream([b"abc" * 100], "a.nii.gz").data
    assert named[3] == 0x08 and named[10:16] == b"a.nii\x00"
    data = [bytes(range(256)) * 400]
    assert gzip_stream(data).data == gzip_stream(data, level=6).data != gzip_stream(data, level=1).data
    assert _niftiwrite.gzip_bytes(data) == gzip_stream(data, level=6).data


def test_nifti_parts_are_frozen_and_know_their_size():
    import dataclasses

    import nibabel as nib

    img = nib.Nifti1Image(np.arange(24, dtype=np.uint8).reshape(2, 3, 4), np.eye(4))
    parts = _niftiwrite.nifti_bytes(img)
    assert parts.size == 352 + 24 == len(parts.header) + parts.payload.nbytes
    assert bytes(parts.payload) == np.arange(24, dtype=np.uint8).reshape(2, 3, 4).tobytes(order="F")
    with pytest.raises(dataclasses.FrozenInstanceError):
        parts.header = b""
    st = gzip_stream([parts.header, parts.payload])
    with pytest.raises(dataclasses.FrozenInstanceError):
        st.data = b""


def test_a_cut_inside_the_header_block():
    """A segment that ends inside the first part: the parts after it belong to later segments."""
    parts = _parts(7)
    st, whole = _spec_stream(parts, [100, 30_000])
    assert check_stream(st, parts) == []
    st2 = gzip_stream(parts, "x.nii", segments=200)  # segments of about 300 bytes: the first inside the header
    assert st2.segments[0][1] < 352 and check_stream(st2, parts) == []
    assert gzip.decompress(st2.data) == whole
