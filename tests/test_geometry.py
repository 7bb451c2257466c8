"""Exact round trips of affine and labels for every axis order and flip, and obliques."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from nibabel.orientations import aff2axcodes, axcodes2ornt, ornt_transform

from helpers import all_axcodes, save_nifti
from napari_spine import export_labels, load_case, make_phantom
from napari_spine.geometry import (
    DISPLAY_AXCODES,
    display_index_to_file_index,
    display_transform,
    file_index_to_display_index,
    from_display,
    reoriented_affine,
    to_display,
    voxel_to_world,
)

AXCODES = all_axcodes()


def test_there_are_48_distinct_orientations():
    assert len(set(AXCODES)) == 48


def _affine_for(codes, spacing=(0.8, 1.3, 2.1), origin=(-30.5, 12.25, 40.0)):
    """An affine whose voxel axes point along ``codes`` (RAS world)."""
    ornt = axcodes2ornt(codes)
    aff = np.zeros((4, 4))
    aff[3, 3] = 1
    for i, (ax, flip) in enumerate(ornt):
        aff[int(ax), i] = flip * spacing[i]
    aff[:3, 3] = origin
    assert aff2axcodes(aff) == tuple(codes)
    return aff


@pytest.mark.parametrize("codes", AXCODES, ids=["".join(c) for c in AXCODES])
def test_roundtrip_exact_for_every_axis_order(tmp_path, codes):
    rng = np.random.default_rng(abs(hash(codes)) % 2**32)
    shape = (7, 9, 11)
    img = rng.integers(-1000, 2000, size=shape).astype(np.int16)
    lab = rng.choice(np.array([0, 20, 21, 22, 120, 121], dtype=np.uint8), size=shape)
    aff = _affine_for(codes)
    ip = save_nifti(tmp_path / "img.nii.gz", img, aff)
    lp = save_nifti(tmp_path / "img_seg.nii.gz", lab, aff)

    case = load_case(ip, lp)
    assert case.source.axcodes == tuple(codes)
    assert aff2axcodes(case.affine) == DISPLAY_AXCODES
    assert case.image.dtype == np.int16 and case.labels.dtype == np.uint8
    # display arrays are views of the file arrays
    assert np.array_equal(from_display(case.image, case.source.ornt), img)
    # every voxel keeps its world position through reorientation
    ijk_disp = np.array([[1, 2, 3], [6, 5, 4], [0, 0, 0]], dtype=float)
    ijk_file = display_index_to_file_index(ijk_disp, case.source.ornt, case.source.shape)
    assert np.allclose(voxel_to_world(case.affine, ijk_disp), voxel_to_world(aff, ijk_file))
    assert np.allclose(file_index_to_display_index(ijk_file, case.source.ornt, case.source.shape), ijk_disp)
    for (a, b, c), (i, j, k) in zip(ijk_disp.astype(int), ijk_file.astype(int)):
        assert case.labels[a, b, c] == lab[i, j, k]

    out = tmp_path / "out.nii.gz"
    res = export_labels(case, case.labels, out)
    back = nib.load(out)
    assert np.allclose(back.affine, aff, atol=1e-6, rtol=0)
    assert back.header.get_data_dtype() == np.uint8
    assert np.array_equal(np.asanyarray(back.dataobj), lab)
    assert res.counts == {int(v): int((lab == v).sum()) for v in np.unique(lab) if v}


@pytest.mark.parametrize("codes", AXCODES[::7], ids=["".join(c) for c in AXCODES[::7]])
def test_napari_world_is_a_signed_permutation_of_ras(tmp_path, codes):
    """The diagonal display transform places every voxel at (-x, -z, -y) of its RAS position."""
    aff = _affine_for(codes)
    case = load_case(save_nifti(tmp_path / "x.nii.gz", np.zeros((7, 5, 3), np.int16), aff))
    d = display_transform(case.affine)
    ijk = np.array([[0, 0, 0], [3, 1, 2], [6, 4, 2]], dtype=float)
    napari_world = np.asarray(d.translate) + ijk * np.asarray(d.scale)
    ras = voxel_to_world(case.affine, ijk)
    assert np.allclose(napari_world, np.c_[-ras[:, 0], -ras[:, 2], -ras[:, 1]])


def test_oblique_affine_displays_axis_aligned_and_exports_rotation(tmp_path):
    aff = _affine_for(("P", "I", "R"))
    a = np.radians(17.0)
    rot = np.eye(4)
    rot[:3, :3] = [[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]
    oblique = rot @ aff
    lab = np.zeros((7, 9, 11), np.uint8)
    lab[2:5, 3:6, 4:9] = 22
    ip = save_nifti(tmp_path / "o.nii.gz", lab.astype(np.int16), oblique)
    lp = save_nifti(tmp_path / "o_seg.nii.gz", lab, oblique)
    case = load_case(ip, lp)
    assert case.source.oblique and 16.9 < case.source.obliquity_deg < 17.1
    assert any("oblique" in w for w in case.warnings)
    d = display_transform(case.affine)
    assert np.allclose(sorted(d.scale), sorted([0.8, 1.3, 2.1]))
    out = export_labels(case, case.labels, tmp_path / "o_out.nii.gz").path
    back = nib.load(out)
    assert np.allclose(back.affine, oblique, atol=1e-6)
    assert np.array_equal(np.asanyarray(back.dataobj), lab)


def test_views_not_copies():
    arr = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    ornt = ornt_transform(axcodes2ornt("PSR"), axcodes2ornt(DISPLAY_AXCODES))
    disp = to_display(arr, ornt)
    assert np.shares_memory(disp, arr)
    assert np.array_equal(from_display(disp, ornt), arr)
    # the display affine sends every display voxel where the file affine sends the same voxel
    file_aff = np.array([[0, 0, 2.0, 5], [-1.5, 0, 0, 7], [0, 3.0, 0, -2], [0, 0, 0, 1]])  # PSR-like
    disp_aff = reoriented_affine(file_aff, ornt, arr.shape)
    for ijk in np.ndindex(*disp.shape):
        file_ijk = display_index_to_file_index(np.array([ijk], float), ornt, arr.shape)[0]
        assert arr[tuple(int(v) for v in file_ijk)] == disp[ijk]  # the same voxel ...
        assert np.allclose(disp_aff @ [*ijk, 1], file_aff @ [*file_ijk, 1])  # ... at the same place


@pytest.mark.parametrize("codes", ["RAS", "LPS", "PIR", "PSR", "SAL", "IRP"])
def test_phantom_is_identical_in_display_space_whatever_the_file_order(codes):
    ref = make_phantom((20, 48, 32), levels=("L2", "L4"), axcodes="RAS", seed=5)
    other = make_phantom((20, 48, 32), levels=("L2", "L4"), axcodes=codes, seed=5)
    assert other.source.axcodes == tuple(codes)
    assert np.array_equal(ref.image, other.image)
    assert np.array_equal(ref.labels, other.labels)
    assert np.allclose(ref.affine, other.affine)


@pytest.mark.parametrize("codes", ["RAS", "PIR", "LPS", "ASL"])
def test_superior_is_at_the_top_and_anterior_on_the_left(codes):
    case = make_phantom((24, 96, 64), levels=("L1", "L4"), axcodes=codes, seed=1)
    rows = [np.argwhere(case.labels == v)[:, 1].mean() for v in (20, 21, 22, 23)]
    assert rows == sorted(rows), "lower levels must be further down the screen"
    body_col = np.argwhere(case.labels == 21)[:, 2].min()
    canal_col = np.argwhere(case.labels == 61)[:, 2].mean()
    assert body_col < canal_col, "the vertebral body must be left of (anterior to) the canal"
    # and the world agrees: moving down a row goes inferior, right a column goes posterior
    assert case.affine[2, 1] < 0 and case.affine[1, 2] < 0


def test_check_affine_refuses_singular_and_keeps_tiny_voxels():
    from napari_spine.errors import GeometryError
    from napari_spine.geometry import check_affine

    tiny = np.diag([1e-3, 2e-3, 5e-3, 1.0])  # micro-CT voxels: valid
    assert np.array_equal(check_affine(tiny), tiny)
    collinear = np.array([[1.0, 2.0, 0, 0], [0, 0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1]])  # axes 0 and 1 parallel
    zero = np.diag([1.0, 0.0, 1.0, 1.0])
    for bad, words in ((collinear, "singular"), (zero, "singular"),
                       (np.diag([1.0, 1, 1, 2]), "last row"), (np.full((4, 4), np.nan), "NaN")):
        with pytest.raises(GeometryError, match=words):
            check_affine(bad, "x.nii.gz")
    nearly = np.array([[1.0, 1.0, 0, 0], [0, 1e-13, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1]])
    with pytest.raises(GeometryError, match="singular"):  # det 1e-13 against zooms of about 1
        check_affine(nearly, "x.nii.gz")


def test_display_affine_from_transform_inverts_display_transform():
    from napari_spine.geometry import display_affine_from_transform, display_transform

    disp = np.array([[-0.7, 0, 0, 12.0], [0, 0, -2.5, 30.0], [0, -1.1, 0, -8.0], [0, 0, 0, 1]])
    t = display_transform(disp)
    assert t.scale == (0.7, 1.1, 2.5) and t.translate == (-12.0, 8.0, -30.0)
    back = display_affine_from_transform(t.scale, t.translate)
    assert back.shape == (4, 4) and np.array_equal(back, disp)
    with pytest.raises(AttributeError):  # what napari was given does not change under it
        t.scale = (1.0, 1.0, 1.0)


def test_obliquity_ignores_the_origin_and_a_fourth_axis():
    from napari_spine.geometry import obliquity_degrees, reoriented_affine

    aligned = np.diag([0.8, 1.0, 3.0, 1.0])
    aligned[:3, 3] = (40.0, -25.0, 90.0)  # far from any axis: not an axis of the grid
    assert obliquity_degrees(aligned) == 0.0
    t = np.radians(12.0)
    rot = aligned.copy()
    rot[:3, :3] = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]]) @ np.diag([0.8, 1.0, 3.0])
    assert obliquity_degrees(rot) == pytest.approx(12.0, abs=1e-9)
    ornt = axcodes2ornt(("L", "I", "P"))
    ornt = ornt_transform(axcodes2ornt(aff2axcodes(aligned)), ornt)
    # a 4-D file (time last): the display affine is that of its first three axes
    assert np.array_equal(reoriented_affine(aligned, ornt, (20, 30, 10, 5)),
                          reoriented_affine(aligned, ornt, (20, 30, 10)))


def test_obliquity_is_the_worst_voxel_axis_against_its_nearest_world_axis():
    from scipy.spatial.transform import Rotation

    from napari_spine.geometry import obliquity_degrees

    aff = np.eye(4)
    aff[:3, :3] = Rotation.random(random_state=1).as_matrix() @ np.diag([0.5, 1.0, 3.0])
    worst = 0.0
    for j in range(3):  # the definition, axis by axis: voxel axis j's angle to each world axis
        axis = aff[:3, j] / np.linalg.norm(aff[:3, j])
        nearest = min(np.degrees(np.arccos(min(1.0, abs(float(axis @ e))))) for e in np.eye(3))
        worst = max(worst, nearest)
    assert worst == pytest.approx(45.3785, abs=1e-3)  # the rows would say 47.03
    assert obliquity_degrees(aff) == pytest.approx(worst, abs=1e-9)
