"""Landmark files onto a case: the project's own JSON / CSV and TPTBox POI JSON.

TPTBox (the SPINEPS toolbox) saves points of interest as a JSON list: a header (the grid:
``direction`` axis codes, ``zoom``, ``origin``, ``rotation``, ``shape``, and ``format``)
followed by the points, keyed by vertebra and by subregion ("Location") id:

- ``format: "POI"``: ``{vertebra: {location: [x, y, z]}}`` in voxels of the header's grid;
- ``format: "docker"`` (or none): ``{"label": location * 256 + vertebra, "X", "Y", "Z"}``;
- ``format: "POI_GLOBAL"``: world millimetres, ``coordinate_system`` ``"nib"`` (RAS) or
  ``"itk"`` (LPS).

Vertebra ids are VerSe's (C1 = 1 ... L5 = 24, L6 = 25, S1 = 26, T13 = 28), which are the
anatomy table's; location 100 is the disc below the vertebra (the table's disc id,
vertebra + 100). Local points are placed through the header's grid (rotation x zoom,
origin), so a file saved on another grid or orientation of the same scan still lands on
the anatomy. TPTBox itself is not needed (its reader would pull in its whole toolbox);
this reads the documented file layout only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import geometry
from ..anatomy import ontology
from ..case import Landmarks, SpineCase
from ..errors import SpineIOError

__all__ = ["read_landmark_file", "read_poi"]

_LABEL_MAX = 256  # TPTBox's label = location * 256 + vertebra ("docker" format)
_DISC = 100
#: TPTBox Location ids -> words of the point's name (100, the disc below, is named by _name)
_LOCATIONS = {
    40: "centre", 41: "vertebral arch", 42: "spinous process", 43: "left transverse process",
    44: "right transverse process", 45: "left superior articular process",
    46: "right superior articular process", 47: "left inferior articular process",
    48: "right inferior articular process", 49: "body", 50: "body centre", 51: "dens",
    52: "superior endplate", 53: "inferior endplate", 60: "spinal cord", 61: "spinal canal",
}


def read_landmark_file(path: str | os.PathLike, case: SpineCase) -> Landmarks:
    """Landmarks of a file onto ``case``'s display voxels: a TPTBox POI JSON, else the
    project's landmark JSON / CSV (:func:`~napari_spine.io.export.read_landmarks`)."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise SpineIOError(f"{p}: not a readable landmark file ({exc})") from None
        if isinstance(doc, list):
            return read_poi(p, case, doc)
    from .export import read_landmarks

    try:
        return read_landmarks(p, case)
    except SpineIOError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise SpineIOError(f"{p}: not a landmark file of napari-spine ({type(exc).__name__}: {exc})") from None


def _name(vert: int, loc: int) -> tuple[int, str]:
    """The anatomy id and the name of a TPTBox point."""
    sid = vert + _DISC if loc == _DISC else vert
    level = ontology.name_of(sid) if sid in ontology.BY_ID else f"label {sid}"
    if loc == _DISC:
        return sid, f"{level} disc centre"
    return sid, f"{level} {_LOCATIONS.get(loc, f'location {loc}')}"


def _grid_affine(head: dict[str, Any], path: Path) -> np.ndarray:
    """The voxel-to-RAS affine of a POI file's grid (rotation x zoom, origin)."""
    try:
        zoom = np.asarray(head["zoom"], dtype=float).reshape(3)
        origin = np.asarray(head["origin"], dtype=float).reshape(3)
        rot = np.asarray(head["rotation"], dtype=float).reshape(3, 3)
    except KeyError as exc:
        raise SpineIOError(f"{path}: the POI header has no {exc.args[0]!r}: the points cannot be placed "
                           "on the scan (save the POIs with their image's grid)") from None
    except (TypeError, ValueError) as exc:
        raise SpineIOError(f"{path}: the POI header's grid is malformed ({exc})") from None
    aff = np.eye(4)
    aff[:3, :3] = rot * zoom[None, :]
    aff[:3, 3] = origin
    # mutation-equivalent[Lt -> LtE]: a determinant exactly at the bound
    if not np.all(np.isfinite(aff)) or abs(np.linalg.det(aff[:3, :3])) < 1e-9:
        raise SpineIOError(f"{path}: the POI header's grid is singular or not finite")
    return aff


def _points(doc: list, fmt: str | None, path: Path) -> list[tuple[int, int, tuple[float, float, float]]]:
    out = []
    if fmt in ("POI", "POI_GLOBAL"):
        if len(doc) != 2 or not isinstance(doc[1], dict):
            raise SpineIOError(f"{path}: a POI file holds a header and one dictionary of points")
        for vert, locs in doc[1].items():
            if not isinstance(locs, dict):
                raise SpineIOError(f"{path}: vertebra {vert!r} has no dictionary of locations")
            v = _vertebra_id(vert, path)
            for loc, xyz in locs.items():
                out.append((v, _int(loc, "location", path), _xyz(xyz, path)))
        return out
    for d in doc[1:]:
        if not isinstance(d, dict) or not {"label", "X", "Y", "Z"} <= set(d):
            # mutation-equivalent[80 -> 81]: how much of the point the message quotes
            raise SpineIOError(f"{path}: a point needs label, X, Y and Z (got {str(d)[:80]})")
        label = _int(d["label"], "label", path)
        loc = label // _LABEL_MAX or 50
        out.append((label % _LABEL_MAX, loc, _xyz([d["X"], d["Y"], d["Z"]], path)))
    return out


def _int(value: Any, what: str, path: Path) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SpineIOError(f"{path}: {what} {value!r} is not a number") from None


def _vertebra_id(value: Any, path: Path) -> int:
    if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
        try:
            return ontology.by_name(value.strip()).id
        except KeyError:
            raise SpineIOError(f"{path}: unknown vertebra {value!r}") from None
    return _int(value, "vertebra", path)


def _xyz(value: Any, path: Path) -> tuple[float, float, float]:
    try:
        x, y, z = (float(v) for v in value)
    except (TypeError, ValueError):
        # mutation-equivalent[60 -> 61]: how much of the point the message quotes
        raise SpineIOError(f"{path}: a point is not three numbers ({str(value)[:60]})") from None
    if not np.all(np.isfinite([x, y, z])):
        raise SpineIOError(f"{path}: a point is not finite ({x}, {y}, {z})")
    return x, y, z


def read_poi(path: str | os.PathLike, case: SpineCase, doc: list | None = None) -> Landmarks:
    """A TPTBox POI JSON's points as landmarks in ``case``'s display voxels."""
    p = Path(path)
    if doc is None:
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise SpineIOError(f"{p}: not a readable POI file ({exc})") from None
    if not isinstance(doc, list) or not doc or not isinstance(doc[0], dict):
        raise SpineIOError(f"{p}: not a TPTBox POI file (a list starting with its header)")
    head = doc[0]
    fmt = head.get("format")
    if fmt not in (None, "docker", "POI", "POI_GLOBAL"):
        raise SpineIOError(f"{p}: POI format {fmt!r} is not read here (POI, POI_GLOBAL, docker)")
    pts = _points(doc, fmt, p)
    xyz = np.array([q[2] for q in pts], dtype=float).reshape(-1, 3)  # mutation-equivalent: numpy takes -2 as -1
    if fmt == "POI_GLOBAL":
        system = head.get("coordinate_system", "nib")
        if system not in ("nib", "itk"):
            raise SpineIOError(f"{p}: unknown coordinate_system {system!r} (nib or itk)")
        # mutation-equivalent[Mult -> Div]: dividing by +-1 is multiplying by it
        world = xyz * ([-1.0, -1.0, 1.0] if system == "itk" else 1.0)  # LPS -> RAS
    else:
        world = geometry.voxel_to_world(_grid_affine(head, p), xyz)
    ijk = geometry.world_to_voxel(case.affine, world)
    ids, names = zip(*[_name(v, loc) for v, loc, _ in pts]) if pts else ((), ())
    return Landmarks(ijk, np.asarray(ids, dtype=np.int64), tuple(names))
