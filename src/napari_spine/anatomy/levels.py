"""Level identification for semantic spine masks (vertebral body / disc without levels).

CSpineSeg and TotalSegmentator's ``vertebrae_body`` label every vertebral body with one id
and every disc with another; :func:`identify_levels` numbers them:

1. **Components.** One 26-connected pass (cc3d) over the bodies and one over the discs.
   Specks under ``min_volume_mm3`` are ignored; a fragment (under 30 % of the typical
   body) that touches a body is merged into it; a small piece at the edge of the field of
   view is a partial level; any other small piece is ignored. Every merge and every
   ignored piece is listed.
2. **Along the spine.** Bodies are ordered along the column's principal axis. Each body's
   height is measured along the local tangent of the curve through the body centroids,
   so lordosis, kyphosis and scoliosis do not change it.
3. **Fused bodies are split.** A body much taller than the typical one (or than 0.8 x
   its own depth, the shape of a single vertebral body) holds ``k`` levels. It is cut at
   the discs inside it when there are any, else at the narrowest cross-sections near the
   expected cuts.
4. **The anchor comes from the anatomy**, in this order:
   - the user's anchor, when given (the level of the top body);
   - the sacrum: the caudal-most, large, wedge-shaped body;
   - the ribs, when a rib mask is given: the body at the head of the lowest rib is T12
     (T13 with 13 ribs);
   - C2: the top body, clearly taller than the next ones and narrowing upwards (the dens).

   When none of these shows, the region is guessed from the body height in mm and the
   result says "anchor assumed". When the sacrum and the ribs both show, the number of
   bodies between them decides L4, L5 or L6.
5. **Discs** take their names from the body above them. A disc with no body above is
   named from the sequence, with a warning.

Each level carries a confidence and its reason. :meth:`LevelResult.shifted` gives the
numbering one level up or down (offered when the anchor was assumed). The input is never
modified.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import ontology

__all__ = ["LevelInfo", "LevelResult", "identify_levels", "rib_masks", "standard_levels"]

_FRAGMENT = 0.30  # of the median body volume: smaller pieces are fragments
_FUSED = 1.6  # taller than this many typical bodies: fused
_SHAPE = 0.8  # a single body is about 0.8 x as tall as it is deep (AP)
_MIN_DEPTH = 5.0  # mm: shallower than any vertebral body, so no shape to judge by
_CONFIDENCE = {"given": 0.95, "sacrum": 0.9, "ribs": 0.85, "C2": 0.85, "assumed": 0.3}


def standard_levels() -> tuple[str, ...]:
    """C1 ... C7, T1 ... T12, L1 ... L5, S1: the usual cranio-caudal sequence."""
    return ontology.level_names()


def rib_masks(native_labels: np.ndarray, names: dict[int, str]) -> dict[int, np.ndarray]:
    """Rib number -> mask (left and right together) from a label file's own names, as
    TotalSegmentator writes them (``rib_left_12``, ``rib_right_12``); empty without ribs.

    >>> lab = np.array([[[0, 7, 8, 9]]])
    >>> {n: int(m.sum()) for n, m in rib_masks(lab, {7: "rib_left_12", 8: "rib_right_12", 9: "liver"}).items()}
    {12: 2}
    """
    import re

    out: dict[int, np.ndarray] = {}
    for nid, name in names.items():
        m = re.fullmatch(r"rib_(?:left|right)_(\d+)", str(name).strip().lower())
        if m:
            n = int(m.group(1))
            out[n] = out.get(n, np.zeros(native_labels.shape, bool)) | (native_labels == nid)
    return out


@dataclass(frozen=True)
class LevelInfo:
    """One numbered vertebral body: its id, how sure the numbering is, and why."""

    structure_id: int
    name: str
    confidence: float
    reason: str
    voxels: int
    centroid: tuple[float, float, float]  # display voxel coordinates


@dataclass
class LevelResult:
    """Per-level labels and what was assigned, assumed, split, merged and ignored."""

    labels: np.ndarray
    bodies: list[tuple[int, float]] = field(default_factory=list)  # (canonical id, centroid row)
    discs: list[tuple[int, float]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    levels: list[LevelInfo] = field(default_factory=list)
    anchor: str = ""  # the level the numbering starts from
    anchor_source: str = ""  # "given", "sacrum", "ribs", "C2" or "assumed"
    splits: list[str] = field(default_factory=list)
    merges: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    #: level shifts worth a look (``-1``: one level up), offered when the anchor was assumed
    alternatives: tuple[int, ...] = ()

    @property
    def assumed(self) -> bool:
        """Whether no anatomical anchor was found (the numbering is a guess)."""
        return self.anchor_source == "assumed"

    def summary(self) -> str:
        """One line for the panel: how many levels, from which anchor, what was done."""
        src = {"given": "as given", "assumed": "anchor assumed"}.get(self.anchor_source,
                                                                     f"anchor: {self.anchor_source}")
        parts = [f"{len(self.bodies)} bodies and {len(self.discs)} discs numbered from "
                 f"{self.anchor} ({src})"]
        parts += self.splits + self.merges
        if self.ignored:
            parts.append(f"{len(self.ignored)} small piece(s) ignored")
        return "; ".join(parts)

    def shifted(self, step: int) -> np.ndarray:
        """The labels numbered ``step`` levels lower (``-1``: one level higher), discs with them."""
        ids = {v for v, _ in self.bodies}
        seq = [ontology.vertebra_id(v) for v in _sequence(6 if ontology.vertebra_id("L6") in ids else 5,
                                                          13 if ontology.vertebra_id("T13") in ids else 12)]
        # mutation-equivalent[256 -> 257]: a uint8 label never reads entry 256
        lut = np.arange(256, dtype=np.uint8)
        for vid, _ in self.bodies:
            k = seq.index(vid) + step
            if not 0 <= k < len(seq):
                # mutation-equivalent[Lt -> LtE, 0 -> 1]: k is never 0 here
                raise ValueError(f"shifting by {step} runs past {'C1' if k < 0 else 'S1'}")
            lut[vid] = seq[k]
            if vid + ontology.DISC_OFFSET in ontology.BY_ID:  # its disc moves with it; where the
                # new level has no disc below it (C1, S1) the disc goes back to the generic id
                disc = seq[k] + ontology.DISC_OFFSET
                lut[vid + ontology.DISC_OFFSET] = disc if disc in ontology.BY_ID else ontology.GENERIC_DISC
        return lut[self.labels]


def _sequence(lumbar: int = 5, thoracic: int = 12) -> tuple[str, ...]:
    cerv = [f"C{i}" for i in range(1, 8)]
    thor = [f"T{i}" for i in range(1, thoracic + 1)]
    lumb = [f"L{i}" for i in range(1, lumbar + 1)]
    return (*cerv, *thor, *lumb, "S1")


@dataclass
class _Body:
    crop: tuple[slice, slice, slice]
    mask: np.ndarray  # within crop
    centroid: np.ndarray  # mm
    note: str = ""
    edge: bool = False  # reaches the top or bottom of the field of view (a partial level)

    @property
    def voxels(self) -> int:
        return int(self.mask.sum())

    def coords_mm(self, sp: np.ndarray) -> np.ndarray:
        idx = np.argwhere(self.mask)
        return (idx + [s.start for s in self.crop]) * sp


def _components(labels: np.ndarray, body_ids, disc_id: int, sp: np.ndarray) -> tuple[list[_Body], list[_Body]]:
    """Body and disc components: one multi-label cc3d pass over the label volume (each
    label value is connected on its own) and one bounding-box pass; the rest works on
    the boxes only."""
    import cc3d
    from scipy import ndimage

    comp = cc3d.connected_components(labels, connectivity=26)
    bodies, discs = [], []
    body_ids = {int(v) for v in np.atleast_1d(body_ids)}
    for i, box in enumerate(ndimage.find_objects(comp), start=1):
        if box is None:
            continue
        m = comp[box] == i
        value = int(labels[box][m].flat[0])
        if value not in body_ids and value != disc_id:
            continue
        idx = np.argwhere(m)
        b = _Body(box, m, (idx.mean(axis=0) + [s.start for s in box]) * sp,
                  edge=box[1].start == 0 or box[1].stop == labels.shape[1])
        (bodies if value in body_ids else discs).append(b)
    return bodies, discs


def _axis(points: np.ndarray) -> np.ndarray:
    """The column's principal direction, pointing inferior (display axis 1 increases)."""
    if len(points) < 2:
        return np.array([0.0, 1.0, 0.0])
    # mutation-equivalent: vt[0] is the same either way
    _, _, vt = np.linalg.svd(points - points.mean(axis=0), full_matrices=False)
    d = vt[0]
    # mutation-equivalent[GtE -> Gt]: a column lying across the rows has no inferior sense
    return d if d[1] >= 0 else -d


def _tangents(centroids: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Local direction of the column at each (ordered) body: the chord through its neighbours."""
    n = len(centroids)
    out = np.tile(axis, (n, 1))
    for i in range(n):
        a, b = centroids[max(i - 1, 0)], centroids[min(i + 1, n - 1)]
        if np.linalg.norm(b - a) > 0:  # one body: a == b
            t = (b - a) / np.linalg.norm(b - a)
            # mutation-equivalent[GtE -> Gt]: a chord across the column has no inferior sense
            out[i] = t if t @ axis >= 0 else -t
    return out


def _extent(pts: np.ndarray, direction: np.ndarray) -> tuple[float, float]:
    p = pts @ direction
    return float(np.percentile(p, 1)), float(np.percentile(p, 99))


def _depth(pts: np.ndarray, tangent: np.ndarray) -> float:
    """Extent across the column in the sagittal plane (the body's AP depth)."""
    ap = np.array([0.0, 0.0, 1.0]) - tangent * tangent[2]
    if np.linalg.norm(ap) < 1e-6:  # mutation-equivalent[Lt -> LtE]: a norm of exactly 1e-6
        return 0.0
    lo, hi = _extent(pts, ap / np.linalg.norm(ap))
    return hi - lo


def _clean(bodies: list[_Body], labels_shape, sp: np.ndarray, min_vox: int, result: LevelResult) -> list[_Body]:
    """Drop specks and stray pieces, merge fragments into the body they touch."""
    keep = [b for b in bodies if b.voxels >= min_vox]
    for b in bodies:
        if b.voxels < min_vox:
            result.ignored.append(f"a speck of {b.voxels} voxels at row {b.centroid[1] / sp[1]:.0f}")
    if len(keep) < 2:
        return keep
    axis = _axis(np.array([b.centroid for b in keep]))
    keep.sort(key=lambda b: b.centroid @ axis)
    vols = np.array([b.voxels for b in keep], float)
    # a fragment is small next to its neighbours (two on each side): cervical bodies are
    # small next to lumbar ones, not next to each other
    local = [np.median(np.r_[vols[max(i - 2, 0):i], vols[i + 1:i + 3]]) for i in range(len(keep))]
    small = [b.voxels < _FRAGMENT * ref for b, ref in zip(keep, local)]
    big = [b for b, s in zip(keep, small) if not s]
    if not big:
        return keep
    rows = [b.centroid[1] for b in big]
    out = list(big)
    for b, s in zip(keep, small):
        if not s:
            continue
        host = _touching(b, big)
        at_edge = any(s.start == 0 or s.stop == n for s, n in zip(b.crop, labels_shape))
        beyond = b.centroid[1] < min(rows) or b.centroid[1] > max(rows)
        if host is not None:
            _merge(host, b)
            result.merges.append(f"a fragment of {b.voxels} voxels merged into the body at row "
                                 f"{host.centroid[1] / sp[1]:.0f}")
        elif at_edge and beyond:
            b.note = "partial at the edge of the field of view"
            out.append(b)
        else:
            result.ignored.append(f"a piece of {b.voxels} voxels at row {b.centroid[1] / sp[1]:.0f}")
    return out


def _touching(frag: _Body, bodies: list[_Body]) -> _Body | None:
    """The body within one voxel of ``frag`` (the one with the most contact), if any."""
    from scipy import ndimage

    best, most = None, 0
    # mutation-equivalent[1 -> 2]: a box wider than the one-voxel dilation reaches adds zeros only
    grow = [slice(max(s.start - 1, 0), s.stop + 1) for s in frag.crop]
    for b in bodies:
        lo = [max(g.start, s.start) for g, s in zip(grow, b.crop)]
        hi = [min(g.stop, s.stop) for g, s in zip(grow, b.crop)]
        # mutation-equivalent[LtE -> Lt]: an empty overlap has no contact
        if any(h <= l for l, h in zip(lo, hi)):
            continue
        # mutation-equivalent[Sub -> Add]: zeros only
        f = np.zeros([g.stop - g.start for g in grow], bool)
        f[tuple(slice(s.start - g.start, s.stop - g.start) for s, g in zip(frag.crop, grow))] = frag.mask
        f = ndimage.binary_dilation(f, np.ones((3, 3, 3), bool))
        bm = b.mask[tuple(slice(l - s.start, h - s.start) for l, h, s in zip(lo, hi, b.crop))]
        contact = int((f[tuple(slice(l - g.start, h - g.start) for l, h, g in zip(lo, hi, grow))] & bm).sum())
        if contact > most:
            best, most = b, contact
    return best


def _merge(host: _Body, frag: _Body) -> None:
    lo = [min(a.start, b.start) for a, b in zip(host.crop, frag.crop)]
    hi = [max(a.stop, b.stop) for a, b in zip(host.crop, frag.crop)]
    m = np.zeros([h - l for l, h in zip(lo, hi)], bool)
    for b in (host, frag):
        m[tuple(slice(s.start - l, s.stop - l) for s, l in zip(b.crop, lo))] |= b.mask
    n0, n1 = host.voxels, frag.voxels
    host.centroid = (host.centroid * n0 + frag.centroid * n1) / (n0 + n1)
    host.crop, host.mask = tuple(slice(l, h) for l, h in zip(lo, hi)), m


# long: the three kinds of split (waists, the sacrum's top, fused heights) share the ordered
# bodies with their tangents, extents and heights, which each one updates for the next
def _split_fused(bodies: list[_Body], discs: list[_Body], sp: np.ndarray, n_rows: int,
                 result: LevelResult) -> list[_Body]:
    """Cut bodies that hold several levels; returns the bodies in cranio-caudal order.

    First at deep waists of the cross-section along the column (where two vertebrae only
    touch: a bridge, facet joints), then, for what is still much taller than the typical
    body, into ``k`` pieces at the discs inside it or at its narrowest cross-sections.
    """
    if not bodies:
        return bodies
    axis = _axis(np.array([b.centroid for b in bodies]))
    step = float(max(sp[int(np.argmax(np.abs(axis)))], 0.5))
    waisted = []
    for b, t in zip(*_ordered(bodies, axis)):
        proj = b.coords_mm(sp) @ t
        cuts = _waists(proj, step)
        pieces = _cut(b, proj, cuts, sp, n_rows) if cuts else [b]
        if len(pieces) > 1:
            result.splits.append(f"a body at row {b.centroid[1] / sp[1]:.0f} split into {len(pieces)} "
                                 "at its waists")
        waisted.extend(pieces)
    out = []
    ordered, tang = _ordered(waisted, axis)
    pts = [b.coords_mm(sp) for b in ordered]
    ext = [_extent(p, t) for p, t in zip(pts, tang)]
    heights = np.array([hi - lo for lo, hi in ext]) + step
    # the typical body: the median height of the whole ones (partial levels at the edge of
    # the field of view are shorter), unless that itself looks like two bodies or more by
    # shape (a single body is about as tall as 0.8 x its depth)
    whole = np.array([not b.edge for b in ordered]) if any(not b.edge for b in ordered) else np.ones(len(ordered), bool)
    ref = float(np.median(heights[whole]))
    depth = float(np.median([_depth(p, t) for p, t in zip(pts, tang)]))
    # a mask only a few mm deep (a strip, a single sagittal line) has no body shape to judge by
    # mutation-equivalent[Gt -> GtE]: a typical height exactly 1.76 x the depth is a float coincidence
    if depth >= _MIN_DEPTH and ref > 2.2 * _SHAPE * depth:
        ref = _SHAPE * depth
    disc_gap = max(_pitch(ordered, axis, heights, ref) - ref, 0.0)
    _mark_sacrum_and_c2(ordered, heights, ref, sp, axis)
    if ordered[-1].note == "sacrum":  # L5 fused onto the sacrum: a narrower body on its top
        pieces = _sacrum_top(ordered[-1], tang[-1], ref, step, sp, n_rows)
        if len(pieces) == 2:
            result.splits.append(f"a body fused onto the sacrum at row {pieces[0].centroid[1] / sp[1]:.0f} "
                                 "split off at its narrowest cross-section")
            ordered[-1:] = pieces
            tang = np.vstack([tang, tang[-1:]])
            pts[-1:] = [pc.coords_mm(sp) for pc in pieces]
            ext[-1:] = [_extent(p, tang[-1]) for p in pts[-2:]]
            heights = np.array([hi - lo for lo, hi in ext]) + step
    for b, p, t, (lo, hi), h in zip(ordered, pts, tang, ext, heights):
        # the sacrum is fused vertebrae and C2 carries the dens: tall, but one level each
        # mutation-equivalent[Gt -> GtE]: a height exactly 1.6 x the typical one is a float coincidence
        tall = h > _FUSED * ref and b.note not in ("sacrum", "C2")
        k = int(round((h + disc_gap) / (ref + disc_gap))) if tall else 1
        if k < 2:
            out.append(b)
            continue
        cuts, how = _cuts(p @ t, lo, hi, k, [d.centroid @ t for d in discs], ref)
        pieces = _cut(b, p @ t, cuts, sp, n_rows)
        out.extend(pieces)
        result.splits.append(f"a body of {h:.0f} mm at row {b.centroid[1] / sp[1]:.0f} split into "
                             f"{len(pieces)} {how}")
    out.sort(key=lambda b: b.centroid @ axis)
    return out


def _ordered(bodies: list[_Body], axis: np.ndarray) -> tuple[list[_Body], np.ndarray]:
    ordered = sorted(bodies, key=lambda b: b.centroid @ axis)
    return ordered, _tangents(np.array([b.centroid for b in ordered]), axis)


def _waists(proj: np.ndarray, step: float, min_len: float = 8.0) -> list[float]:
    """Positions along the column where the cross-section drops below 40 % of the
    largest cross-sections on both sides (at least ``min_len`` mm from the ends and
    from each other): where one vertebra ends and the next begins."""
    lo, hi = float(proj.min()), float(proj.max())
    # mutation-equivalent[Mult -> Div]: a shortcut; the loop rejects these too
    if hi - lo < 2 * min_len:
        return []
    edges = np.arange(lo, hi + step, step)
    area, _ = np.histogram(proj, edges)
    area = area.astype(float)
    centres = edges[:-1] + step / 2
    cuts: list[tuple[float, float]] = []
    for i in range(1, len(area) - 1):
        c = centres[i]
        if c - lo < min_len or hi - c < min_len or area[i] > min(area[i - 1], area[i + 1]):
            continue
        near = np.abs(centres - c) <= 3 * min_len
        left, right = area[:i][near[:i]], area[i + 1:][near[i + 1:]]
        if len(left) and len(right) and area[i] < 0.4 * min(left.max(), right.max()):
            if cuts and c - cuts[-1][0] < min_len:  # one waist: keep the deeper point
                if area[i] < cuts[-1][1]:  # of equal ones, the first
                    cuts[-1] = (c, area[i])
                continue
            cuts.append((c, area[i]))
    return [c for c, _ in cuts]


def _pitch(bodies, axis, heights, ref) -> float:
    """Median centre-to-centre distance of neighbouring single bodies (body + disc height)."""
    c = np.array([b.centroid @ axis for b in bodies])
    ok = [c[i + 1] - c[i] for i in range(len(c) - 1)
          if heights[i] < _FUSED * ref and heights[i + 1] < _FUSED * ref]
    return float(np.median(ok)) if ok else 1.25 * ref


def _cuts(proj: np.ndarray, lo: float, hi: float, k: int, disc_pos: list[float], ref: float):
    """``k - 1`` cut positions: the discs inside the body when there are enough, else the
    narrowest cross-sections near even spacing."""
    inside = sorted(d for d in disc_pos if lo + 0.25 * ref < d < hi - 0.25 * ref)
    if len(inside) >= k - 1:
        want = [lo + (hi - lo) * j / k for j in range(1, k)]
        return [min(inside, key=lambda d, w=w: abs(d - w)) for w in want], "at the discs inside it"
    step = 0.5
    # the bins stay on the same grid whatever the range, which only has to cover the cut
    # windows (at least 0.65 of a piece inside lo .. hi)  # mutation-equivalent: see above
    edges = np.arange(lo - step, hi + 2 * step, step)
    area, _ = np.histogram(proj, edges)
    w = max(1, int(round(0.1 * ref / step)))
    # mutation-equivalent[Div -> Mult]: a scale, same argmin
    area = np.convolve(area, np.ones(w) / w, mode="same")
    centres = edges[:-1] + step / 2
    cuts = []
    for j in range(1, k):
        e = lo + (hi - lo) * j / k
        # mutation-equivalent[LtE -> Lt]: a bin centre exactly on the window's float edge
        sel = np.abs(centres - e) <= 0.35 * (hi - lo) / k
        cuts.append(float(centres[sel][np.argmin(area[sel])]) if sel.any() else e)
    return cuts, "at its narrowest cross-sections"


def _cut(b: _Body, proj: np.ndarray, cuts: list[float], sp: np.ndarray, n_rows: int) -> list[_Body]:
    idx = np.argwhere(b.mask)
    piece = np.searchsorted(sorted(cuts), proj)
    out = []
    for j in range(len(cuts) + 1):  # mutation-equivalent[1 -> 2]: an empty piece is skipped
        sel = idx[piece == j]
        if not len(sel):
            continue
        m = np.zeros_like(b.mask)
        m[tuple(sel.T)] = True
        rows = sel[:, 1] + b.crop[1].start
        out.append(_Body(b.crop, m, (sel.mean(axis=0) + [s.start for s in b.crop]) * sp,
                         "split from a fused body", edge=rows.min() == 0 or rows.max() == n_rows - 1))
    return out


def _profile(b: _Body, sp: np.ndarray, direction: np.ndarray, parts: int = 3) -> np.ndarray:
    """Voxel counts of the body in ``parts`` equal slabs along ``direction`` (top first)."""
    p = b.coords_mm(sp) @ direction
    counts, _ = np.histogram(p, np.linspace(p.min(), p.max() + 1e-6, parts + 1))
    return counts.astype(float)


def _sacrum_top(b: _Body, t: np.ndarray, ref: float, step: float, sp: np.ndarray, n_rows: int) -> list[_Body]:
    """Split a body off the top of the sacrum when one sits there: a genuine sacrum is widest
    at its top, so a top part narrower than what lies below it is the fused L5."""
    proj = b.coords_mm(sp) @ t
    top = float(proj.min())
    edges = np.arange(top, float(proj.max()) + step, step)
    area, _ = np.histogram(proj, edges)
    c = edges[:-1] + step / 2
    win = (c >= top + 0.6 * ref) & (c <= top + 1.4 * ref)
    if not win.any() or c[-1] - top < 2.0 * ref:
        return [b]
    cut = float(c[win][np.argmin(area[win])])
    upper = area[c < cut].mean()
    lower = area[(c > cut) & (c <= cut + 0.5 * ref)]
    if not len(lower) or upper >= 0.75 * lower.mean():
        return [b]
    pieces = _cut(b, proj, [cut], sp, n_rows)
    if len(pieces) == 2:
        pieces[0].note, pieces[1].note = "split from the top of the sacrum", "sacrum"
    return pieces


def _mark_sacrum_and_c2(ordered: list[_Body], heights: np.ndarray, ref: float, sp: np.ndarray,
                        axis: np.ndarray) -> None:
    """Note the caudal-most body as the sacrum when it is large and wedge-shaped (it narrows
    caudally), and the top body as C2 when it is clearly taller than the typical body and
    narrows upwards (the dens)."""
    if len(ordered) < 3:
        return
    last, first = ordered[-1], ordered[0]
    vols = np.array([b.voxels for b in ordered[:-1]], float)
    prof = _profile(last, sp, axis)
    if last.voxels >= 1.5 * np.median(vols) and prof[2] < 0.6 * prof[0] and not last.edge:
        last.note = "sacrum"
    top = _profile(first, sp, axis)
    if (1.35 * ref <= heights[0] <= 2.8 * ref and top[0] < 0.55 * top[2] and not first.edge
            and first.note != "sacrum"):
        first.note = "C2"


def _anatomical_anchor(bodies: list[_Body], sp: np.ndarray, ribs) -> tuple[str, int, str] | None:
    """(source, index of the anchored body, its level) from the sacrum, the ribs or C2."""
    if bodies and bodies[-1].note == "sacrum":
        return "sacrum", len(bodies) - 1, "S1"
    if ribs and len(bodies) >= 2:
        found = _rib_anchor(bodies, sp, ribs, _axis(np.array([b.centroid for b in bodies])))
        if found is not None:
            return found
    if bodies and bodies[0].note == "C2":
        return "C2", 0, "C2"
    return None


def _rib_anchor(bodies, sp, ribs, axis) -> tuple[str, int, str] | None:
    """The body at the head (medial end) of the lowest rib is T<n> (n: that rib's number)."""
    n = max(ribs)
    mask = np.asarray(ribs[n], bool)
    if not mask.any():
        return None
    pts = np.argwhere(mask) * sp
    cents = np.array([b.centroid for b in bodies])
    d = np.linalg.norm(pts[:, None, :] - cents[None, :, :], axis=2).min(axis=1)
    head = pts[d <= np.percentile(d, 5)]  # the rib's end nearest the column
    pos = float((head @ axis).mean())
    k = int(np.argmin([abs(c @ axis - pos) for c in cents]))
    return "ribs", k, f"T{n}"


def _assumed_anchor(bodies: list[_Body], sp: np.ndarray, whole_vertebrae: bool) -> tuple[int, str, str]:
    """(index, level, why) from the height of the whole (not partial) bodies when the
    anatomy shows no anchor. Whole vertebrae are taller than their bodies (the articular
    processes reach above and below), so they have their own limits."""
    axis = _axis(np.array([b.centroid for b in bodies]))
    pool = [b for b in bodies if not b.edge] or bodies
    h = float(np.median([np.ptp(b.coords_mm(sp) @ axis) for b in pool]))
    cervical, thoracic = (24.0, 33.0) if whole_vertebrae else (17.0, 24.0)
    what = "vertebrae" if whole_vertebrae else "bodies"
    # h comes through a matrix product: a body exactly on a limit is not reproducible to the
    # last bit  # mutation-equivalent[Lt -> LtE]: see above
    if h < cervical:
        return 0, "C3", f"cervical-sized {what} ({h:.0f} mm): the top one taken as C3"
    if h < thoracic:  # mutation-equivalent[Lt -> LtE]: as above
        return len(bodies) - 1, "T12", f"thoracic-sized {what} ({h:.0f} mm): the lowest taken as T12"
    return len(bodies) - 1, "L5", f"lumbar-sized {what} ({h:.0f} mm): the lowest taken as L5"


def identify_levels(
    labels: np.ndarray,
    anchor: str | None = None,
    *,
    spacing=(1.0, 1.0, 1.0),
    body_id: int | tuple[int, ...] = (ontology.GENERIC_VERTEBRAL_BODY, ontology.GENERIC_VERTEBRA),
    disc_id: int = ontology.GENERIC_DISC,
    min_volume_mm3: float = 50.0,
    ribs: dict[int, np.ndarray] | None = None,
) -> LevelResult:
    """Number generic bodies and discs by level (display-ordered labels, superior = row 0).

    Parameters
    ----------
    labels : (D0, D1, D2) uint8
        Canonical ids; ``body_id`` / ``disc_id`` voxels are split into levels.
    anchor : str, optional
        Level of the topmost vertebral body in the field of view, when the user knows it;
        ``None`` (or ``"auto"``) finds it from the anatomy (see the module docstring).
    spacing : 3 floats
        Voxel size in mm along the display axes.
    min_volume_mm3 : float
        Pieces smaller than this (noise, partial-volume slivers) keep their generic id.
    ribs : dict, optional
        Rib number -> boolean mask on the same grid (e.g. TotalSegmentator's
        ``rib_left_12`` | ``rib_right_12``), used to anchor T12.

    >>> lab = np.zeros((4, 40, 8), np.uint8)
    >>> for top in (2, 14, 26):
    ...     lab[:, top:top + 9, :] = ontology.GENERIC_VERTEBRAL_BODY
    >>> res = identify_levels(lab, "L3")
    >>> [ontology.name_of(v) for v, _ in res.bodies], res.anchor_source
    (['L3', 'L4', 'L5'], 'given')
    """
    if isinstance(anchor, str) and anchor.lower() in ("auto", "automatic"):
        anchor = None
    if anchor is not None and anchor not in _sequence(6, 13):
        raise ValueError(f"anchor {anchor!r} is not a level ({', '.join(standard_levels())})")
    sp = np.asarray(spacing, dtype=float)
    min_vox = max(1, int(round(min_volume_mm3 / float(np.prod(sp)))))
    out = np.array(labels, dtype=np.uint8, copy=True)
    result = LevelResult(labels=out)
    bodies, discs = _components(labels, body_id, disc_id, sp)
    discs = [d for d in discs if d.voxels >= min_vox]
    bodies = _clean(bodies, labels.shape, sp, min_vox, result)
    bodies = _split_fused(bodies, discs, sp, labels.shape[1], result)
    if not bodies:
        result.warnings.append("no vertebral body components found")
        return result
    whole = bool(np.isin(labels, [ontology.GENERIC_VERTEBRA]).any())
    names, conf, why = _number(bodies, anchor, sp, ribs, whole, result)
    _write_bodies(bodies, names, conf, why, sp, result)
    _name_discs(discs, bodies, names, sp, result)
    if result.assumed:
        result.alternatives = (-1, +1)
        result.warnings.append(f"anchor assumed: {why}; check the numbering")
    return result


def _number(bodies, anchor, sp, ribs, whole: bool, result) -> tuple[list[str | None], list[float], str]:
    """The level name of every body (None past S1), its confidence, and the reason."""
    found = None if anchor is not None else _anatomical_anchor(bodies, sp, ribs)
    if anchor is not None:
        src, k, level, why = "given", 0, anchor, f"numbered from {anchor} as given"
    elif found is not None:
        src, k, level = found
        why = {"sacrum": "the sacrum", "ribs": f"the lowest rib ({level})", "C2": "C2 (dens)"}[src]
        why = f"counted from {why}"
    else:
        src = "assumed"
        k, level, why = _assumed_anchor(bodies, sp, whole)
        why = why.replace(": ", ", ", 1)  # mutation-equivalent[1 -> 2]: the reason has one colon
    lumbar, thoracic = 5, 13 if level == "T13" else 12
    if src == "sacrum" and ribs:  # both ends show: count the lumbar spine between them
        rib = _rib_anchor(bodies, sp, ribs, _axis(np.array([b.centroid for b in bodies])))
        if rib is not None and rib[2] in ("T12", "T13"):
            thoracic = int(rib[2][1:])
            lumbar = len(bodies) - 1 - rib[1] - 1  # bodies between the last rib-bearing one and S1
            if lumbar != 5 or thoracic != 12:
                result.warnings.append(f"{thoracic} rib-bearing and {lumbar} lumbar vertebrae above "
                                       "the sacrum (transitional anatomy)")
    lumbar = 6 if level == "L6" else lumbar  # mutation-equivalent[6 -> 7]: clamped to 6 below
    seq = list(_sequence(max(1, min(lumbar, 6)), thoracic))
    first = seq.index(level) - k
    result.anchor, result.anchor_source = level, src
    names, conf = [], []
    for i, b in enumerate(bodies):
        j = first + i
        names.append(seq[j] if 0 <= j < len(seq) else None)
        c = _CONFIDENCE[src] - 0.01 * abs(i - k) - (0.1 if b.note.startswith("split") else 0.0)
        # mutation-equivalent[2 -> 3]: every term is a whole number of hundredths
        conf.append(round(max(c - (0.05 if b.edge else 0.0), 0.05), 2))
    return names, conf, why


def _write_bodies(bodies, names, conf, why: str, sp, result) -> None:
    out = result.labels
    past = sum(n is None for n in names)
    if past:
        where = "below S1" if names[-1] is None else "above C1"
        result.warnings.append(f"{past} body component(s) {where} left unassigned")
    for b, name, c in zip(bodies, names, conf):
        if name is None:
            continue
        vid = ontology.vertebra_id(name)
        view = out[b.crop]
        view[b.mask] = vid
        cen = tuple(float(v) for v in b.centroid / sp)
        reason = why + (f"; {b.note}" if b.note else "")
        result.levels.append(LevelInfo(vid, name, c, reason, b.voxels, cen))
        result.bodies.append((vid, cen[1]))


def _name_discs(discs, bodies, names, sp, result) -> None:
    axis = _axis(np.array([b.centroid for b in bodies]))
    pos = [b.centroid @ axis for b in bodies]
    for d in sorted(discs, key=lambda d: d.centroid @ axis):
        p = d.centroid @ axis
        # mutation-equivalent[Lt -> LtE]: a disc's centre exactly level with a body's is a float coincidence
        above = [i for i, q in enumerate(pos) if q < p and names[i] is not None]
        row = d.centroid[1] / sp[1]
        if above:
            name = names[max(above, key=lambda i: pos[i])]
        else:
            first = next((n for n in names if n is not None), None)
            # with L6 or T13 named, the first name lies at or above it, where the longer
            # sequences agree  # mutation-equivalent[6 -> 7, 13 -> 14]: see above
            seq = list(_sequence(6 if "L6" in names else 5, 13 if "T13" in names else 12))
            # mutation-equivalent[and -> or]: the anchored body is always named, so first is too
            name = seq[seq.index(first) - 1] if first and seq.index(first) > 0 else None
            if name is not None:
                result.warnings.append(f"the disc at row {row:.0f} has no body above it: named "
                                       f"{name}/{first} from the sequence")
        # mutation-equivalent[1 -> 2]: no disc has either id
        did = ontology.vertebra_id(name) + ontology.DISC_OFFSET if name else -1
        if did not in ontology.BY_ID:
            result.warnings.append(f"a disc at row {row:.0f} has no level above it; left unassigned")
            continue
        view = result.labels[d.crop]
        view[d.mask] = did
        result.discs.append((did, row))
