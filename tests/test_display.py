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
