"""Real spine CT/MRI crops (../shared/realdata): orientation, labels and exact export."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from napari_spine import export_labels, load_case
from napari_spine.geometry import DISPLAY_AXCODES, axcodes

FILES = {
    "tptbox_mri": ("sub-mri_label-6_T2w.nii.gz", "sub-mri_seg-vert_label-6_msk.nii.gz",
                   "sub-mri_seg-subreg_label-6_msk.nii.gz", (5, 6, 7)),
    "tptbox_ct": ("sub-ct_label-22_ct.nii.gz", "sub-ct_seg-vert_label-22_msk.nii.gz",
                  "sub-ct_seg-subreg_label-22_msk.nii.gz", (21, 22, 23)),
    "sct_cervical": ("t2_t2.nii.gz", "t2_t2_seg-manual_labeled.nii.gz", None, (2, 3, 4, 5)),
}


def _centroid(mask):
    return np.argwhere(mask).mean(axis=0)


@pytest.mark.parametrize("folder", list(FILES))
def test_levels_run_down_the_screen(realdata, folder):
    image, labels, _, levels = FILES[folder]
    case = load_case(realdata / folder / image, realdata / folder / labels)
    assert axcodes(case.affine) == DISPLAY_AXCODES
    ids = case.file_ids()  # the file's own ids (SCT: the cord's level), in display order
    rows = [_centroid(ids == v)[1] for v in levels]
    assert all(a < b for a, b in zip(rows, rows[1:])), f"superior must be at the top: {rows}"


@pytest.mark.parametrize("folder", ["tptbox_mri", "tptbox_ct"])
def test_vertebral_body_is_anterior_of_the_canal(realdata, folder):
    image, _, subreg, _ = FILES[folder]
    case = load_case(realdata / folder / image, realdata / folder / subreg)
    body = _centroid(np.isin(case.labels, (49, 50)))  # vertebral body (border + corpus)
    arch = _centroid(case.labels == 41)  # vertebral arch, behind the canal
    spinous = _centroid(case.labels == 42)  # spinous process
    assert body[2] < arch[2] < spinous[2], "anterior must be on the left in the sagittal view"
    assert abs(body[0] - spinous[0]) * case.spacing[0] < 10  # both near the midline


def _all_pairs(realdata):
    out = []
    for folder in sorted(p for p in realdata.iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.nii.gz"))
        images = [f for f in files if "seg" not in f.name and "msk" not in f.name]
        for img in images:
            out.append((img, None))
            for lab in files:
                if lab not in images and nib.load(lab).shape == nib.load(img).shape:
                    out.append((img, lab))
    return out


def test_every_real_file_round_trips_exactly(realdata, tmp_path):
    pairs = _all_pairs(realdata)
    assert len(pairs) >= 9
    for n, (img, lab) in enumerate(pairs):
        case = load_case(img, lab)
        src = nib.load(lab or img)
        labels = case.labels
        if labels is None:  # image only: export a mask so the geometry path is still exercised
            labels = np.zeros(case.shape, np.uint8)
            labels[case.shape[0] // 2, : case.shape[1] // 3, :] = 22
        out = export_labels(case, labels, tmp_path / f"out{n}.nii.gz")
        back = nib.load(out.path)
        assert np.allclose(back.affine, src.affine, atol=1e-6, rtol=0), (img, lab)
        got = np.asanyarray(back.dataobj)
        if lab is not None:
            expect = np.rint(np.asanyarray(src.dataobj)).astype(np.int64)
            assert np.array_equal(got.astype(np.int64), expect), (img, lab)
        else:
            assert got.sum() == labels.sum() and got.shape == src.shape[:3]


def test_real_image_dtypes_are_native(realdata):
    assert load_case(realdata / "tptbox_mri" / FILES["tptbox_mri"][0]).image.dtype == np.uint16
    assert load_case(realdata / "tptbox_ct" / FILES["tptbox_ct"][0]).image.dtype == np.int16


def _contrast(image, mask):
    """|mean inside - mean of a 2-voxel shell around| in units of the image's spread."""
    from scipy import ndimage

    img = image.astype(np.float32)
    shell = ndimage.binary_dilation(mask, iterations=2) & ~mask
    return abs(img[mask].mean() - img[shell].mean()) / img.std()


# structures with a clear edge in each image: T2 endplates (dark lines), CT bone, T2 cord in CSF
ANATOMY = {
    "tptbox_mri": ((205, 206, 207), ("ap_flip", "ap_roll", "si_flip", "si_roll")),
    "tptbox_ct": ((21, 22, 23), ("ap_flip", "ap_roll", "si_flip", "si_roll")),
    "sct_cervical": ((2, 3, 4, 5), ("ap_flip", "ap_roll", "si_flip")),  # the cord runs along S-I
}


@pytest.mark.parametrize("folder", list(FILES))
def test_reader_puts_labels_on_the_anatomy(realdata, folder):
    """Opened through the napari reader, the labels sit on the anatomy: the image contrast
    across their edge is far higher than across the edge of a flipped or shifted copy."""
    from napari_spine._napari._reader import read_nifti_layers

    image, labels, _, levels = FILES[folder]
    (img, ikw, ikind), (lab, lkw, lkind) = read_nifti_layers(
        [str(realdata / folder / image), str(realdata / folder / labels)])
    assert (ikind, lkind) == ("image", "labels")
    assert np.allclose(ikw["scale"], lkw["scale"]) and np.allclose(ikw["translate"], lkw["translate"])
    lab = lkw["metadata"]["napari_spine"]["case"].file_ids()  # SCT: the cord's levels
    rows = [_centroid(lab == v)[1] for v in levels]
    assert rows == sorted(rows)  # superior at the top
    ids, moves = ANATOMY[folder]
    mask = np.isin(lab, ids)
    wrong = {"ap_flip": [mask[:, :, ::-1]], "ap_roll": [np.roll(mask, 4, 2), np.roll(mask, -4, 2)],
             "si_flip": [mask[:, ::-1, :]], "si_roll": [np.roll(mask, 4, 1), np.roll(mask, -4, 1)]}
    true = _contrast(img, mask)
    for move in moves:
        for w in wrong[move]:
            assert true > 1.5 * _contrast(img, w), (folder, move)
