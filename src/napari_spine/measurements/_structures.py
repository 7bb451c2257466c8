"""Vertebral bodies and discs of a case as point clouds in world mm, each with its own frame.

A vertebra label is a body when the file segments bodies (CSpineSeg, TotalSegmentator
``vertebrae_body`` after level identification, the 2-D datasets) and a whole vertebra when it
segments the arch too (CTSpine1K, VerSe, TotalSegmentator ``total``). Which one it is is read
from the voxels rather than the scheme: along the vertebra's anteroposterior axis the
cross-section (perpendicular to that axis) is large through the body and falls to the two
pedicles, or to nothing in a sagittal slice, behind its posterior wall. The body is what lies
in front of that fall; a body-only mask has no fall before its own posterior wall and is kept
whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy import ndimage

from ..anatomy import ontology
from ..anatomy.labelmaps import present_ids
from ._frames import (
    Cloud,
    Frame,
    Heights,
    Plane,
    cloud_from_mask,
    column_heights,
    own_frame,
    surface,
    unit,
)

NO_BODY = {1}  # C1 (atlas): a ring without a body
SACRUM_AND_BELOW = {26, 27}
_WORLD_S = np.array([0.0, 0.0, 1.0])
_WORLD_A = np.array([0.0, 1.0, 0.0])


@dataclass
class Structure:
    """One vertebral body or disc, measured in its own frame."""

    sid: int
    cloud: Cloud
    frame: Frame | None  # None: not measured (see notes)
    superior: Plane | None
    inferior: Plane | None
    notes: list[str] = field(default_factory=list)

    @cached_property
    def heights(self) -> Heights:
        """Posterior, middle and anterior heights in the structure's frame (computed once)."""
        return column_heights(self.cloud, self.frame)

    @property
    def name(self) -> str:
        """The structure's anatomy name."""
        return ontology.name_of(self.sid)


FOV_NOTE = "cut by the field of view: not measured"


def at_border(cloud: Cloud, shape) -> bool:
    """Whether a structure touches the edge of the image along an axis with more than one
    voxel (it is cut by the field of view, so its size and shape are not its own)."""
    lo, hi = cloud.index.min(0), cloud.index.max(0)
    return any(n > 1 and (a == 0 or b == n - 1) for a, b, n in zip(lo, hi, shape))


def measured(structures: dict[int, Structure]) -> dict[int, Structure]:
    """The structures with a frame (those not cut by the field of view)."""
    return {s: st for s, st in structures.items() if st.frame is not None}


def label_clouds(labels: np.ndarray, affine: np.ndarray, ids) -> dict[int, Cloud]:
    """World-mm clouds of the wanted label ids, each cut from its own bounding box."""
    wanted = [int(i) for i in ids]
    if not wanted:
        return {}
    boxes = ndimage.find_objects(labels, max_label=max(wanted))
    out: dict[int, Cloud] = {}
    for sid in wanted:
        box = boxes[sid - 1] if sid - 1 < len(boxes) else None
        if box is None:
            continue
        out[sid] = cloud_from_mask(labels[box] == sid, affine, [s.start for s in box], labels.shape)
    return out


def spine_directions(centroids: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Cranial direction of the column at each vertebra, from its neighbours' centroids."""
    order = ontology.sort_cranio_caudal(centroids)
    out = {}
    for k, sid in enumerate(order):
        above = centroids[order[k - 1]] if k > 0 else centroids[sid]
        below = centroids[order[k + 1]] if k + 1 < len(order) else centroids[sid]
        d = above - below
        out[sid] = unit(d) if np.linalg.norm(d) > 1e-6 else _WORLD_S
    return out


def cut_body(cloud: Cloud, u: np.ndarray, a_hint=_WORLD_A, waist_mm: float = 3.0,
             canal: Cloud | None = None) -> tuple[Cloud, bool]:
    """The body part of a vertebra: the voxels in front of the spinal canal (or cord) when
    the labels have it at this level, else in front of the first fall of the
    cross-sectional area to under half of its maximum so far, when the fall lasts at least
    ``waist_mm`` (pedicles, or the canal of a sagittal slice) and leaves more than 15 % of the
    voxels behind it. Returns ``(body, cut)``."""
    frame = Frame.make(cloud.points.mean(0), u, a_hint)
    q = frame.coords(cloud.points)
    a = q[:, 1]
    if canal is not None:
        qc = frame.coords(canal.points)
        level = (qc[:, 2] >= q[:, 2].min()) & (qc[:, 2] <= q[:, 2].max())
        if level.sum() >= 10:
            keep = a > float(np.max(qc[level, 1]))
            if 0.15 < keep.mean() < 1.0:
                return cloud.subset(keep), True
    step = max(float(np.abs(cloud.edges @ frame.a).sum()), 1.0)  # no empty bins between rows
    bins = np.floor((a.max() - a) / step).astype(np.int64)  # 0 = most anterior
    area = np.convolve(np.bincount(bins).astype(np.float64), np.ones(3) / 3, mode="same")
    running = np.maximum.accumulate(area)
    inside = np.flatnonzero(running >= 0.3 * area.max())
    start = int(inside[0]) if len(inside) else 0
    low = (area < 0.5 * running) & (np.arange(len(area)) > start)
    span = max(int(np.ceil(waist_mm / step)), 1)
    for k in np.flatnonzero(low):
        if low[k:k + span].all() and k + span <= len(area):
            keep = bins < k
            if keep.mean() > 0.85:  # only the tapering posterior rim of a body-only mask
                return cloud, False
            return cloud.subset(keep), True
    return cloud, False


def _for_direction(clouds: dict[int, Cloud]) -> dict[int, Cloud]:
    """The vertebrae whose centroids can say where the column runs: not cut by the field of
    view, or, when fewer than two are whole, all but fragments (under a fifth of the median)."""
    whole = {s: c for s, c in clouds.items() if not at_border(c, c.shape or ())}
    if len(whole) >= 2:
        return whole
    med = float(np.median([len(c) for c in clouds.values()])) if clouds else 0.0
    return {s: c for s, c in clouds.items() if len(c) >= 0.2 * med}


def _nearest(sid: int, dirs: dict[int, np.ndarray]) -> np.ndarray:
    """The direction at the nearest vertebra that has one (superior when none has)."""
    if not dirs:
        return _WORLD_S
    rank = {s: k for k, s in enumerate(ontology.vertebra_order())}
    return dirs[min(dirs, key=lambda s: abs(rank.get(s, 0) - rank.get(sid, 0)))]


def _centroids(clouds: dict[int, Cloud]) -> dict[int, np.ndarray]:
    return {sid: c.points.mean(0) for sid, c in clouds.items()}


def vertebral_bodies(labels: np.ndarray, affine: np.ndarray) -> dict[int, Structure]:
    """Every levelled vertebra of ``labels`` (canonical ids) as a measured body."""
    ids_all = present_ids(labels)
    ids = [i for i in ids_all if i and ontology.is_vertebra(int(i)) and int(i) in ontology.BY_ID
           and ontology.BY_ID[int(i)].level is not None]
    clouds = label_clouds(labels, affine, ids)
    neural = label_clouds(labels, affine, [i for i in (ontology.SPINAL_CANAL, ontology.SPINAL_CORD)
                                           if i in set(int(v) for v in ids_all)])
    canal = neural.get(ontology.SPINAL_CANAL, neural.get(ontology.SPINAL_CORD))
    dirs = spine_directions(_centroids(_for_direction(clouds)))
    dirs = {s: dirs.get(s, _nearest(s, dirs)) for s in clouds}
    out: dict[int, Structure] = {}
    for sid, cloud in clouds.items():
        if sid in NO_BODY or sid in SACRUM_AND_BELOW or len(cloud) < 20:
            continue
        body, cut = cut_body(cloud, dirs[sid], canal=canal)
        if at_border(body, labels.shape):
            out[sid] = Structure(sid, body, None, None, None, notes=[FOV_NOTE])
            continue
        frame, sup, inf = own_frame(body, dirs[sid], boundary=surface(body, affine))
        st = Structure(sid, body, frame, sup, inf)
        if cut:
            st.notes.append("body cut from the whole-vertebra label")
        if sid == 2:
            st.notes.append("C2 heights include the dens")
        out[sid] = st
    for sid in SACRUM_AND_BELOW & set(clouds):
        if sid == 26:
            s1 = _sacral_plate(clouds[sid], measured(out), affine)
            if s1 is not None:
                out[sid] = s1
    return out


def _sacral_plate(sacrum: Cloud, bodies: dict[int, Structure], affine) -> Structure | None:
    """S1's superior endplate: the top of the sacrum under the lowest lumbar body."""
    from ._frames import fit_endplate

    above = [s for s in ontology.sort_cranio_caudal(bodies) if s in (24, 25)]
    if not above:
        return None
    l5 = bodies[above[-1]]
    q5 = l5.frame.coords(l5.cloud.points)
    q = l5.frame.coords(surface(sacrum, affine))
    lo, hi = q5[:, :2].min(0), q5[:, :2].max(0)
    under = np.all((q[:, :2] >= lo) & (q[:, :2] <= hi), axis=1)
    if under.sum() < 12:
        return None
    grid = float(np.mean(np.linalg.norm(sacrum.edges, axis=1)))
    plane = fit_endplate(q[under], l5.frame, grid, top=True, halves=False)
    if plane is None:
        return None
    pts = l5.frame.world(q[under])
    frame = Frame.make(plane.point, plane.normal, l5.frame.a)  # again, in columns square to it
    plane = fit_endplate(frame.coords(pts), frame, grid, top=True, halves=False) or plane
    return Structure(26, sacrum, l5.frame, plane, None, notes=["S1: superior endplate only"])


def discs(labels: np.ndarray, affine: np.ndarray, bodies: dict[int, Structure]) -> dict[int, Structure]:
    """Every levelled disc: its own frame starts from its flattest axis."""
    ids = [i for i in present_ids(labels) if ontology.is_disc(int(i)) and int(i) != ontology.GENERIC_DISC]
    out: dict[int, Structure] = {}
    for sid, cloud in label_clouds(labels, affine, ids).items():
        if at_border(cloud, labels.shape):
            out[sid] = Structure(sid, cloud, None, None, None, notes=[FOV_NOTE])
            continue
        if len(cloud) < 20:
            continue
        p = cloud.points - cloud.points.mean(0)
        evecs = np.linalg.eigh(np.cov(p.T))[1]
        hint = _hint_between(sid, bodies)
        u0 = evecs[:, 0] if hint is None else hint
        u0 = u0 if u0 @ (hint if hint is not None else _WORLD_S) >= 0 else -u0
        frame, sup, inf = own_frame(cloud, u0, boundary=surface(cloud, affine))
        out[sid] = Structure(sid, cloud, frame, sup, inf)
    return out


def _hint_between(disc: int, bodies: dict[int, Structure]) -> np.ndarray | None:
    """Mean axis of the bodies above and below a disc (``None`` when neither is measured)."""
    upper = bodies.get(disc - ontology.DISC_OFFSET)
    order = ontology.cranio_caudal_order()
    vert = [s for s in order if ontology.is_vertebra(s) and s in bodies and bodies[s].frame is not None]
    lower = None
    if upper is not None and upper.sid in vert and vert.index(upper.sid) + 1 < len(vert):
        lower = bodies[vert[vert.index(upper.sid) + 1]]
    axes = [s.frame.u for s in (upper, lower) if s is not None and s.sid != 26 and s.frame is not None]
    return unit(np.sum(axes, axis=0)) if axes else None
