"""Level-sequence validation: the checks a radiologist runs by eye, made explicit.

One ``find_objects`` pass gives every structure's box; centroids and sizes come from the
voxels inside each box (about 24x faster than ``ndimage.center_of_mass`` on a full CT).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..anatomy import ontology
from .ops import flat_foreground, level_sequence

__all__ = ["Finding", "StructureIndex", "StructureStats", "structure_stats", "validate_sequence"]


@dataclass(frozen=True)
class Finding:
    """One problem found in a labelling; ``position`` is a display voxel to jump to."""

    kind: str  # duplicate | gap | order | disc | size | spacing | unknown
    severity: str  # error | warning
    structures: tuple[int, ...]
    message: str
    position: tuple[float, float, float]


@dataclass(frozen=True)
class StructureStats:
    id: int
    voxels: int
    centroid: tuple[float, float, float]  # display voxel coordinates
    touches_edge: bool
    components: tuple[int, ...]  # sizes of the connected pieces, largest first
    component_centroids: tuple[tuple[float, float, float], ...] = ()


def structure_stats(labels: np.ndarray) -> dict[int, StructureStats]:
    """Size, centroid, edge contact and connected pieces of every structure present.

    One cc3d pass plus bincounts over the labelled voxels only (no per-structure pass
    over the volume, so stray specks far from their structure cost nothing extra).
    """
    import cc3d

    lab = np.ascontiguousarray(labels)
    flat = lab.ravel()
    fg = flat_foreground(flat)
    if not fg.size:
        return {}
    ids = flat[fg].astype(np.int64)
    coords = np.unravel_index(fg, lab.shape)
    n_ids = int(ids.max()) + 1  # mutation-equivalent: bincount grows to the largest id anyway
    counts = np.bincount(ids, minlength=n_ids)
    sums = [np.bincount(ids, weights=c, minlength=n_ids) for c in coords]
    cc = cc3d.connected_components(lab, connectivity=26, out_dtype=np.uint32).ravel()[fg].astype(np.int64)
    comp_sizes = np.bincount(cc)
    comp_label = np.zeros(len(comp_sizes), dtype=np.int64)
    comp_label[cc] = ids
    comp_sums = [np.bincount(cc, weights=c, minlength=len(comp_sizes)) for c in coords]
    faces = set()
    for axis in range(lab.ndim):
        for k in (0, lab.shape[axis] - 1):
            faces |= set(np.unique(np.take(lab, k, axis=axis)).tolist())
    by_label: dict[int, list[int]] = {}
    for c in np.flatnonzero(comp_sizes):
        by_label.setdefault(int(comp_label[c]), []).append(int(c))
    out: dict[int, StructureStats] = {}
    for sid in np.flatnonzero(counts):
        sid = int(sid)
        comps = sorted(by_label.get(sid, []), key=lambda c: -comp_sizes[c])
        centroid = tuple(float(sm[sid] / counts[sid]) for sm in sums)
        out[sid] = StructureStats(
            sid, int(counts[sid]), centroid, sid in faces,
            tuple(int(comp_sizes[c]) for c in comps),
            tuple(tuple(float(sm[c] / comp_sizes[c]) for sm in comp_sums) for c in comps),
        )
    return out


Box = tuple[slice, ...]


def _union_box(a: Box | None, b: Box | None) -> Box | None:
    if a is None or b is None:
        return a if b is None else b
    return tuple(slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b))


def _measure(labels: np.ndarray, sid: int, box: Box) -> tuple[StructureStats, Box] | None:
    """One structure's statistics from the voxels of ``box`` (which must hold all of it),
    as :func:`structure_stats` gives them, and its own bounding box; None when absent."""
    import cc3d

    mask = np.asarray(labels[box]) == sid
    local = np.nonzero(mask)
    if not local[0].size:
        return None
    starts = [b.start for b in box]
    coords = [ix.astype(np.float64) + o for ix, o in zip(local, starts)]
    n = local[0].size
    edge = any(bool((c.min() == 0) or (c.max() == labels.shape[k] - 1)) for k, c in enumerate(coords))
    cc = cc3d.connected_components(mask, connectivity=26, out_dtype=np.uint32)[local].astype(np.int64)
    sizes = np.bincount(cc)
    sums = [np.bincount(cc, weights=c, minlength=len(sizes)) for c in coords]
    comps = sorted(np.flatnonzero(sizes).tolist(), key=lambda c: -sizes[c])
    stats = StructureStats(sid, int(n), tuple(float(c.sum() / n) for c in coords), edge,
                           tuple(int(sizes[c]) for c in comps),
                           tuple(tuple(float(sm[c] / sizes[c]) for sm in sums) for c in comps))
    own = tuple(slice(int(ix.min()) + o, int(ix.max()) + o + 1) for ix, o in zip(local, starts))
    return stats, own


class StructureIndex:
    """Every structure's statistics, kept up to date after edits by re-measuring only the
    structures an edit touched, each inside its own box grown by the edit's box.

    A stroke on a 512x512x300 case then costs a few of its structures' boxes, not a pass
    over the volume; :func:`validate_sequence` takes :attr:`stats` as they are.
    """

    def __init__(self, labels: np.ndarray):
        from scipy import ndimage

        self.stats = structure_stats(labels)
        self.boxes: dict[int, Box] = {}
        ids = sorted(self.stats)
        if ids:  # every structure's box in one pass
            objs = ndimage.find_objects(np.ascontiguousarray(labels), max_label=max(ids))
            for sid in ids:
                if objs[sid - 1] is not None:
                    self.boxes[sid] = objs[sid - 1]

    def update(self, labels: np.ndarray, ids, box: Box | None) -> None:
        """Re-measure the structures ``ids`` after an edit inside ``box`` (None: anywhere)."""
        for sid in sorted({int(i) for i in ids} - {0}):
            region = _union_box(self.boxes.get(sid), box)
            if region is None or box is None:
                region = tuple(slice(0, n) for n in labels.shape)
            got = _measure(labels, sid, region)
            if got is None:
                self.stats.pop(sid, None)
                self.boxes.pop(sid, None)
            else:
                self.stats[sid], self.boxes[sid] = got


# long: one pass over the structure statistics with a check per rule, in reading order;
# the rules share the per-level stats and the finding list
def validate_sequence(
    labels: np.ndarray,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    *,
    stats: dict[int, StructureStats] | None = None,
) -> list[Finding]:
    """Check the vertebra/disc sequence of display-ordered canonical labels.

    Reports duplicated levels (a level in two separate places), gaps, levels out of
    cranio-caudal order, discs not between their two vertebrae, implausible sizes and
    unusual distances between neighbouring levels. Row 0 is superior
    (:mod:`napari_spine.geometry`).
    """
    st = stats if stats is not None else structure_stats(labels)
    sp = np.asarray(spacing, dtype=float)
    vox_mm3 = float(np.prod(sp))
    findings: list[Finding] = []
    seq = level_sequence(("T13", "L6"))
    order = {v: i for i, v in enumerate(seq)}

    for sid in st:
        if sid not in ontology.BY_ID:
            findings.append(Finding("unknown", "error", (sid,), f"label {sid} is not a known structure",
                                    st[sid].centroid))

    verts = sorted((s for s in st if s in order), key=order.get)
    # duplicated levels: two substantial pieces of one level
    for sid in [*verts, *(s for s in st if ontology.is_disc(s))]:
        comps = st[sid].components
        if len(comps) > 1 and comps[1] >= max(0.2 * comps[0], 50.0 / vox_mm3):
            # mutation-equivalent[Gt -> GtE]: two pieces or more here
            second = st[sid].component_centroids[1] if len(st[sid].component_centroids) > 1 \
                else st[sid].centroid
            findings.append(Finding("duplicate", "error", (sid,),
                                    f"{ontology.name_of(sid)} appears in {sum(c >= 0.2 * comps[0] for c in comps)} "
                                    "separate places", second))
    # gaps in the sequence (transitional T13 / L6 are optional)
    if verts:
        span = seq[order[verts[0]] : order[verts[-1]] + 1]
        for sid in span:
            if sid not in st and sid not in (28, 25):
                # mutation-equivalent[Lt -> LtE, Gt -> GtE]: sid, missing, is not among verts
                prev = max((v for v in verts if order[v] < order[sid]), key=order.get)
                # mutation-equivalent[Lt -> LtE, Gt -> GtE]: sid, missing, is not among verts
                nxt = min((v for v in verts if order[v] > order[sid]), key=order.get)
                pos = tuple((np.asarray(st[prev].centroid) + st[nxt].centroid) / 2)
                findings.append(Finding("gap", "error", (sid,),
                                        f"{ontology.name_of(sid)} is missing between "
                                        f"{ontology.name_of(prev)} and {ontology.name_of(nxt)}", pos))
    # cranio-caudal order: rows must increase down the sequence
    for a, b in zip(verts, verts[1:]):
        if st[b].centroid[1] <= st[a].centroid[1]:
            findings.append(Finding("order", "error", (a, b),
                                    f"{ontology.name_of(b)} lies above {ontology.name_of(a)}",
                                    st[b].centroid))
    # discs between their two vertebrae
    present = set(st)
    for did in sorted(s for s in st if ontology.is_disc(s) and s != ontology.GENERIC_DISC):
        upper = did - ontology.DISC_OFFSET
        name = ontology.display_name(did, present)
        if upper not in st:
            findings.append(Finding("disc", "warning", (did,), f"disc {name} without vertebra "
                                    f"{ontology.name_of(upper)}", st[did].centroid))
            continue
        # mutation-equivalent[1 -> 2, 99 -> 100]: the defaults are never used (all are levels)
        below = [v for v in verts if order.get(v, -1) > order.get(upper, 99)]
        row = st[did].centroid[1]
        if row <= st[upper].centroid[1] or (below and row >= st[below[0]].centroid[1]):
            lower = ontology.name_of(below[0]) if below else "the level below"
            findings.append(Finding("disc", "error", (did,), f"disc {name} is not between "
                                    f"{ontology.name_of(upper)} and {lower}", st[did].centroid))
    # implausible sizes (structures cut by the field of view are excused)
    whole = [s for s in verts if not st[s].touches_edge]
    if len(whole) >= 3:
        med = float(np.median([st[s].voxels for s in whole]))
        for s in whole:
            ratio = st[s].voxels / med
            if ratio < 0.25 or ratio > 4.0:
                findings.append(Finding("size", "warning", (s,),
                                        f"{ontology.name_of(s)} is {ratio:.1f}x the median vertebra volume "
                                        f"({st[s].voxels * vox_mm3 / 1000:.1f} mL)", st[s].centroid))
    # distances between neighbouring levels: a long jump hides an unlabelled level
    if len(verts) >= 3:
        cent = np.array([st[v].centroid for v in verts]) * sp
        steps = np.linalg.norm(np.diff(cent, axis=0), axis=1)
        med = float(np.median(steps))
        for (a, b), d in zip(zip(verts, verts[1:]), steps):
            if med > 0 and d > 1.8 * med and order[b] == order[a] + 1:
                findings.append(Finding("spacing", "warning", (a, b),
                                        f"{d:.0f} mm between {ontology.name_of(a)} and {ontology.name_of(b)} "
                                        f"(typical {med:.0f} mm): a level may be unlabelled",
                                        tuple((np.asarray(st[a].centroid) + st[b].centroid) / 2)))
    return findings
