"""Rows of the measurement tables: vertebral bodies, discs and angles."""

from __future__ import annotations

import numpy as np
from nibabel.affines import voxel_sizes
from scipy import ndimage

from ..anatomy import ontology
from ._structures import Structure

GENANT_GRADES = ((0.20, 0), (0.25, 1), (0.40, 2))  # height loss below the bound -> grade
CORTEX_MM = 3.0  # trabecular bone: the body eroded by this much


def genant_grade(loss: float) -> int:
    """Genant's semi-quantitative grade of a height loss (0.2 -> 1, 0.25 -> 2, 0.4 -> 3)."""
    for bound, grade in GENANT_GRADES:
        if loss < bound:
            return grade
    return 3


def _shape(hs: np.ndarray, ratio_in: float, loss: float) -> str:
    """Which deformity a graded body shows: wedge (anterior lowest), biconcave (middle) or
    crush (posterior lowest, or all heights reduced alike against the neighbours)."""
    if loss < GENANT_GRADES[0][0]:
        return ""
    if ratio_in >= 1.0 - GENANT_GRADES[0][0]:
        return "crush"
    return ("wedge", "biconcave", "crush")[int(np.argmin(hs))]


def _round(v, nd=2):
    return None if v is None or not np.isfinite(v) else round(float(v), nd)


def _trabecular(st: Structure, image: np.ndarray, affine: np.ndarray) -> dict:
    """Mean and median intensity of the body eroded by :data:`CORTEX_MM` (1 voxel at least)."""
    idx = st.cloud.index
    lo, hi = idx.min(0), idx.max(0) + 1
    mask = np.zeros(tuple(hi - lo + 2), dtype=bool)
    mask[tuple((idx - lo + 1).T)] = True
    dist = ndimage.distance_transform_edt(mask, sampling=voxel_sizes(affine))
    inner = dist > CORTEX_MM
    if not inner.any():
        inner = ndimage.binary_erosion(mask)
    if not inner.any():
        inner = mask
    vox = np.argwhere(inner) + lo - 1
    values = image[tuple(vox.T)].astype(np.float64)
    return {"hu_mean": _round(values.mean(), 1), "hu_median": _round(np.median(values), 1),
            "hu_voxels": int(len(values))}


def body_rows(bodies: dict[int, Structure], image: np.ndarray | None, affine: np.ndarray,
              ct: bool) -> list[dict]:
    """One row per vertebral body, cranial to caudal, with Genant-style height ratios."""
    order = [s for s in ontology.sort_cranio_caudal(bodies) if s != 26 and bodies[s].frame is not None]
    heights = {s: bodies[s].heights for s in order}
    rows = [{"level": ontology.name_of(s), "structure_id": s, "notes": "; ".join(st.notes)}
            for s, st in bodies.items() if st.frame is None and s not in (26, 27)]
    for k, sid in enumerate(order):
        st, h = bodies[sid], heights[sid]
        hs = np.array([h.anterior, h.middle, h.posterior])
        neighbours = [heights[order[j]] for j in (k - 1, k + 1)
                      if 0 <= j < len(order) and _adjacent(order[j], sid)]
        ratio_in = hs.min() / hs.max() if hs.max() > 0 else np.nan
        if neighbours:
            ref = np.mean([[n.anterior, n.middle, n.posterior] for n in neighbours], axis=0)
            ratio_nb = float(np.min(hs / ref))
        else:
            ratio_nb = np.nan
        loss = 1.0 - np.nanmin([ratio_in, ratio_nb])
        row = {
            "level": ontology.name_of(sid), "structure_id": sid,
            "height_anterior_mm": _round(h.anterior), "height_middle_mm": _round(h.middle),
            "height_posterior_mm": _round(h.posterior),
            "ratio_min_max": _round(ratio_in, 3), "ratio_neighbours": _round(ratio_nb, 3),
            "height_loss": _round(loss, 3), "genant_grade": genant_grade(loss),
            "shape": _shape(hs, ratio_in, loss),
            "depth_mm": _round(h.depth), "width_mm": _round(h.width), "extent_mm": _round(h.extent),
            "volume_ml": _round(len(st.cloud) * st.cloud.voxel_volume / 1000.0, 3),
            "voxels": len(st.cloud), "notes": "; ".join(st.notes),
        }
        if ct and image is not None:
            row.update(_trabecular(st, image, affine))
        rows.append(row)
    rank = {s: k for k, s in enumerate(ontology.sort_cranio_caudal(bodies))}
    return sorted(rows, key=lambda r: rank[r["structure_id"]])


def _adjacent(a: int, b: int) -> bool:
    order = ontology.vertebra_order()
    if a not in order or b not in order:
        return False
    seq = [s for s in order if s not in (28, 25)]  # T13 / L6 fit between their neighbours
    if a in seq and b in seq:
        return abs(seq.index(a) - seq.index(b)) == 1
    return True


def disc_rows(discs: dict[int, Structure], bodies: dict[int, Structure], present=()) -> list[dict]:
    """One row per disc: heights and the disc height index (mean disc height over the mean
    height of the body above)."""
    rows = []
    for sid in ontology.sort_cranio_caudal(discs):
        st = discs[sid]
        if st.frame is None:
            rows.append({"level": ontology.display_name(sid, present), "structure_id": sid,
                         "notes": "; ".join(st.notes)})
            continue
        h = st.heights
        mean = (h.anterior + h.middle + h.posterior) / 3
        above = bodies.get(sid - ontology.DISC_OFFSET)
        dhi = None
        if above is not None and above.sid != 26 and above.frame is not None:
            hb = above.heights
            dhi = mean / ((hb.anterior + hb.middle + hb.posterior) / 3)
        rows.append({
            "level": ontology.display_name(sid, present), "structure_id": sid,
            "height_anterior_mm": _round(h.anterior), "height_middle_mm": _round(h.middle),
            "height_posterior_mm": _round(h.posterior), "height_mean_mm": _round(mean),
            "disc_height_index": _round(dhi, 3), "depth_mm": _round(h.depth),
            "volume_ml": _round(len(st.cloud) * st.cloud.voxel_volume / 1000.0, 3),
        })
    return rows
