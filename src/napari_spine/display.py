"""Display presets the panels and reports share: CT windows, automatic MR contrast, and the
anatomical planes of the display grid with their orientation letters."""

from __future__ import annotations

import numpy as np

__all__ = ["AXIS_LABELS", "CT_WINDOWS", "PLANES", "default_contrast", "edge_letters", "mr_contrast_limits",
           "plane_of", "view_caption", "window_limits"]

#: CT window presets as (width, level) in HU.
CT_WINDOWS: dict[str, tuple[float, float]] = {
    "bone": (1800.0, 400.0),
    "soft tissue": (400.0, 40.0),
    "spine soft tissue": (250.0, 50.0),
}


def window_limits(name: str) -> tuple[float, float]:
    """Contrast limits of a CT window preset.

    >>> window_limits("bone")
    (-500.0, 1300.0)
    """
    width, level = CT_WINDOWS[name]
    return (level - width / 2, level + width / 2)


def mr_contrast_limits(image: np.ndarray) -> tuple[float, float]:
    """0.5-99.5 percentile limits from a strided sample (about 1/64 of the voxels per axis)."""
    step = tuple(max(1, s // 64) for s in image.shape)
    sample = np.asarray(image[tuple(slice(None, None, st) for st in step)], dtype=np.float32)
    if sample.size == 0:
        return (0.0, 1.0)
    lo, hi = np.percentile(sample, [0.5, 99.5])
    if hi <= lo:
        hi = lo + 1.0
    return (float(lo), float(hi))


def default_contrast(modality: str, image: np.ndarray) -> tuple[float, float]:
    """The bone window for CT, automatic limits for everything else."""
    if modality == "CT":
        return window_limits("bone")
    return mr_contrast_limits(image)


# -- planes of the display grid ------------------------------------------------------------
#: The three anatomical planes as the (row, column) axes of the display grid, whose axes
#: point to the patient's left, inferior and posterior (:data:`geometry.DISPLAY_AXCODES`):
#: superior at the top of sagittal and coronal, anterior at the top of axial, anterior on
#: the left of sagittal, the patient's right on the viewer's left of axial and coronal
#: (the radiological convention).
PLANES: dict[str, tuple[int, int]] = {"sagittal": (1, 2), "axial": (2, 0), "coronal": (1, 0)}

#: The display axes as napari's sliders name them: the way each one runs.
AXIS_LABELS: tuple[str, str, str] = ("R→L", "S→I", "A→P")

#: The two ends of each display axis: (where the index starts, where it grows towards).
_ENDS = {"L": ("R", "L"), "I": ("S", "I"), "P": ("A", "P")}


def plane_of(displayed: tuple[int, int]) -> str | None:
    """The plane shown when the display grid's ``(row, column)`` axes are ``displayed``
    (either order), or None (not a 3-D spine grid)."""
    for name, axes in PLANES.items():
        if set(axes) == set(displayed):
            return name
    return None


def edge_letters(displayed: tuple[int, int], *, rows_down: bool = True,
                 columns_right: bool = True) -> dict[str, str]:
    """The patient directions at the four edges of a view whose rows and columns run along
    display axes ``displayed``: ``{"top", "bottom", "left", "right"}`` -> R/L, S/I or A/P.

    ``rows_down`` / ``columns_right``: the row index grows down the screen / the column index
    to the right (napari's default camera; False where the camera is flipped).

    >>> edge_letters(PLANES["axial"])
    {'top': 'A', 'bottom': 'P', 'left': 'R', 'right': 'L'}
    """
    from .geometry import DISPLAY_AXCODES

    row, col = (_ENDS[DISPLAY_AXCODES[a]] for a in displayed)
    top, bottom = row if rows_down else row[::-1]
    left, right = col if columns_right else col[::-1]
    return {"top": top, "bottom": bottom, "left": left, "right": right}


_WORDS = {"S": "superior", "I": "inferior", "A": "anterior", "P": "posterior",
          "R": "the patient's right", "L": "the patient's left"}


def view_caption(displayed: tuple[int, int], **camera: bool) -> str:
    """A sentence saying which plane a view shows and which way it faces, e.g.
    ``"Sagittal view: superior at the top, anterior on the left."`` (``camera``: the
    flips of :func:`edge_letters`)."""
    plane = plane_of(displayed)
    if plane is None:
        return "Not an anatomical plane of the display grid."
    e = edge_letters(displayed, **camera)
    return f"{plane.capitalize()} view: {_WORDS[e['top']]} at the top, {_WORDS[e['left']]} on the left."
