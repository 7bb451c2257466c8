"""Analytic spine phantoms for the measurement tests.

Each body is a symmetric trapezoid prism in its own frame (l right, a anterior, u cranial):
width ``W`` along l, depth ``D`` along a, and height ``h(a)`` along u that runs linearly from
``Hp`` at the posterior wall to ``Ha`` at the anterior wall, symmetric about its mid-plane, so
the height at a fraction ``f`` of the depth from the posterior wall is ``Hp + (Ha - Hp) f``
and both endplates tilt by half the wedge angle. Bodies are placed and rotated in world mm
and sampled at voxel centres of any affine, so the expected numbers never come from the code
under test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def rotation(sagittal_deg=0.0, coronal_deg=0.0, axial_deg=0.0) -> np.ndarray:
    """Columns: the body's l, a, u axes in world RAS. Sagittal tilt turns u towards anterior
    (about the world x axis), coronal tilt towards the right (about y), axial about z."""
    s, c, x = np.radians([sagittal_deg, coronal_deg, axial_deg])
    rx = np.array([[1, 0, 0], [0, np.cos(s), np.sin(s)], [0, -np.sin(s), np.cos(s)]])  # u -> +y
    ry = np.array([[np.cos(c), 0, np.sin(c)], [0, 1, 0], [-np.sin(c), 0, np.cos(c)]])  # u -> +x
    rz = np.array([[np.cos(x), -np.sin(x), 0], [np.sin(x), np.cos(x), 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass
class Body:
    sid: int
    centre: tuple[float, float, float]
    Ha: float
    Hp: float
    D: float = 34.0
    W: float = 46.0
    sagittal_deg: float = 0.0
    coronal_deg: float = 0.0
    axial_deg: float = 0.0
    arch: bool = False  # add pedicles, a lamina and a spinous process behind the body

    @property
    def axes(self) -> np.ndarray:
        return rotation(self.sagittal_deg, self.coronal_deg, self.axial_deg)

    def height_at(self, f: float) -> float:
        return self.Hp + (self.Ha - self.Hp) * f

    def inside(self, world: np.ndarray) -> np.ndarray:
        q = (world - np.asarray(self.centre)) @ self.axes  # (l, a, u)
        t = (q[:, 1] + self.D / 2) / self.D
        h = self.Hp + (self.Ha - self.Hp) * t
        body = (np.abs(q[:, 0]) <= self.W / 2) & (t >= 0) & (t <= 1) & (np.abs(q[:, 2]) <= h / 2)
        if not self.arch:
            return body
        back = -self.D / 2 - q[:, 1]  # mm behind the posterior wall
        pedicles = (np.abs(np.abs(q[:, 0]) - 16) <= 4) & (back > -1) & (back <= 12) & (np.abs(q[:, 2]) <= 6)
        lamina = (np.abs(q[:, 0]) <= 18) & (back > 12) & (back <= 20) & (np.abs(q[:, 2]) <= 9)
        spinous = (np.abs(q[:, 0]) <= 3) & (back > 20) & (back <= 45) & (np.abs(q[:, 2]) <= 8)
        return body | pedicles | lamina | spinous

    @property
    def volume_mm3(self) -> float:
        """The body's own volume (the arch excluded)."""
        return self.W * self.D * (self.Ha + self.Hp) / 2


def grid_affine(spacing, origin=(0.0, 0.0, 0.0), order=(0, 1, 2), flips=(1, 1, 1)) -> np.ndarray:
    """A voxel-to-RAS affine whose array axis k runs along world axis ``order[k]``."""
    a = np.zeros((4, 4))
    for k, (w, f, s) in enumerate(zip(order, flips, spacing)):
        a[w, k] = f * s
    a[:3, 3] = origin
    a[3, 3] = 1
    return a


def rasterize(bodies, affine: np.ndarray, shape) -> np.ndarray:
    """Labels of the bodies (later ones win) at the voxel centres of ``affine``."""
    idx = np.indices(shape).reshape(3, -1).T.astype(np.float64)
    world = idx @ affine[:3, :3].T + affine[:3, 3]
    out = np.zeros(int(np.prod(shape)), dtype=np.uint8)
    for b in bodies:
        out[b.inside(world)] = b.sid
    return out.reshape(shape)


def fitted_grid(bodies, spacing, margin=6.0, order=(0, 1, 2), flips=(1, 1, 1)):
    """An affine and shape covering all bodies with ``margin`` mm to spare."""
    pts = []
    for b in bodies:
        back = b.D / 2 + (45 if b.arch else 0)
        corners = np.array([[sx * b.W / 2, sy, sz * max(b.Ha, b.Hp) / 2]
                            for sx in (-1, 1) for sy in (-back, b.D / 2) for sz in (-1, 1)])
        pts.append(corners @ b.axes.T + np.asarray(b.centre))
    pts = np.concatenate(pts)
    lo, hi = pts.min(0) - margin, pts.max(0) + margin
    lo = lo - 0.37 * min(spacing)  # voxel centres off the bodies' faces: no ties at the edges
    sp = np.asarray(spacing, dtype=float)
    shape = tuple(int(np.ceil((hi[w] - lo[w]) / sp[k])) + 1 for k, w in enumerate(order))
    origin = np.array([lo[w] if f > 0 else hi[w] for w, f in sorted(zip(order, flips))])
    return grid_affine(spacing, origin, order, flips), shape


def column(levels, sagittal=None, coronal=None, gap=8.0, top=(0.0, 0.0, 0.0), **kw) -> list[Body]:
    """Bodies stacked cranio-caudally: each one ``gap`` mm below the previous one along the
    mean of their two axes, tilted as given (degrees)."""
    n = len(levels)
    sagittal = [0.0] * n if sagittal is None else list(sagittal)
    coronal = [0.0] * n if coronal is None else list(coronal)
    out: list[Body] = []
    centre = np.asarray(top, dtype=float)
    for k, sid in enumerate(levels):
        b = Body(sid, tuple(centre), sagittal_deg=sagittal[k], coronal_deg=coronal[k], **kw)
        if out:
            prev = out[-1]
            down = prev.axes[:, 2] + b.axes[:, 2]
            down /= np.linalg.norm(down)
            half = (max(prev.Ha, prev.Hp) + max(b.Ha, b.Hp)) / 2
            centre = np.asarray(prev.centre) - down * (half + gap)
            b = Body(sid, tuple(centre), sagittal_deg=sagittal[k], coronal_deg=coronal[k], **kw)
        out.append(b)
    return out
