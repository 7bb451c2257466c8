"""Edges of the NIfTI reader's decisions: which files are label data, where an image's
segmentation is found, which headers are refused before a voxel is read, and which arrays
are copied."""

from __future__ import annotations

from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest

from napari_spine.errors import SpineIOError
from napari_spine.io import nifti


def test_label_data_is_whole_non_negative_few_valued_and_mostly_background():
    lab = np.zeros((8, 8, 8), np.uint8)
    lab[2:4, 2:4, 2:4] = 7
    assert nifti.looks_like_label_data(lab)
    assert nifti.looks_like_label_data(lab.astype(np.float32))
    assert not nifti.looks_like_label_data(lab.astype(np.complex64))  # not a label type
    assert not nifti.looks_like_label_data(np.zeros((0, 4, 4), np.uint8))
    neg = lab.astype(np.int16)
    neg[0, 0, 0] = -1
    assert not nifti.looks_like_label_data(neg)
    half = lab.astype(np.float32)
    half[0, 0, 0] = 0.5
    assert not nifti.looks_like_label_data(half)
    nan = lab.astype(np.float32)
    nan[0, 0, 0] = np.nan
    assert not nifti.looks_like_label_data(nan)


def test_an_nnunet_label_is_found_only_in_the_nnunet_layout(tmp_path):
    img = nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4))
    tr, lab = tmp_path / "imagesTr", tmp_path / "labelsTr"
    tr.mkdir(), lab.mkdir()
    nib.save(img, str(tr / "case_0000.nii.gz"))
    nib.save(img, str(lab / "case.nii.gz"))
    assert nifti.find_labels_for(tr / "case_0000.nii.gz") == lab / "case.nii.gz"
    nib.save(img, str(tr / "other.nii.gz"))  # no channel suffix: not an nnU-Net image name
    nib.save(img, str(lab / "ot.nii.gz"))
    assert nifti.find_labels_for(tr / "other.nii.gz") is None
    plain = tmp_path / "scans"  # a channel-like suffix outside imagesTr / imagesTs
    plain.mkdir()
    nib.save(img, str(plain / "case_0000.nii.gz"))
    nib.save(img, str(plain / "case.nii.gz"))
    assert nifti.find_labels_for(plain / "case_0000.nii.gz") is None


def test_a_header_without_dimensions_is_refused_before_reading():
    hdr = nib.Nifti1Header()
    hdr["dim"][:] = 0  # no dimension at all
    with pytest.raises(SpineIOError, match=r"x\.nii: the header's dimensions \(0,\) are not all positive"):
        nifti.check_header(SimpleNamespace(header=hdr), "x.nii", 1000)


def test_uncompressed_volumes_are_mapped_copy_on_write_and_painting_never_reaches_the_file(tmp_path):
    data = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    p = tmp_path / "scan.nii"
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(p))
    before = p.read_bytes()
    for what in ("image", "labels"):
        arr = nifti.read_nifti(p, what=what).array
        assert isinstance(arr, np.memmap) and arr.flags.writeable  # no copy of the whole volume
        arr[0, 0, 0] = 99  # a paint stroke
        del arr
    assert p.read_bytes() == before
    assert np.array_equal(nifti.read_nifti(p).array, data)


def test_a_two_part_bids_name_finds_its_mask(tmp_path):
    img = nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4))
    nib.save(img, str(tmp_path / "sub-01_ct.nii.gz"))
    nib.save(img, str(tmp_path / "sub-01_seg-vert_msk.nii.gz"))
    assert nifti.find_labels_for(tmp_path / "sub-01_ct.nii.gz") == tmp_path / "sub-01_seg-vert_msk.nii.gz"


def test_voxel_data_may_not_start_inside_the_header_or_its_extensions(tmp_path):
    # nibabel repairs or refuses most such offsets itself; the check stands behind it for
    # what it lets through: 348 header bytes, 4 extension-flag bytes and a 112-byte
    # extension put the data at byte 464 at the earliest
    img = nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4))
    img.header.extensions.append(nib.nifti1.Nifti1Extension(6, b"a comment of some length" * 4))
    p = tmp_path / "x.nii"
    nib.save(img, str(p))
    real = nib.load(str(p))
    assert real.dataobj.offset == 464
    for offset in (352, 460):
        fake = SimpleNamespace(header=real.header, dataobj=SimpleNamespace(offset=offset))
        with pytest.raises(SpineIOError, match=rf"x\.nii: vox_offset {offset} points inside .*before byte 464"):
            nifti.check_header(fake, str(p), p.stat().st_size)
    nifti.check_header(real, str(p), p.stat().st_size)  # the file as written passes


def test_reader_errors_are_described_plainly():
    assert nifti._describe(EOFError("stream ended")) == "truncated or corrupt gzip data: stream ended"
    assert nifti._describe(OSError("Not a gzip file (b'xx')")) == \
        "truncated or corrupt gzip data: Not a gzip file (b'xx')"
    assert nifti._describe(ValueError("bad magic number")) == "bad magic number"
    assert nifti._describe(ValueError()) == "ValueError"
    assert nifti._describe(OSError("the data ended before the end")) == \
        "file is truncated: the data ended before the end"
    assert nifti._describe(OSError("Truncated file")) == "file is truncated: Truncated file"
    assert nifti._describe(ValueError("Expected 512 bytes, got 17")) == \
        "file is truncated: Expected 512 bytes, got 17"
    assert nifti._describe(ValueError("Expected a header")) == "Expected a header"


def test_modality_from_intensities_when_the_name_says_nothing():
    mr = np.full((8, 8, 8), 300, np.int16)
    assert nifti.guess_modality("scan.nii.gz", mr) == "MR"
    ct = mr.copy()
    ct[0, 0, 0] = -1000
    assert nifti.guess_modality("scan.nii.gz", ct) == "CT"
    assert nifti.guess_modality("scan.nii.gz", np.full((8, 8, 8), -500, np.int16)) == "MR"
    assert nifti.guess_modality("sub-01_T2w.nii.gz", ct) == "MR-T2"


def test_label_data_at_its_limits():
    ten = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2], np.uint8)
    assert nifti.looks_like_label_data(ten)  # exactly 30 % background
    assert not nifti.looks_like_label_data(np.r_[ten[1:], [3]])
    many = np.zeros(200, np.uint16)
    many[:63] = np.arange(1, 64)  # background and 63 labels: 64 values
    assert nifti.looks_like_label_data(many)
    many[63] = 64
    assert not nifti.looks_like_label_data(many)
    grey = np.zeros((8, 8, 8), np.int16)
    grey[1::2] = np.arange(256).reshape(4, 8, 8)  # every other slice holds grey values
    assert not nifti.looks_like_label_data(grey)


def test_an_unreadable_file_is_not_a_label_file(tmp_path):
    p = tmp_path / "scan.nii"
    p.write_bytes(b"not a nifti header at all" * 20)
    assert nifti.is_label_file(p) is False


def test_a_read_volume_cannot_be_changed_behind_the_reader():
    from dataclasses import FrozenInstanceError

    vol = nifti.NiftiVolume("x.nii", np.zeros((1, 1, 1)), np.eye(4), None)
    with pytest.raises(FrozenInstanceError):
        vol.path = "y.nii"


def test_read_only_data_is_copied_for_labels_only(tmp_path, monkeypatch):
    data = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    p = tmp_path / "seg.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(p))
    real = nifti.read_gz_array

    def read_only(src, img):
        arr = real(src, img)
        arr.flags.writeable = False
        return arr

    monkeypatch.setattr(nifti, "read_gz_array", read_only)
    labels = nifti.read_nifti(p, what="labels").array
    assert labels.flags.writeable and np.array_equal(labels, data)  # painted in place later
    image = nifti.read_nifti(p, what="image").array
    assert not image.flags.writeable  # never copied: images are not painted


def test_sizes_are_said_in_bytes_then_decimal_units():
    assert nifti._size(999) == "999 bytes"
    assert nifti._size(1000) == "1.0 KB"
    assert nifti._size(1_500_000) == "1.5 MB"
    assert nifti._size(3e18) == "3000.0 PB"


def test_nifti2_files_are_read(tmp_path):
    data = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    p = tmp_path / "scan.nii"
    nib.save(nib.Nifti2Image(data, np.diag([0.5, 0.7, 2.0, 1.0])), str(p))
    vol = nifti.read_nifti(p)
    assert np.array_equal(vol.array, data) and np.allclose(np.diag(vol.affine), [0.5, 0.7, 2.0, 1.0])


@pytest.mark.parametrize("zoom, ok", [(1000.0, True), (1000.5, False), (np.nan, False), (-1000.5, False)])
def test_voxel_sizes_up_to_a_metre(tmp_path, zoom, ok):
    p = tmp_path / "x.nii"
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.uint8), np.eye(4)), str(p))
    img = nib.load(str(p))
    img.header["pixdim"][3] = zoom  # the third voxel size
    if ok:
        nifti.check_header(img, str(p), p.stat().st_size)
    else:
        with pytest.raises(SpineIOError, match="implausible voxel size"):
            nifti.check_header(img, str(p), p.stat().st_size)


def test_labels_must_be_whole_non_negative_and_fit_16_bits():
    with pytest.raises(SpineIOError, match=r"s\.nii: labels contain negative values \(min -1\)"):
        nifti.labels_to_int(np.array([0, 3, -1], np.int16), "s.nii")
    assert nifti.labels_to_int(np.array([0, 3, 65535], np.uint16), "s.nii").dtype == np.uint16
    for bad in ([0.0, -1.0], [0.0, 65536.0]):
        with pytest.raises(SpineIOError, match="outside 0-65535"):
            nifti.labels_to_int(np.array(bad, np.float32), "s.nii")
    assert nifti.labels_to_int(np.array([0.0, 65535.0], np.float32), "s.nii").dtype == np.uint16
    assert nifti.labels_to_int(np.array([0.0, 255.0], np.float32), "s.nii").dtype == np.uint8


def test_a_bitpix_that_contradicts_the_data_type_is_named(tmp_path):
    p = tmp_path / "x.nii"
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.uint8), np.eye(4)), str(p))
    raw = bytearray(p.read_bytes())
    raw[72:74] = np.int16(16).tobytes()  # bitpix: 16 bits for uint8 data
    p.write_bytes(bytes(raw))
    with pytest.raises(SpineIOError, match=r"x\.nii: the header is inconsistent: bitpix 16 for data type "
                                           r"uint8 \(8 bits\); the file is corrupt"):
        nifti.read_nifti(p)


def test_bids_entity_values_may_hold_dashes(tmp_path):
    img = nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4))
    nib.save(img, str(tmp_path / "sub-01_acq-sag-t2_T2w.nii.gz"))
    nib.save(img, str(tmp_path / "sub-01_acq-sag-t2_seg-vert_msk.nii.gz"))
    assert nifti.find_labels_for(tmp_path / "sub-01_acq-sag-t2_T2w.nii.gz") == \
        tmp_path / "sub-01_acq-sag-t2_seg-vert_msk.nii.gz"


def test_a_truncated_file_says_how_much_data_it_holds(tmp_path):
    p = tmp_path / "x.nii"
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), np.eye(4)), str(p))  # 128 data bytes
    p.write_bytes(p.read_bytes()[:352 + 100])
    with pytest.raises(SpineIOError, match=r"x\.nii: the header declares 128 bytes of voxel data "
                                           r"\(\(4, 4, 4\), int16\), but the file holds 100 bytes after "
                                           r"the header: the header is corrupt or the file is truncated"):
        nifti.read_nifti(p)


def test_intensities_are_judged_on_a_subsample_of_about_32_per_axis():
    mr = np.full((64, 8, 96), 300, np.int16)  # sampled every 2nd, 1st and 3rd voxel
    seen, unseen = mr.copy(), mr.copy()
    seen[2, 1, 3] = -1000
    unseen[1, 1, 3] = -1000
    assert nifti.guess_modality("scan.nii", seen) == "CT"
    assert nifti.guess_modality("scan.nii", unseen) == "MR"


def test_non_whole_labels_name_five_examples():
    vals = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], np.float32)
    with pytest.raises(SpineIOError, match=r"s\.nii: labels are not whole numbers \(e\.g\. 0\.1, 0\.2, 0\.3, "
                                           r"0\.4, 0\.5\); is this an image"):
        nifti.labels_to_int(vals, "s.nii")


def test_an_image_alone_has_no_labels_path(tmp_path):
    p = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((2, 3, 4), np.int16), np.eye(4)), str(p))
    case = nifti.load_case(p)
    assert case.metadata["labels_path"] == "" and case.metadata["image_path"] == str(p)
    assert case.source.label_path == ""
    alone = nifti.load_labels_file(p)
    assert alone.metadata == {"labels_path": str(p), "labels_only": True}


def test_organs_outside_the_spine_table_are_listed_six_at_most(tmp_path):
    import json

    data = np.zeros((4, 4, 12), np.uint8)
    organs = ["liver", "spleen", "stomach", "pancreas", "gallbladder", "esophagus", "duodenum", "colon"]
    for i in range(len(organs)):
        data[1:3, 1:3, i] = i + 1
    p = tmp_path / "organs.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(p))
    (tmp_path / "organs.json").write_text(json.dumps({"labels": {str(i + 1): n for i, n in enumerate(organs)}}))
    case = nifti.load_labels_file(p)
    shown = ", ".join(sorted(organs)[:6])
    assert (f"8 structure(s) outside the spine table are not shown as spine labels: {shown} and 2 more"
            in case.warnings)


def test_a_cord_labelled_by_level_keeps_its_levels(tmp_path):
    from napari_spine.anatomy import ontology
    from napari_spine.anatomy.labelmaps import get_label_map

    data = np.zeros((4, 12, 4), np.float32)
    for k, level in enumerate((3, 4, 5)):  # C3, C4, C5 from the top
        data[1:3, 4 * k:4 * k + 4, 1:3] = level
    p = tmp_path / "t2_seg_labeled.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(p))
    case = nifti.load_labels_file(p)
    assert case.label_scheme.startswith("cord-levels-") and len(case.label_scheme) == len("cord-levels-") + 10
    lm = get_label_map(case.label_scheme)
    assert lm.from_canonical[ontology.SPINAL_CORD] == 3  # the first level present
    assert f"{p}: a spinal cord mask labelled by level (C3, C4, C5); shown as spinal cord, the levels " \
           "are kept in the file's ids" in case.warnings


def test_only_the_three_spatial_voxel_sizes_are_checked(tmp_path):
    p = tmp_path / "x.nii"
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.uint8), np.eye(4)), str(p))
    img = nib.load(str(p))
    img.header["pixdim"][4:6] = np.nan  # a meaningless time step in a 3-D file
    nifti.check_header(img, str(p), p.stat().st_size)


def test_large_volumes_are_judged_on_an_even_subsample():
    # 128^3 voxels: a step of 1 (2.1 million voxels is under 2^3 million); every other slice
    # holds grey values, which a step of 2 would miss
    grey = np.zeros((128, 128, 128), np.int16)
    grey[1::18] = (np.arange(128 * 128, dtype=np.int16) % 500).reshape(128, 128)  # slices 1, 19, 37 ...
    assert not nifti.looks_like_label_data(grey)  # a step of 2 or 9 would see background only


def test_the_ct_threshold_is_below_minus_500():
    mr = np.full((8, 8, 8), 300, np.int16)
    mr[0, 0, 0] = -501
    assert nifti.guess_modality("scan.nii", mr) == "CT"


def test_float_labels_past_255_keep_their_values():
    out = nifti.labels_to_int(np.array([0.0, 256.0, 3.0], np.float32), "s.nii")
    assert out.dtype == np.uint16 and out.tolist() == [0, 256, 3]


@pytest.mark.parametrize("n, tail", [(6, ""), (7, " and 1 more")])
def test_up_to_six_other_structures_are_named_in_full(tmp_path, n, tail):
    import json

    organs = ["liver", "spleen", "stomach", "pancreas", "gallbladder", "esophagus", "duodenum"][:n]
    data = np.zeros((4, 4, 12), np.uint8)
    for i in range(n):
        data[1:3, 1:3, i] = i + 1
    p = tmp_path / "organs.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(p))
    (tmp_path / "organs.json").write_text(json.dumps({"labels": {str(i + 1): o for i, o in enumerate(organs)}}))
    shown = ", ".join(sorted(organs)[:6])
    assert (f"{n} structure(s) outside the spine table are not shown as spine labels: {shown}{tail}"
            in nifti.load_labels_file(p).warnings)


def test_a_singleton_fourth_axis_keeps_its_time_step_out_of_the_check(tmp_path):
    p = tmp_path / "x.nii"
    img = nib.Nifti1Image(np.zeros((2, 2, 2, 1), np.uint8), np.eye(4))
    img.header["pixdim"][4] = np.nan
    nib.save(img, str(p))
    nifti.check_header(nib.load(str(p)), str(p), p.stat().st_size)


def test_a_file_that_ends_with_its_header_holds_nothing(tmp_path):
    p = tmp_path / "x.nii"
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), np.eye(4)), str(p))
    p.write_bytes(p.read_bytes()[:352])
    with pytest.raises(SpineIOError, match="but the file holds 0 bytes after the header"):
        nifti.read_nifti(p)
