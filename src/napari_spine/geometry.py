"""Orientation and display geometry: the one place that states the display convention.

Display convention
------------------
Every 3-D volume is shown with voxel axes ordered **(L, I, P)** (nibabel axis codes:
the direction in which each index increases):

- axis 0 runs from the patient's right to left: napari's slider steps through
  **sagittal** slices;
- axis 1 runs from superior to inferior: row 0 is the top of the screen, so
  **superior is at the top**;
- axis 2 runs from anterior to posterior: the patient faces the **left** of the screen,
  as in radiology PACS sagittal views.

So napari's default 2-D view of any 3-D case is a sagittal slice with superior at the
top. The (L, I, P) frame has the same handedness as RAS+ (determinant +1), so 3-D
renderings are not mirrored.

Reorientation is a pure permutation/flip of array axes (nibabel ``io_orientation`` /
``apply_orientation``): the displayed array is a *view* of the loaded data, nothing is
resampled, and the inverse transform restores the file's own voxel order exactly.

napari only ever receives a diagonal ``scale`` (voxel sizes, mm) and a ``translate``:
the world position of voxel (0, 0, 0) in the display frame, whose axes are
(-x, -z, -y) of RAS+ millimetres. For oblique acquisitions the rotation is dropped for
display only (with a warning); the file's affine is kept and written back on export.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from nibabel.affines import apply_affine, voxel_sizes
from nibabel.orientations import (
    aff2axcodes,
    apply_orientation,
    axcodes2ornt,
    inv_ornt_aff,
    io_orientation,
    ornt_transform,
)

from .errors import GeometryError

__all__ = [
    "DISPLAY_AXCODES",
    "DisplayTransform",
    "axcodes",
    "check_affine",
    "display_transform",
    "from_display",
    "obliquity_degrees",
    "orientation_to_display",
    "reoriented_affine",
    "to_display",
    "voxel_to_world",
    "world_to_voxel",
]

#: Axis codes of every displayed volume (see the module docstring).
DISPLAY_AXCODES: tuple[str, str, str] = ("L", "I", "P")

# RAS+ world -> display-frame world: u = (-x, -z, -y)
_RAS_TO_DISPLAY = np.array([[-1.0, 0, 0], [0, 0, -1.0], [0, -1.0, 0]])

#: Angle (degrees) above which an affine is called oblique.
OBLIQUE_TOLERANCE_DEG = 0.01


@dataclass(frozen=True,
           slots=True)  # mutation-equivalent: memory layout only
class DisplayTransform:
    """What napari receives for a displayed volume: diagonal scale and a translation."""

    scale: tuple[float, float, float]
    translate: tuple[float, float, float]


def check_affine(affine: np.ndarray, source: str = "<affine>") -> np.ndarray:
    """Return ``affine`` as a float64 4x4 array, or raise naming ``source``.

    Rejects NaN/inf entries, a singular 3x3 part and a bad last row.
    """
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4):
        raise GeometryError(f"{source}: affine has shape {a.shape}, expected (4, 4)")
    if not np.all(np.isfinite(a)):
        raise GeometryError(f"{source}: affine contains NaN or infinite values:\n{a}")
    if not np.allclose(a[3], [0, 0, 0, 1]):
        raise GeometryError(f"{source}: affine's last row is {a[3]}, expected [0 0 0 1]")
    m = a[:3, :3]
    # mutation-equivalent[0 -> 1]: row norms: the determinant test rejects the same affines
    zooms = np.linalg.norm(m, axis=0)
    # mutation-equivalent[Lt -> LtE]: a float exactly at the bound
    if np.any(zooms < 1e-9) or abs(np.linalg.det(m)) < 1e-12 * max(np.prod(zooms), 1e-300):
        raise GeometryError(f"{source}: affine is singular (zero voxel size or collinear axes):\n{a}")
    return a


def axcodes(affine: np.ndarray) -> tuple[str, str, str]:
    """Nearest axis codes of an affine, e.g. ``('P', 'I', 'R')``."""
    return tuple(aff2axcodes(affine))  # type: ignore[return-value]


def orientation_to_display(affine: np.ndarray) -> np.ndarray:
    """nibabel orientation transform from a file's voxel axes to the display axes.

    >>> import numpy as np
    >>> orientation_to_display(np.eye(4)).tolist()   # RAS -> (L, I, P)
    [[0.0, -1.0], [2.0, -1.0], [1.0, -1.0]]
    """
    return ornt_transform(io_orientation(affine), axcodes2ornt(DISPLAY_AXCODES))


def to_display(array: np.ndarray, ornt: np.ndarray) -> np.ndarray:
    """Permute/flip a file-ordered array into display order (a view, never a copy)."""
    return apply_orientation(array, ornt)


def inverse_ornt(ornt: np.ndarray) -> np.ndarray:
    """The orientation transform that undoes ``ornt``."""
    ornt = np.asarray(ornt, dtype=float)
    inv = np.empty_like(ornt)
    for in_ax, (out_ax, flip) in enumerate(ornt):
        inv[int(out_ax)] = (in_ax, flip)
    return inv


def from_display(array: np.ndarray, ornt: np.ndarray) -> np.ndarray:
    """Undo :func:`to_display`: display-ordered array back to the file's voxel order (a view)."""
    return apply_orientation(array, inverse_ornt(ornt))


def reoriented_affine(affine: np.ndarray, ornt: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Voxel-to-world affine of the display-ordered array (``shape`` is the file's shape)."""
    # mutation-equivalent[3 -> 4]: nibabel reads only the first three sizes
    return np.asarray(affine, dtype=np.float64) @ inv_ornt_aff(ornt, shape[:3])


def obliquity_degrees(affine: np.ndarray) -> float:
    """Largest angle (degrees) between a voxel axis and its nearest world axis."""
    rows = np.asarray(affine, dtype=np.float64)[:3]  # mutation-equivalent[3 -> 4]: a zero row
    m = rows[:, :3]
    cols = m / np.linalg.norm(m, axis=0)
    cosines = np.clip(np.max(np.abs(cols), axis=0), -1.0, 1.0)
    return float(np.degrees(np.arccos(cosines)).max())


def display_transform(display_affine: np.ndarray) -> DisplayTransform:
    """Diagonal scale/translate for napari from the affine of a display-ordered array.

    Exact for axis-aligned affines; for oblique ones the voxel sizes are kept and the
    rotation is dropped (voxel 0 stays in place).
    """
    a = np.asarray(display_affine, dtype=np.float64)
    scale = voxel_sizes(a)
    translate = _RAS_TO_DISPLAY @ a[:3, 3]
    return DisplayTransform(
        scale=tuple(float(s) for s in scale),  # type: ignore[arg-type]
        translate=tuple(float(t) for t in translate),  # type: ignore[arg-type]
    )


def display_affine_from_transform(scale, translate) -> np.ndarray:
    """Inverse of :func:`display_transform` for axis-aligned data (RAS+ affine of the grid)."""
    aff = np.eye(4)
    aff[:3, :3] = _RAS_TO_DISPLAY.T @ np.diag(np.asarray(scale, dtype=float))
    aff[:3, 3] = _RAS_TO_DISPLAY.T @ np.asarray(translate, dtype=float)
    return aff


def voxel_to_world(affine: np.ndarray, ijk: np.ndarray) -> np.ndarray:
    """``(N, 3)`` voxel coordinates -> ``(N, 3)`` world RAS+ mm."""
    return apply_affine(affine, np.asarray(ijk, dtype=np.float64))


def world_to_voxel(affine: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    """``(N, 3)`` world RAS+ mm -> ``(N, 3)`` voxel coordinates."""
    return apply_affine(np.linalg.inv(affine), np.asarray(xyz, dtype=np.float64))


def display_index_to_file_index(ijk: np.ndarray, ornt: np.ndarray, file_shape) -> np.ndarray:
    """Map ``(N, 3)`` display-array voxel coordinates to the file's voxel coordinates."""
    ijk = np.atleast_2d(np.asarray(ijk, dtype=np.float64))
    out = np.empty_like(ijk)
    for in_ax, (out_ax, flip) in enumerate(np.asarray(ornt)):
        c = ijk[:, int(out_ax)]
        # mutation-equivalent[Lt -> LtE, 0 -> 1]: flips are +1 or -1
        out[:, in_ax] = (file_shape[in_ax] - 1 - c) if flip < 0 else c
    return out


def file_index_to_display_index(ijk: np.ndarray, ornt: np.ndarray, file_shape) -> np.ndarray:
    """Inverse of :func:`display_index_to_file_index`."""
    ijk = np.atleast_2d(np.asarray(ijk, dtype=np.float64))
    out = np.empty_like(ijk)
    for in_ax, (out_ax, flip) in enumerate(np.asarray(ornt)):
        c = ijk[:, in_ax]
        # mutation-equivalent[Lt -> LtE, 0 -> 1]: flips are +1 or -1
        out[:, int(out_ax)] = (file_shape[in_ax] - 1 - c) if flip < 0 else c
    return out
