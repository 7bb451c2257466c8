"""Local frames of one structure and the measurements taken in them.

A structure is a cloud of voxel centres in world millimetres (RAS+), so every number is in
the case's physical geometry whatever the file's axis order, voxel size or obliquity. Each
structure gets its own frame: ``u`` points cranially along the structure's own
superior-inferior axis, ``a`` anteriorly along its own depth, ``l`` completes a right-handed
frame (pointing to the patient's right).

Heights are taken as *column volumes*: the voxels whose centres fall in a thin prism along
``u`` (``w`` deep along ``a``, ``b`` wide along ``l``) times the voxel volume, divided by the
prism's cross-section. A linear (wedge) height over the prism averages to the height at its
centre, and voxel aliasing averages out, so a tilted body is measured as well as an aligned
one. Endplates are planes fitted to the top (bottom) voxel of each column of the central
part of the structure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_WORLD_S = np.array([0.0, 0.0, 1.0])
_WORLD_A = np.array([0.0, 1.0, 0.0])


@dataclass(frozen=True)
class Cloud:
    """Voxel centres of one structure in world mm, and the voxel geometry."""

    points: np.ndarray  # (N, 3) world mm
    edges: np.ndarray  # (3, 3) world vectors of one voxel step along each array axis (rows)
    index: np.ndarray | None = None  # (N, 3) voxel indices, when kept
    shape: tuple[int, ...] | None = None  # the grid the indices belong to

    @property
    def voxel_volume(self) -> float:
        """mm³ of one voxel."""
        return float(abs(np.linalg.det(self.edges)))

    def extent_along(self, d: np.ndarray) -> float:
        """The width along the unit vector ``d`` of a box with the voxel's spread along ``d``
        (the spacing itself along a voxel axis; mm)."""
        return float(np.sqrt(np.sum((self.edges @ d) ** 2)))

    def subset(self, keep: np.ndarray) -> Cloud:
        """The voxels where ``keep`` is true."""
        return Cloud(self.points[keep], self.edges, None if self.index is None else self.index[keep],
                     self.shape)

    def __len__(self) -> int:
        return len(self.points)


def cloud_from_mask(mask: np.ndarray, affine: np.ndarray, offset=(0, 0, 0), shape=None) -> Cloud:
    """The voxel centres of ``mask`` (a crop starting at voxel ``offset`` of a grid of
    ``shape``) in world mm."""
    idx = np.argwhere(mask) + np.asarray(offset, dtype=np.int64)
    m = np.asarray(affine, dtype=np.float64)
    return Cloud(idx @ m[:3, :3].T + m[:3, 3], m[:3, :3].T.copy(), idx,
                 None if shape is None else tuple(int(n) for n in shape))


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to unit length (``ValueError`` for a zero vector)."""
    n = float(np.linalg.norm(v))
    if n == 0.0 or not np.isfinite(n):
        raise ValueError("zero direction")
    return np.asarray(v, dtype=np.float64) / n


def orthogonal_part(v: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``v`` without its component along the unit vector ``u`` (unit length)."""
    w = v - (v @ u) * u
    if np.linalg.norm(w) < 1e-6:  # v along u: any perpendicular will do
        w = np.cross(u, [1.0, 0.0, 0.0] if abs(u[0]) < 0.9 else [0.0, 1.0, 0.0])
    return unit(w)


@dataclass(frozen=True)
class Frame:
    """Origin and axes (``l`` right, ``a`` anterior, ``u`` cranial), unit vectors in world mm."""

    origin: np.ndarray
    l: np.ndarray  # noqa: E741 - the anatomical axis name
    a: np.ndarray
    u: np.ndarray

    @classmethod
    def make(cls, origin, u, a_hint=_WORLD_A) -> Frame:
        """A frame with cranial axis ``u`` and the anterior axis nearest ``a_hint``."""
        u = unit(np.asarray(u, dtype=np.float64))
        a = orthogonal_part(np.asarray(a_hint, dtype=np.float64), u)
        return cls(np.asarray(origin, dtype=np.float64), unit(np.cross(a, u)), a, u)

    @property
    def matrix(self) -> np.ndarray:
        """Rows l, a, u: world vector -> frame coordinates."""
        return np.stack([self.l, self.a, self.u])

    def coords(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) frame coordinates (l, a, u) of world points."""
        return (points - self.origin) @ self.matrix.T

    def world(self, lau: np.ndarray) -> np.ndarray:
        """World points of frame coordinates (l, a, u)."""
        return np.asarray(lau, dtype=np.float64) @ self.matrix + self.origin


def depth_axis(cloud: Cloud, u: np.ndarray, a_hint: np.ndarray, elongation: float = 1.15) -> np.ndarray:
    """The structure's own anteroposterior axis: the minor axis of its cross-section
    perpendicular to ``u`` when the section is clearly wider than deep, else ``a_hint``
    (made perpendicular to ``u``). Points anteriorly, like ``a_hint``."""
    a0 = orthogonal_part(a_hint, u)
    l0 = unit(np.cross(a0, u))
    q = (cloud.points - cloud.points.mean(0)) @ np.stack([l0, a0]).T
    if len(q) < 3:
        return a0
    evals, evecs = np.linalg.eigh(np.cov(q.T))
    if evals[0] <= 0 or np.sqrt(evals[1] / evals[0]) < elongation:
        return a0
    minor = evecs[:, 0]
    a = unit(minor[0] * l0 + minor[1] * a0)
    return a if a @ a0 >= 0 else -a


@dataclass(frozen=True)
class Plane:
    """An endplate: a point on it and its unit normal (pointing cranially)."""

    point: np.ndarray
    normal: np.ndarray
    n_points: int
    rms_mm: float


def _column_extremes(q: np.ndarray, grid: float, top: bool) -> np.ndarray:
    """Per (l, a) column of size ``grid``: the point with the largest (``top``) or smallest u."""
    key = np.floor(q[:, :2] / grid).astype(np.int64)
    key -= key.min(0)
    flat = key[:, 0] * (int(key[:, 1].max()) + 1) + key[:, 1]
    order = np.lexsort((q[:, 2] if top else -q[:, 2], flat))
    last = np.r_[flat[order][1:] != flat[order][:-1], True]
    return q[order[last]]


def fit_endplate(q: np.ndarray, frame: Frame, grid: float, top: bool, central=0.6,
                 halves: bool = True) -> Plane | None:
    """Fit the superior (``top``) or inferior endplate of a structure in frame coordinates.

    Only columns in the central ``central`` share of the width and of the depth are used (the
    rim is rounded), and with ``halves`` only points on the endplate's side of the frame's
    origin (a sparse column may hold one surface only); one pass drops columns further than
    two grid steps from the first fit.
    """
    lo, hi = q[:, :2].min(0), q[:, :2].max(0)
    mid, half = (lo + hi) / 2, (hi - lo) * central / 2
    inner = np.all(np.abs(q[:, :2] - mid) <= half + 1e-9, axis=1)
    if halves:
        inner &= (q[:, 2] > 0) if top else (q[:, 2] < 0)
    pts = _column_extremes(q[inner], grid, top)
    if len(pts) < 6:
        return None
    keep = np.ones(len(pts), dtype=bool)
    for _ in range(2):
        design = np.c_[np.ones(keep.sum()), pts[keep, 0], pts[keep, 1]]
        coef, *_ = np.linalg.lstsq(design, pts[keep, 2], rcond=None)
        resid = pts[:, 2] - (coef[0] + coef[1] * pts[:, 0] + coef[2] * pts[:, 1])
        keep = np.abs(resid) <= 2 * grid
        if keep.sum() < 6:
            return None
    n_frame = unit(np.array([-coef[1], -coef[2], 1.0]))
    normal = n_frame @ frame.matrix
    centre = np.array([mid[0], mid[1], coef[0] + coef[1] * mid[0] + coef[2] * mid[1]])
    return Plane(frame.world(centre), normal, int(keep.sum()), float(np.sqrt(np.mean(resid[keep] ** 2))))


def surface(cloud: Cloud, affine: np.ndarray) -> np.ndarray:
    """Sub-voxel boundary points (world mm) of a structure: the 0.5 iso-surface of its mask,
    lightly smoothed, so that a tilted endplate is a plane rather than a staircase. A
    single-slice structure is extruded to three slices first."""
    from scipy.ndimage import gaussian_filter
    from skimage.measure import marching_cubes

    idx = cloud.index
    lo = idx.min(0)
    size = idx.max(0) - lo + 1
    thin = size == 1
    pad = 3
    vol = np.zeros(tuple(size + 2 * pad + 2 * thin), dtype=np.float32)
    ijk = idx - lo + pad + thin
    for shift in ([-1, 0, 1] if thin[0] else [0]):
        vol[ijk[:, 0] + shift, ijk[:, 1], ijk[:, 2]] = 1.0
    vol = gaussian_filter(vol, sigma=[0.0 if t else 1.2 for t in thin])
    top = float(vol.max())
    if top <= 0.0:
        return cloud.points
    verts = marching_cubes(vol, min(0.5, top / 2))[0] + lo - pad - thin  # a thin piece peaks lower
    m = np.asarray(affine, dtype=np.float64)
    return verts @ m[:3, :3].T + m[:3, 3]


def own_frame(cloud: Cloud, u0: np.ndarray, a_hint=_WORLD_A, iterations: int = 3,
              boundary: np.ndarray | None = None):
    """The structure's frame: ``u`` refined from ``u0`` to the bisector of its two endplate
    normals, ``a`` its own depth axis. Returns ``(frame, superior plane, inferior plane)``.

    The endplates are fitted to ``boundary`` points (see :func:`surface`) when given, else to
    the voxel centres."""
    u = unit(u0)
    grid = float(np.mean(np.linalg.norm(cloud.edges, axis=1)))
    c = cloud.points.mean(0)
    sup = inf = None
    pts = cloud.points if boundary is None else boundary
    for _ in range(iterations + 1):
        frame = Frame.make(c, u, depth_axis(cloud, u, a_hint))
        q = frame.coords(pts)
        sup, inf = fit_endplate(q, frame, grid, True), fit_endplate(q, frame, grid, False)
        if sup is None or inf is None:
            break
        u_new = unit(sup.normal + inf.normal)
        if np.degrees(np.arccos(np.clip(u_new @ u, -1, 1))) < 0.05:
            break
        u = u_new
    return frame, sup, inf


@dataclass(frozen=True)
class Heights:
    posterior: float
    middle: float
    anterior: float
    depth: float  # mm along a
    width: float  # mm along l
    extent: float  # mm along u (voxel centres' range plus one voxel)


FRACTIONS = (0.15, 0.50, 0.85)


def _overlap(x: np.ndarray, e: float, centre: float, width: float) -> np.ndarray:
    """Share of each voxel (a box ``e`` wide centred at ``x``) inside the interval of
    ``width`` around ``centre``: the slab's edges cut voxels instead of aliasing them."""
    lo = np.maximum(x - e / 2, centre - width / 2)
    hi = np.minimum(x + e / 2, centre + width / 2)
    return np.clip(hi - lo, 0.0, None) / e  # of the depth from the posterior wall


def column_heights(cloud: Cloud, frame: Frame, fractions=FRACTIONS) -> Heights:
    """Heights along ``frame.u`` at ``fractions`` of the depth from the posterior wall."""
    q = frame.coords(cloud.points)
    e_l, e_a, e_u = (cloud.extent_along(d) for d in (frame.l, frame.a, frame.u))
    a_lo, a_hi = q[:, 1].min() - e_a / 2, q[:, 1].max() + e_a / 2
    l_lo, l_hi = q[:, 0].min() - e_l / 2, q[:, 0].max() + e_l / 2
    depth, width = a_hi - a_lo, l_hi - l_lo
    w = min(max(0.1 * depth, 2 * e_a), 0.25 * depth)
    b = min(max(0.3 * width, 2 * e_l), width)
    in_band = _overlap(q[:, 0], e_l, (l_lo + l_hi) / 2, b)
    out = []
    for f in fractions:
        weight = in_band * _overlap(q[:, 1], e_a, a_lo + f * depth, w)
        out.append(float(weight.sum()) * cloud.voxel_volume / (w * b))
    extent = float(q[:, 2].max() - q[:, 2].min() + e_u)
    return Heights(*(float(h) for h in out), float(depth), float(width), extent)
