"""The anatomical planes of the display grid and their orientation letters, against the
display convention (axes to the patient's left, inferior, posterior)."""

import pytest

from napari_spine.display import PLANES, edge_letters, plane_of, view_caption


@pytest.mark.parametrize("plane, rows, cols", [
    ("sagittal", "SI", "AP"), ("axial", "AP", "RL"), ("coronal", "SI", "RL"),
])
def test_each_plane_faces_the_radiological_way(plane, rows, cols):
    letters = edge_letters(PLANES[plane])
    assert (letters["top"] + letters["bottom"], letters["left"] + letters["right"]) == (rows, cols)
    assert plane_of(PLANES[plane]) == plane == plane_of(PLANES[plane][::-1])


def test_a_flipped_camera_swaps_the_letters_and_rolled_axes_name_the_other_plane():
    assert edge_letters((1, 2), rows_down=False) == {"top": "I", "bottom": "S", "left": "A", "right": "P"}
    assert edge_letters((1, 2), columns_right=False)["left"] == "P"
    assert edge_letters((2, 1)) == {"top": "A", "bottom": "P", "left": "S", "right": "I"}
    assert plane_of((0, 0)) is None
    assert view_caption((2, 0)) == "Axial view: anterior at the top, the patient's right on the left."
    assert view_caption((1, 2)) == "Sagittal view: superior at the top, anterior on the left."


def test_ct_windows_are_width_and_level():
    from napari_spine.display import default_contrast, window_limits

    assert window_limits("bone") == (-500.0, 1300.0)  # W1800 / L400
    assert window_limits("soft tissue") == (-160.0, 240.0)  # W400 / L40
    assert window_limits("spine soft tissue") == (-75.0, 175.0)  # W250 / L50
    assert default_contrast("CT", None) == (-500.0, 1300.0)


def test_mr_limits_are_the_percentiles_of_a_strided_sample():
    import numpy as np

    from napari_spine.display import default_contrast, mr_contrast_limits

    # 128 voxels along the first axis: every 2nd slice is sampled (128 // 64); the slices hold
    # their own index, so the sample is the even numbers 0..126, 20 x 10 times each
    vol = np.broadcast_to(np.arange(128, dtype=np.int16)[:, None, None], (128, 20, 10))
    even = np.repeat(np.arange(0, 128, 2, dtype=float), 200)
    # numpy's linear percentile, worked out: rank p/100 * (n - 1) between sorted neighbours
    def pct(values, p):
        r = p / 100 * (len(values) - 1)
        lo = int(np.floor(r))
        return values[lo] + (r - lo) * (values[min(lo + 1, len(values) - 1)] - values[lo])
    lo, hi = mr_contrast_limits(vol)
    assert (lo, hi) == (pct(even, 0.5), pct(even, 99.5))
    assert hi == 126.0 and lo == 0.0  # odd slices (127) are not in the sample
    assert default_contrast("MR", vol) == (lo, hi)
    assert mr_contrast_limits(np.full((4, 5, 6), 7.0)) == (7.0, 8.0)  # flat: a one-wide window
    assert mr_contrast_limits(np.zeros((0, 5, 6))) == (0.0, 1.0)
    assert mr_contrast_limits(np.full((1, 1, 1), 5.0)) == (5.0, 6.0)  # one voxel is a sample
    small = np.arange(60.0).reshape(60, 1, 1)  # under 64: every voxel is sampled
    assert mr_contrast_limits(small) == (pct(np.arange(60.0), 0.5), pct(np.arange(60.0), 99.5))
