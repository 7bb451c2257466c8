"""Manual rulers: distances, angles and Cobb angles drawn by hand, in millimetres and degrees
from the case geometry. Qt-free.

A ruler is a few points in the case's display voxels; its value is computed from their
world (RAS+ mm) positions through the case affine, so it is right for any voxel size and
axis order, and a ruler saved for one grid lands on the same anatomy in another.

- **distance**: two points, the straight distance in mm;
- **angle**: three points, the angle at the middle one (between the rays to the first and
  the last), 0-180°;
- **Cobb**: two lines (four points), the angle between them, 0-90° (Cobb's angle is between
  the endplate lines, whichever way each was drawn).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["KINDS", "Ruler", "angle_deg", "cobb_deg", "distance_mm", "rulers_from_rows",
           "rulers_from_shapes", "shape_texts",
           "shapes_of"]

#: ruler kind -> (points it needs, unit)
KINDS: dict[str, tuple[int, str]] = {"distance": (2, "mm"), "angle": (3, "°"), "cobb": (4, "°")}


def as_points(values) -> np.ndarray:
    """``(N, 3)`` float points from any nesting of coordinates."""
    p = np.asarray(values, dtype=float)
    return p.reshape(p.size // 3, 3)


def _world(affine: np.ndarray, voxels) -> np.ndarray:
    v = as_points(voxels)
    return v @ np.asarray(affine, dtype=float)[:3, :3].T + np.asarray(affine, dtype=float)[:3, 3]


def _unit(v: np.ndarray) -> np.ndarray | None:
    n = float(np.linalg.norm(v))
    # mutation-equivalent[Gt -> GtE]: a float exactly at the bound
    return v / n if n > 1e-9 else None


def distance_mm(affine: np.ndarray, a, b) -> float:
    """The distance in mm between two display voxels."""
    pa, pb = _world(affine, [a, b])
    return float(np.linalg.norm(pb - pa))


def angle_deg(affine: np.ndarray, a, vertex, c) -> float | None:
    """The angle at ``vertex`` between the rays to ``a`` and ``c`` (degrees, 0-180), or None
    when two of the points coincide."""
    pa, pv, pc = _world(affine, [a, vertex, c])
    u, w = _unit(pa - pv), _unit(pc - pv)
    if u is None or w is None:
        return None
    return float(np.degrees(np.arccos(np.clip(u @ w, -1.0, 1.0))))


def cobb_deg(affine: np.ndarray, a0, a1, b0, b1) -> float | None:
    """The Cobb angle between line ``a0-a1`` and line ``b0-b1`` (degrees, 0-90), or None for
    a line of no length."""
    p = _world(affine, [a0, a1, b0, b1])
    u, w = _unit(p[1] - p[0]), _unit(p[3] - p[2])
    if u is None or w is None:
        return None
    return float(np.degrees(np.arccos(np.clip(abs(u @ w), 0.0, 1.0))))


@dataclass(frozen=True)
class Ruler:
    """One manual measurement: its kind, its points (display voxels) and a label."""

    kind: str
    points: np.ndarray
    label: str = ""

    def value(self, affine: np.ndarray) -> float | None:
        """The ruler's value in its unit (None while it has too few points or no length)."""
        need, _ = KINDS[self.kind]
        p = as_points(self.points)
        if len(p) < need:
            return None
        if self.kind == "distance":
            return distance_mm(affine, p[0], p[-1])
        if self.kind == "angle":
            return angle_deg(affine, p[0], p[1], p[2])
        # mutation-equivalent[4 -> 5]: a Cobb ruler has four points
        return cobb_deg(affine, *p[:4])

    @property
    def unit(self) -> str:
        """``mm`` or ``°``."""
        return KINDS[self.kind][1]

    def text(self, affine: np.ndarray) -> str:
        """What the view shows beside the ruler: ``"42.3 mm"``, ``"Cobb 23.4°"`` …"""
        v = self.value(affine)
        name = {"distance": "", "angle": "", "cobb": "Cobb "}[self.kind]
        if v is None:
            return f"{name}(draw the second line)" if self.kind == "cobb" else "?"
        return f"{name}{v:.1f} {self.unit}" if self.unit == "mm" else f"{name}{v:.1f}{self.unit}"

    def row(self, affine: np.ndarray) -> dict:
        """The ruler as saved: kind, label, value, unit and its points in RAS mm."""
        v = self.value(affine)
        return {"kind": self.kind, "label": self.label,
                "value": None if v is None else round(v, 3), "unit": self.unit,
                "points_ras_mm": [[float(x) for x in p] for p in _world(affine, self.points)]}


def _owners(kinds: Sequence[str]) -> list[int]:
    """For each drawn shape, the index of the ruler it belongs to (Cobb lines pair up in the
    order they were drawn)."""
    owners, n, open_cobb = [], 0, None
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"unknown ruler kind {kind!r} (known: {', '.join(KINDS)})")
        if kind == "cobb" and open_cobb is not None:
            owners.append(open_cobb)
            open_cobb = None
            continue
        owners.append(n)
        if kind == "cobb":
            open_cobb = n
        n += 1
    return owners


def rulers_from_shapes(shapes: Sequence[np.ndarray], kinds: Sequence[str],
                       labels: Sequence[str] = ()) -> list[Ruler]:
    """Rulers from drawn shapes (each an N×3 array of display voxels) and their kinds.

    A Cobb angle is two drawn lines: the Cobb lines pair up in the order they were drawn
    (the first with the second, the third with the fourth …); an unpaired last line is a
    Cobb ruler still waiting for its second line. A distance uses a line's two ends, an
    angle the first three points of a path."""
    owners = _owners(kinds)
    parts: dict[int, list[np.ndarray]] = {}
    meta: dict[int, tuple[str, str]] = {}
    for i, (pts, kind, owner) in enumerate(zip(shapes, kinds, owners, strict=True)):
        p = as_points(pts)
        parts.setdefault(owner, []).append(p[:3] if kind == "angle" else p[[0, -1]])
        meta.setdefault(owner, (kind, str(labels[i]) if i < len(labels) else ""))
    return [Ruler(meta[k][0], np.vstack(parts[k]), meta[k][1]) for k in sorted(parts)]


def shape_texts(shapes: Sequence[np.ndarray], kinds: Sequence[str], affine: np.ndarray) -> list[str]:
    """The text to show beside each drawn shape: its ruler's value (both lines of a Cobb
    angle show the angle)."""
    rulers = rulers_from_shapes(shapes, kinds)
    return [rulers[o].text(affine) for o in _owners(kinds)]


def shapes_of(rulers: Sequence[Ruler]) -> list[tuple[np.ndarray, str, str]]:
    """How to draw ``rulers`` again: ``(points, napari shape type, kind)`` per shape, a Cobb
    ruler as its two lines in order (the inverse of :func:`rulers_from_shapes`)."""
    out = []
    for r in rulers:
        p = as_points(r.points)
        if r.kind == "cobb":
            out += [(p[i:i + 2], "line", "cobb") for i in range(0, len(p) - 1, 2)]
        else:
            out.append((p, "path" if r.kind == "angle" else "line", r.kind))
    return out


def rulers_from_rows(rows: Sequence[dict], affine: np.ndarray) -> list[Ruler]:
    """Rulers read back from saved rows, placed on the grid of ``affine`` by their RAS
    positions (the inverse of :meth:`Ruler.row`)."""
    inv = np.linalg.inv(np.asarray(affine, dtype=float))
    out = []
    for r in rows:
        ras = as_points(r["points_ras_mm"])
        out.append(Ruler(str(r["kind"]), ras @ inv[:3, :3].T + inv[:3, 3], str(r.get("label", ""))))
    return out
