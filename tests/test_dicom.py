"""DICOM series in: exact geometry against dcm2niix, the real transfer syntaxes, and every
way a series can be wrong refused with the file named."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from helpers import REALDATA  # noqa: E402
from napari_spine import SpineIOError, load_case  # noqa: E402
from napari_spine.io import dicom  # noqa: E402

TS = REALDATA / "dicom_transfer_syntaxes"
DCM2NIIX = shutil.which("dcm2niix") or str(Path(sys.executable).with_name("dcm2niix"))


def _volume(shape=(20, 24, 9), seed=0):
    """An asymmetric test volume in (column, row, slice) order, stored values 0..3000."""
    rng = np.random.default_rng(seed)
    v = rng.integers(0, 200, shape).astype(np.uint16)
    c, r, s = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    v += (1000 + 37 * c + 11 * r + 101 * s).astype(np.uint16)  # no two corners alike
    v[2:5, 3:9, 1:4] = 3000  # an off-centre block
    return v


def write_series(folder: Path, vol: np.ndarray, row, col, slice_vec, origin, *, spacing=(0.8, 0.7),
                 thickness=None, series_number=3, uid_suffix="1", descending_instances=False,
                 modality="CT", description="test series", positions=None):
    """One classic series from the standard's attributes (PS3.3 C.7.6.2): ``vol`` is
    (column, row, slice); pixel (r, c) of slice k lies at origin + k * slice_vec +
    c * spacing[1] * row + r * spacing[0] * col."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    study = "1.2.826.0.1.3680043.8.498.1"
    series = f"1.2.826.0.1.3680043.8.498.2.{uid_suffix}"
    n = vol.shape[2]
    files = []
    for k in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2" if modality == "CT" else "1.2.840.10008.5.1.4.1.1.4"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = folder / f"s{uid_suffix}_{k:03d}.dcm"
        ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientName, ds.PatientID = "Test^Phantom", "P0"
        ds.PatientBirthDate, ds.PatientSex, ds.StudyID, ds.AccessionNumber = "19700101", "O", "1", "A1"
        ds.ReferringPhysicianName, ds.Manufacturer = "", "test"
        ds.FrameOfReferenceUID = f"1.2.826.0.1.3680043.8.498.3.{uid_suffix}"
        ds.PositionReferenceIndicator = ""
        ds.StudyDate, ds.StudyTime, ds.SeriesTime, ds.AcquisitionTime = "20260101", "120000", "120000", "120000"
        ds.Modality, ds.SeriesDescription, ds.SeriesNumber = modality, description, series_number
        ds.InstanceNumber = (n - k) if descending_instances else (k + 1)
        pos = np.asarray(origin, float) + k * np.asarray(slice_vec, float) if positions is None else positions[k]
        ds.ImagePositionPatient = [f"{x:.6f}" for x in pos]
        ds.ImageOrientationPatient = [f"{x:.8f}" for x in (*row, *col)]
        ds.PixelSpacing = [f"{spacing[0]}", f"{spacing[1]}"]
        ds.SliceThickness = f"{thickness if thickness is not None else np.linalg.norm(slice_vec):.4f}"
        ds.Rows, ds.Columns = vol.shape[1], vol.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = "1", "-1024"
        ds.PixelData = np.ascontiguousarray(vol[:, :, k].T).tobytes()
        ds.save_as(str(path), enforce_file_format=True)
        files.append(path)
    return files


def dcm2niix(folder: Path, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([DCM2NIIX, "-z", "n", "-b", "n", "-f", "%s_%d", "-o", str(out), str(folder)],
                   check=True, capture_output=True, timeout=120)
    return sorted(out.glob("*.nii"))


def _rot(deg):
    t = np.radians(deg)
    return np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])


GEOMETRIES = {
    "axial": ((1, 0, 0), (0, 1, 0), (0, 0, 2.5)),
    "axial, slices head to feet, instances reversed": ((1, 0, 0), (0, 1, 0), (0, 0, -2.5)),
    "axial, rows and columns swapped": ((0, 1, 0), (1, 0, 0), (0, 0, -2.5)),
    "sagittal": ((0, 1, 0), (0, 0, -1), (2.0, 0, 0)),
    "sagittal, right to left": ((0, 1, 0), (0, 0, -1), (-2.0, 0, 0)),
    "coronal": ((1, 0, 0), (0, 0, -1), (0, 1.5, 0)),
    "coronal, mirrored": ((-1, 0, 0), (0, 0, 1), (0, -1.5, 0)),
    "oblique axial, 12 degrees": (tuple(_rot(12) @ (1, 0, 0)), tuple(_rot(12) @ (0, 1, 0)),
                                  tuple(_rot(12) @ (0, 0, 2.0))),
}


@pytest.fixture(scope="module")
def have_dcm2niix():
    if not Path(DCM2NIIX).exists() and shutil.which("dcm2niix") is None:
        pytest.skip("dcm2niix is not installed")


@pytest.mark.parametrize("name", list(GEOMETRIES))
def test_a_series_equals_its_dcm2niix_conversion(tmp_path, name, have_dcm2niix):
    row, col, svec = GEOMETRIES[name]
    vol = _volume()
    write_series(tmp_path / "dcm", vol, row, col, svec, (-40.0, 25.5, 110.25),
                 descending_instances="reversed" in name)
    nii = dcm2niix(tmp_path / "dcm", tmp_path / "nii")[0]
    ref = load_case(nii)
    case = load_case(tmp_path / "dcm")
    # the same voxels in the same file order and the same affine as dcm2niix writes them
    ref_img = nib.load(nii)
    assert np.array_equal(dicom.read_series(tmp_path / "dcm").array, np.asanyarray(ref_img.dataobj))
    np.testing.assert_allclose(case.source.affine, ref_img.affine, atol=1e-4)
    assert case.shape == ref.shape
    assert np.array_equal(case.image, ref.image)  # HU: stored - 1024
    assert int(case.image.min()) == int(vol.min()) - 1024 and case.image.dtype == np.int16
    np.testing.assert_allclose(case.affine, ref.affine, atol=1e-4)
    assert case.modality == "CT" and case.dataset == "dicom"
    assert case.metadata["series_description"] == "test series"
    assert "patient_name" not in case.metadata and case.metadata["dicom_identifiers"]["patient_id"] == "P0"


def test_overlapping_slices_take_their_spacing_from_the_positions(tmp_path, have_dcm2niix):
    vol = _volume()
    write_series(tmp_path / "dcm", vol, (1, 0, 0), (0, 1, 0), (0, 0, 1.25), (0, 0, 0), thickness=3.0)
    case = load_case(tmp_path / "dcm")
    ref = load_case(dcm2niix(tmp_path / "dcm", tmp_path / "nii")[0])
    assert case.spacing[1] == pytest.approx(1.25) and np.array_equal(case.image, ref.image)
    np.testing.assert_allclose(case.affine, ref.affine, atol=1e-4)


def test_files_named_in_another_order_than_their_positions_are_sorted_by_position(tmp_path):
    vol = _volume()
    files = write_series(tmp_path / "dcm", vol, (1, 0, 0), (0, 1, 0), (0, 0, 2.0), (0, 0, 0))
    for i, f in enumerate(reversed(files)):  # file names now run against the positions
        f.rename(f.with_name(f"x{i:03d}.dcm"))
    one = load_case(tmp_path / "dcm")
    # LPS: columns run to the patient's left, rows to posterior, slices to superior; the
    # display runs right to left, superior to inferior, anterior to posterior
    want = (np.asarray(vol, np.int32) - 1024).transpose(0, 2, 1)[:, ::-1, :]
    assert np.array_equal(np.asarray(one.image, np.int32), want)
    z = [float(one.affine[2, 3] + one.affine[2, 1] * j) for j in range(one.shape[1])]
    assert z[0] == pytest.approx(16.0) and z[-1] == pytest.approx(0.0)


def test_gantry_tilt_is_refused_with_the_angle(tmp_path):
    vol = _volume()
    pos = [np.array([0.0, 0.0, 0.0]) + k * np.array([0, 2.0 * np.tan(np.radians(15)), 2.0]) for k in range(9)]
    write_series(tmp_path / "dcm", vol, (1, 0, 0), (0, 1, 0), (0, 0, 2.0), (0, 0, 0), positions=pos)
    with pytest.raises(SpineIOError, match=r"15\.00 degrees off their normal \(gantry tilt\)"):
        load_case(tmp_path / "dcm")


def test_two_series_in_one_folder_are_listed_and_the_largest_opens(tmp_path):
    write_series(tmp_path / "dcm", _volume((20, 24, 9)), (1, 0, 0), (0, 1, 0), (0, 0, 2.0), (0, 0, 0),
                 series_number=3, uid_suffix="1", description="axial big")
    write_series(tmp_path / "dcm", _volume((16, 12, 5), seed=1), (0, 1, 0), (0, 0, -1), (2.0, 0, 0),
                 (-10, 0, 0), series_number=7, uid_suffix="0", description="sagittal small", modality="MR")
    (tmp_path / "dcm" / "notes.txt").write_text("not DICOM")
    found = dicom.scan(tmp_path / "dcm")
    assert [(s.number, s.orientation, s.frames) for s in found] == [(3, "axial", 9), (7, "sagittal", 5)]
    assert "#7 sagittal small: MR sagittal, 5 images of 16x12" == found[1].label()
    assert load_case(tmp_path / "dcm").shape == (20, 9, 24)
    small = dicom.read_series(tmp_path / "dcm", series=7)
    assert small.array.shape == (16, 12, 5)
    with pytest.raises(SpineIOError, match=r"no series '9' \(found: #3 axial big"):
        dicom.read_series(tmp_path / "dcm", series="9")


@pytest.mark.parametrize("n", range(1, 10))
def test_each_transfer_syntax_decodes_to_dcm2niix_reference(n):
    if not TS.is_dir():
        pytest.skip("../shared/realdata is not here")
    case = load_case(TS / "In" / f"{n}.dcm")
    ref = load_case(TS / "Ref" / f"{n}.nii")
    assert np.array_equal(case.image, ref.image) and case.image.dtype.isnative
    np.testing.assert_allclose(case.affine, ref.affine, atol=1e-4)
    ref_img = nib.load(TS / "Ref" / f"{n}.nii")  # and in the file's own order: a 35-slice mosaic
    vol = dicom.read_series(TS / "In" / f"{n}.dcm")
    assert vol.array.shape == (64, 64, 35) and np.array_equal(vol.array, np.asanyarray(ref_img.dataobj))
    np.testing.assert_allclose(vol.affine, ref_img.affine, atol=1e-4)


def test_labels_exported_from_a_dicom_case_open_on_its_dcm2niix_conversion(tmp_path, have_dcm2niix):
    from napari_spine import export_labels

    row, col, svec = GEOMETRIES["sagittal, right to left"]
    vol = _volume()
    write_series(tmp_path / "dcm", vol, row, col, svec, (12.0, -30.0, 80.0))
    case = load_case(tmp_path / "dcm")
    labels = np.zeros(case.shape, np.uint8)
    assert case.shape == (9, 24, 20)
    labels[1:4, 3:9, 2:8] = 22  # L3, off-centre
    labels[5:7, 10:14, 4:9] = 23
    labels[-1, 0, -1] = 24
    out = tmp_path / "seg.nii.gz"
    export_labels(case, labels, out)
    nii = dcm2niix(tmp_path / "dcm", tmp_path / "nii")[0]
    both = load_case(nii, out)  # refused unless the label file lies on the dcm2niix grid
    assert np.array_equal(both.labels, labels)
    from napari_spine.geometry import from_display

    ref = load_case(nii)  # the file holds the labels in dcm2niix's own voxel order
    assert np.array_equal(np.asanyarray(nib.load(out).dataobj), from_display(labels, ref.source.ornt))
    np.testing.assert_allclose(nib.load(out).affine, nib.load(nii).affine, atol=1e-4)
    # and back onto the DICOM case itself
    again = load_case(tmp_path / "dcm", out)
    assert np.array_equal(again.labels, labels)


# -- bad input ----------------------------------------------------------------------------
def _series(tmp_path, n=6):
    return write_series(tmp_path / "dcm", _volume((10, 8, n)), (1, 0, 0), (0, 1, 0), (0, 0, 2.0), (0, 0, 0))


def test_a_missing_slice_is_named(tmp_path):
    files = _series(tmp_path)
    files[3].unlink()
    with pytest.raises(SpineIOError, match=r"a missing slice between .*s1_002\.dcm and .*s1_004\.dcm"):
        load_case(tmp_path / "dcm")


def test_uneven_spacing_and_duplicates_are_refused(tmp_path):
    pos = [np.array([0, 0, z]) for z in (0.0, 2.0, 4.0, 6.7, 8.7, 10.7)]
    write_series(tmp_path / "a", _volume((10, 8, 6)), (1, 0, 0), (0, 1, 0), (0, 0, 2.0), (0, 0, 0), positions=pos)
    with pytest.raises(SpineIOError, match=r"uneven slice spacing \(2\.700 mm where the others are 2\.000 mm\)"):
        load_case(tmp_path / "a")
    pos = [np.array([0, 0, z]) for z in (0.0, 2.0, 2.0, 4.0)]
    write_series(tmp_path / "b", _volume((10, 8, 4)), (1, 0, 0), (0, 1, 0), (0, 0, 2.0), (0, 0, 0), positions=pos)
    with pytest.raises(SpineIOError, match="two images at one position"):
        load_case(tmp_path / "b")


def test_a_truncated_file_is_named(tmp_path):
    files = _series(tmp_path)
    data = files[2].read_bytes()
    files[2].write_bytes(data[:-100])
    with pytest.raises(SpineIOError, match=r"s1_002\.dcm: pixel data holds \d+ bytes; 8x10x1 images of 16 bits need 160"):
        load_case(tmp_path / "dcm")


def test_huge_declared_images_are_refused_before_any_allocation(tmp_path):
    files = _series(tmp_path, n=1)
    ds = pydicom.dcmread(files[0])
    ds.Rows, ds.Columns, ds.NumberOfFrames = 65535, 65535, 500  # 4 TB declared, a few bytes held
    ds.save_as(files[0])
    with pytest.raises(SpineIOError, match=r"s1_000\.dcm: pixel data holds 160 bytes"):
        load_case(tmp_path / "dcm")


def test_no_images_and_non_image_objects_are_reported(tmp_path):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.txt").write_text("x")
    with pytest.raises(SpineIOError, match="is a folder|no DICOM files"):
        load_case(tmp_path / "empty")
    with pytest.raises(SpineIOError, match="no DICOM files"):
        dicom.scan(tmp_path / "empty")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # a basic text SR
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    (tmp_path / "sr").mkdir()
    ds = FileDataset(str(tmp_path / "sr" / "r.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, "SR"
    ds.save_as(str(tmp_path / "sr" / "r.dcm"), enforce_file_format=True)
    with pytest.raises(SpineIOError, match=r"1 DICOM file\(s\), none of them an image \(skipped 1 non-image"):
        load_case(tmp_path / "sr")


def test_corrupt_compressed_pixel_data_is_an_error_naming_the_file(tmp_path):
    if not TS.is_dir():
        pytest.skip("../shared/realdata is not here")
    ds = pydicom.dcmread(TS / "In" / "9.dcm")  # JPEG 2000
    from pydicom.encaps import encapsulate, generate_frames

    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame[: len(frame) // 3]])  # the code stream cut short
    ds.save_as(tmp_path / "cut.dcm")
    with pytest.raises(SpineIOError, match=r"cut\.dcm: .*(cannot be decoded|cannot unpack)"):
        load_case(tmp_path / "cut.dcm")


def test_info_lists_the_series_and_opens_the_one_asked_for(tmp_path, capsys):
    import json

    from napari_spine.cli import main

    write_series(tmp_path / "dcm", _volume(), (1, 0, 0), (0, 1, 0), (0, 0, 2.0), (0, 0, 0))
    write_series(tmp_path / "dcm", _volume((16, 12, 5), seed=1), (0, 1, 0), (0, 0, -1), (2.0, 0, 0),
                 (-10, 0, 0), series_number=7, uid_suffix="0", description="sag", modality="MR")
    assert main(["info", str(tmp_path / "dcm"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["shape_display"] == [20, 9, 24] and [s["number"] for s in doc["dicom_series"]] == [3, 7]
    assert doc["dataset"] == "dicom" and doc["modality"] == "CT"
    assert main(["info", str(tmp_path / "dcm"), "--series", "7", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["shape_display"] == [5, 12, 16]
    assert main(["info", str(tmp_path / "dcm"), "--series", "9"]) == 2
    assert "no series '9'" in capsys.readouterr().err


def test_napari_reader_takes_dicom_files_and_folders_and_nothing_else(tmp_path):
    from napari_spine._napari._reader import get_reader

    files = write_series(tmp_path / "dcm", _volume(), (1, 0, 0), (0, 1, 0), (0, 0, 2.0), (0, 0, 0))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "a.txt").write_text("x")
    assert get_reader(str(tmp_path / "other")) is None
    for source in (tmp_path / "dcm", files[0]):
        reader = get_reader(str(source))
        assert reader is not None
        layers = reader(str(source))
        assert layers[0][2] == "image" and layers[0][0].shape[0] == 20
    assert get_reader(str(tmp_path / "dcm"))(str(tmp_path / "dcm"))[0][0].shape == (20, 9, 24)


def test_stored_bits_signedness_and_rescaling_are_the_standards(tmp_path):
    files = write_series(tmp_path / "a", _volume((6, 5, 3)), (1, 0, 0), (0, 1, 0), (0, 0, 2.0), (0, 0, 0))
    rng = np.random.default_rng(5)
    want = []
    for k, f in enumerate(files):  # 12 of 16 bits stored, signed, junk in the 4 unused high bits
        ds = pydicom.dcmread(f)
        vals = rng.integers(-2048, 2048, (5, 6)).astype(np.int16)
        junk = (rng.integers(0, 16, vals.shape).astype(np.uint16) << 12)
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 1
        ds.PixelData = ((vals.astype(np.uint16) & 0x0FFF) | junk).tobytes()
        ds.RescaleSlope, ds.RescaleIntercept = "0.5", f"{k - 3}"
        ds.save_as(f)
        want.append(vals.astype(np.float32) * 0.5 + (k - 3))
    vol = dicom.read_series(tmp_path / "a")
    assert vol.array.dtype == np.float32
    expected = np.stack([w.T for w in want], -1)[:, ::-1, :]  # (columns, rows bottom-up, slices)
    np.testing.assert_array_equal(vol.array, expected)


def test_big_endian_wide_range_and_colour_series(tmp_path):
    from pydicom.uid import ExplicitVRBigEndian

    vol = _volume((6, 5, 3))
    vol[0, 0, :] = 60000  # 60000 - 1024 does not fit int16
    files = write_series(tmp_path / "be", vol, (1, 0, 0), (0, 1, 0), (0, 0, 2.0), (0, 0, 0))
    for k, f in enumerate(files):
        ds = pydicom.dcmread(f)
        ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
        ds.PixelData = np.ascontiguousarray(vol[:, :, k].T).astype(">u2").tobytes()
        pydicom.dcmwrite(f, ds, implicit_vr=False, little_endian=False,
                         force_encoding=True)
    got = dicom.read_series(tmp_path / "be").array
    assert got.dtype == np.int32 and got.dtype.isnative
    np.testing.assert_array_equal(got, (vol.astype(np.int32) - 1024)[:, ::-1, :])
    rgb = write_series(tmp_path / "rgb", _volume((6, 5, 2)), (1, 0, 0), (0, 1, 0), (0, 0, 2.0), (0, 0, 0))
    ds = pydicom.dcmread(rgb[1])
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = bytes(5 * 6 * 3)
    ds.save_as(rgb[1])
    with pytest.raises(SpineIOError, match=r"s1_001\.dcm: a colour image \(RGB, 3 samples per pixel\)"):
        load_case(tmp_path / "rgb")


# -- DICOM SEG out --------------------------------------------------------------------------
def test_seg_round_trip_names_codes_and_masks(tmp_path):
    hd = pytest.importorskip("highdicom")
    from napari_spine.anatomy import ontology
    from napari_spine.io.dicomseg import export_seg

    row, col, svec = GEOMETRIES["sagittal, right to left"]
    write_series(tmp_path / "dcm", _volume(), row, col, svec, (12.0, -30.0, 80.0))
    case = load_case(tmp_path / "dcm")
    labels = np.zeros(case.shape, np.uint8)
    l3, l3l4, canal = (ontology.by_name(n).id for n in ("L3", "L3/L4", "Spinal canal"))
    assert case.shape == (9, 24, 20)
    labels[1:4, 3:9, 2:8] = l3
    labels[5:7, 10:14, 4:9] = l3l4
    labels[-1, 0, -1] = canal  # one voxel, in a corner
    res = export_seg(case, labels, tmp_path / "seg.dcm")
    assert sorted(res.segments.values()) == ["L3", "L3/L4", "Spinal canal"]
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in case.metadata["source_files"]]
    uids = [str(ds.SOPInstanceUID) for ds in sources]
    assert {str(r.ReferencedSOPInstanceUID) for r in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence} <= set(uids)
    names = {int(s.SegmentNumber): str(s.SegmentLabel) for s in seg.SegmentSequence}
    codes = {str(s.SegmentLabel): str(s.SegmentedPropertyTypeCodeSequence[0].CodeValue) for s in seg.SegmentSequence}
    from pydicom.sr.codedict import codes as dicom_codes

    assert codes == {"L3": dicom_codes.SCT.L3Vertebra.value, "L3/L4": dicom_codes.SCT.L3L4Disc.value,
                     "Spinal canal": "61853006"}  # SNOMED CT "vertebral canal"
    # every segment's mask, read back by highdicom and put in display order, is the label's
    pixels = seg.get_pixels_by_source_instance(uids, combine_segments=False)  # (slice, row, col, segment)
    for k in range(pixels.shape[-1]):
        number = k + 1
        frames = pixels[..., k].astype(bool)  # (slice, row top-down, column)
        file_order = frames.transpose(2, 1, 0)[:, ::-1, :]
        from napari_spine.geometry import to_display

        mask = to_display(file_order, case.source.ornt)
        assert np.array_equal(mask, labels == ontology.by_name(names[number]).id), names[number]


def test_seg_export_refuses_what_it_cannot_reference_and_verifies_what_it_wrote(tmp_path, monkeypatch):
    hd = pytest.importorskip("highdicom")
    from napari_spine import ExportError, make_phantom
    from napari_spine.io.dicomseg import export_seg

    with pytest.raises(ExportError, match="needs a case opened from DICOM"):
        export_seg(make_phantom((10, 20, 12), levels=("L3", "L4")), None, tmp_path / "a.dcm")
    if TS.is_dir():
        with pytest.raises(ExportError, match="Siemens mosaic"):
            mosaic = load_case(TS / "In" / "1.dcm")
            export_seg(mosaic, np.ones(mosaic.shape, np.uint8), tmp_path / "m.dcm")
    write_series(tmp_path / "dcm", _volume(), (1, 0, 0), (0, 1, 0), (0, 0, 2.0), (0, 0, 0))
    case = load_case(tmp_path / "dcm")
    with pytest.raises(ExportError, match="the labels are empty"):
        export_seg(case, np.zeros(case.shape, np.uint8), tmp_path / "e.dcm")
    labels = np.zeros(case.shape, np.uint8)
    labels[3:9, 2:5, 4:12] = 22
    real = hd.seg.Segmentation.save_as

    def flipping(self, path, *args, **kwargs):  # the disk keeps a different last frame
        real(self, path, *args, **kwargs)
        data = bytearray(Path(path).read_bytes())
        data[-3] ^= 0xFF
        Path(path).write_bytes(bytes(data))

    monkeypatch.setattr(hd.seg.Segmentation, "save_as", flipping)
    with pytest.raises(ExportError, match="verification failed|cannot be read back"):
        export_seg(case, labels, tmp_path / "v.dcm")
    assert not (tmp_path / "v.dcm").exists() and not list(tmp_path.glob("*.part*"))


@pytest.mark.parametrize("name", ["oblique axial, 12 degrees", "sagittal, right to left"])
def test_an_enhanced_multiframe_object_reads_like_its_classic_series(tmp_path, name):
    hd = pytest.importorskip("highdicom")
    from pydicom.uid import generate_uid

    row, col, svec = GEOMETRIES[name]
    files = write_series(tmp_path / "classic", _volume(), row, col, svec, (-40.0, 25.5, 110.25))
    sources = []
    for f in files:
        ds = pydicom.dcmread(f)
        ds.KVP, ds.ConvolutionKernel, ds.ImageType = "120", "B30", ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ContentDate, ds.ContentTime, ds.AcquisitionNumber = "20260101", "120000", 1
        sources.append(ds)
    rng = np.random.default_rng(0)
    sources = [sources[i] for i in rng.permutation(len(sources))]  # frames in no particular order
    mf = hd.legacy.LegacyConvertedEnhancedCTImage(sources, series_instance_uid=generate_uid(), series_number=5,
                                                  sop_instance_uid=generate_uid(), instance_number=1)
    (tmp_path / "mf").mkdir()
    mf.save_as(tmp_path / "mf" / "mf.dcm")
    classic, multi = dicom.read_series(tmp_path / "classic"), dicom.read_series(tmp_path / "mf" / "mf.dcm")
    assert multi.array.shape == classic.array.shape and multi.meta["multiframe"]
    assert np.array_equal(multi.array, classic.array) and multi.array.dtype == classic.array.dtype
    np.testing.assert_allclose(multi.affine, classic.affine, atol=1e-4)


def test_a_folder_of_series_is_a_dataset_for_the_panel_and_the_batch(tmp_path):
    pytest.importorskip("torch")
    import nibabel as nib

    from helpers import sign_model_file
    from napari_spine import batch
    from napari_spine.datasets import open_dataset

    root = tmp_path / "export"
    write_series(root / "patient1" / "ct", _volume(), (1, 0, 0), (0, 1, 0), (0, 0, 2.0), (0, 0, 0),
                 series_number=3, uid_suffix="1", description="axial bone")
    write_series(root / "patient2" / "mr", _volume((16, 12, 5), seed=1), (0, 1, 0), (0, 0, -1), (2.0, 0, 0),
                 (-10, 0, 0), series_number=7, uid_suffix="2", description="sag T2", modality="MR")
    ds = open_dataset(root)
    assert ds.kind == "dicom" and [c.case_id for c in ds.cases] == ["ct_S3", "mr_S7"]
    assert ds.cases[1].metadata["description"] == "sag T2" and ds.cases[1].metadata["images"] == 5
    case = ds.load_case("mr_S7")
    assert case.dataset == "dicom" and case.modality == "MR-T2" and case.shape == (5, 12, 16)
    model = str(sign_model_file(tmp_path / "sign.ts", patch_size=[8, 8, 8],
                                labels={"0": "background", "1": "vertebral body"},
                                normalization={"scheme": "window", "lower": -100, "upper": 1500}))
    res = batch.run("predict", root, tmp_path / "out", workers=0, model=model, device="cpu",
                    trust_model=True, progress=lambda m: None)
    assert res.ok and len(res.rows) == 2
    written = sorted((tmp_path / "out").rglob("*.nii.gz"))
    assert written, "no predictions written"
    # each prediction lies on its series' grid (the dcm2niix grid)
    for f in written:
        key = "ct_S3" if "ct_S3" in str(f) else "mr_S7"
        src = ds.load_case(key)
        np.testing.assert_allclose(nib.load(f).affine, src.source.affine, atol=1e-4)
    again = batch.run("predict", root, tmp_path / "out", workers=0, model=model, device="cpu",
                      trust_model=True, progress=lambda m: None)
    assert sorted(again.reused) == ["ct_S3", "mr_S7"]
    # one image of a series rewritten in place (same name, same size): that case is computed again
    f = sorted((root / "patient2" / "mr").glob("*.dcm"))[2]
    ds2 = pydicom.dcmread(f)
    ds2.PixelData = bytes(len(ds2.PixelData))
    ds2.save_as(f)
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    third = batch.run("predict", root, tmp_path / "out", workers=0, model=model, device="cpu",
                      trust_model=True, progress=lambda m: None)
    assert third.reused == ["ct_S3"] and third.computed == ["mr_S7"]


def test_a_zip_of_a_series_opens_like_its_folder_and_exports_seg(tmp_path, monkeypatch):
    import zipfile

    files = write_series(tmp_path / "dcm", _volume(), (1, 0, 0), (0, 1, 0), (0, 0, 2.0), (0, 0, 0))
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("study/", "")
        z.writestr("study/README.txt", "not DICOM")
        z.writestr("__MACOSX/study/._s1_000.dcm", files[0].read_bytes())
        for f in reversed(files):
            z.write(f, f"study/series/{f.name}")
    folder, zipped = load_case(tmp_path / "dcm"), load_case(archive)
    assert zipped.case_id == "study" and np.array_equal(zipped.image, folder.image)
    np.testing.assert_allclose(zipped.affine, folder.affine, atol=1e-9)
    assert zipped.metadata["source_files"][0].startswith(f"{archive}::study/series/")
    from napari_spine._napari._reader import get_reader

    assert get_reader(str(archive)) is not None
    if __import__("importlib").util.find_spec("highdicom"):
        from napari_spine.io.dicomseg import export_seg

        labels = np.zeros(zipped.shape, np.uint8)
        labels[3:9, 2:5, 4:12] = 22
        assert export_seg(zipped, labels, tmp_path / "seg.dcm").segments == {1: "L3"}
    monkeypatch.setattr(dicom, "MAX_MEMBER_BYTES", 100)  # every member now too large to read
    with pytest.raises(SpineIOError, match="no DICOM files"):
        dicom.scan(archive)
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(SpineIOError, match=r"bad\.zip: not a readable zip archive"):
        dicom.scan(tmp_path / "bad.zip")


def test_cspineseg_pairs_each_nifti_with_the_dicom_series_of_its_grid(tmp_path, have_dcm2niix):
    import gzip

    from napari_spine.datasets import open_dataset

    root = tmp_path / "cspineseg"
    row, col, svec = GEOMETRIES["sagittal, right to left"]
    write_series(root / "dicom" / "593973-000001" / "s3", _volume(), row, col, svec, (12.0, -30.0, 80.0),
                 series_number=3, uid_suffix="1", modality="MR", description="SAG T2")
    write_series(root / "dicom" / "593973-000002" / "s5", _volume((20, 24, 7), seed=3), row, col, svec,
                 (12.0, -30.0, 80.0), series_number=5, uid_suffix="2", modality="MR", description="SAG T2")
    (root / "annotation").mkdir(parents=True)
    (root / "segmentation").mkdir()
    stems = ["593973-000001_Study-MR-1_Series-3", "593973-000002_Study-MR-2_Series-5", "593973-000003_Study-MR-3_Series-2"]
    for stem, folder in zip(stems[:2], ("593973-000001/s3", "593973-000002/s5")):
        nii = dcm2niix(root / "dicom" / folder, tmp_path / "conv" / stem)[0]
        img = nib.load(nii)
        (root / "annotation" / f"{stem}.nii.gz").write_bytes(gzip.compress(nii.read_bytes()))  # dcm2niix's file
        mask = np.zeros(img.shape, np.uint8)
        mask[2:6, 3:9, 1:4] = 1
        mask[10:12, 5:8, 2:5] = 2
        nib.save(nib.Nifti1Image(mask, img.affine), root / "segmentation" / f"{stem}_SEG.nii.gz")
    # a third case whose NIfTI matches no series (shifted by 1 mm)
    img = nib.load(root / "annotation" / f"{stems[0]}.nii.gz")
    moved = img.affine.copy()
    moved[0, 3] += 1.0
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj), moved), root / "annotation" / f"{stems[2]}.nii.gz")
    ds = open_dataset(root)
    assert ds.kind == "cspineseg"
    by_id = {c.case_id: c for c in ds.cases}
    assert set(by_id[stems[0]].images) == {"T2 sag", "DICOM"} and set(by_id[stems[1]].images) == {"T2 sag", "DICOM"}
    assert by_id[stems[0]].images["DICOM"].endswith("593973-000001/s3") and "DICOM" not in by_id[stems[2]].images
    assert by_id[stems[1]].images["DICOM"].endswith("593973-000002/s5")  # same affine, 7 slices, not 9
    nifti, series = ds.load_case(stems[0]), ds.load_case(stems[0], "DICOM")
    assert series.metadata["dicom_identifiers"] and series.source.path.endswith("s3")
    assert np.array_equal(series.image, nifti.image) and np.array_equal(series.labels, nifti.labels)
    assert (series.labels > 0).sum() > 0
    assert ds.load_case(stems[2], "DICOM").source.path.endswith(".nii.gz")  # nothing to pair: the NIfTI


def test_each_of_two_series_in_one_folder_equals_its_dcm2niix_file(tmp_path, have_dcm2niix):
    write_series(tmp_path / "dcm", _volume(), (1, 0, 0), (0, 1, 0), (0, 0, 2.0), (0, 0, 0),
                 series_number=3, uid_suffix="1", description="axial")
    write_series(tmp_path / "dcm", _volume((16, 12, 5), seed=1), (0, 1, 0), (0, 0, -1), (2.0, 0, 0),
                 (-10, 0, 0), series_number=7, uid_suffix="0", description="sagittal", modality="MR")
    converted = dcm2niix(tmp_path / "dcm", tmp_path / "nii")  # one file per series, named %s_%d
    assert [f.name for f in converted] == ["3_axial.nii", "7_sagittal.nii"]
    for number, f in zip((3, 7), converted):
        vol, ref = dicom.read_series(tmp_path / "dcm", series=number), nib.load(f)
        assert np.array_equal(vol.array, np.asanyarray(ref.dataobj)), number
        np.testing.assert_allclose(vol.affine, ref.affine, atol=1e-4)


def test_seg_export_of_a_series_whose_scanner_left_the_uids_blank(tmp_path):
    """A real scanner series with blank Study/Series/SOP Instance/SOP Class UIDs ("cannot build
    the DICOM SEG ('')" before): the SEG is written with generated identifiers, says so in its
    description and in the result, and its masks read back through them."""
    hd = pytest.importorskip("highdicom")
    from napari_spine.io.dicomseg import export_seg

    row, col, svec = GEOMETRIES["sagittal, right to left"]
    files = write_series(tmp_path / "dcm", _volume(), row, col, svec, (12.0, -30.0, 80.0))
    for f in files:
        ds = pydicom.dcmread(f)
        ds.StudyInstanceUID = ds.SeriesInstanceUID = ds.SOPInstanceUID = ds.SOPClassUID = ""
        ds.save_as(f)
    case = load_case(tmp_path / "dcm")
    labels = np.zeros(case.shape, np.uint8)
    labels[1:4, 3:9, 2:8] = 22
    res = export_seg(case, labels, tmp_path / "seg.dcm")
    assert res.generated == ("study UID", "series UID", f"{len(files)} image UIDs", "SOP class")
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    assert str(seg.SeriesDescription).endswith("; source UIDs generated")
    refs = [str(r.ReferencedSOPInstanceUID) for r in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence]
    assert len(set(refs)) == len(refs) and all(refs)
    assert str(seg.ReferencedSeriesSequence[0].SeriesInstanceUID)
    assert int(np.asarray(seg.get_pixels_by_source_instance(refs, combine_segments=True)).sum()) > 0
    for f in files:  # the source files themselves are not changed
        assert pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID == ""
