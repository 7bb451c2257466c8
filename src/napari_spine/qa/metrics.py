"""Per-level agreement between a reference and a candidate labelling, in one pass.

Overlaps, volumes and centroids of every structure come from bincounts over the voxels
labelled in either array (one pass in chunks, not one per label, read in the arrays' own
memory order); surface distances are computed
per structure inside the bounding box of the two masks, with the voxel spacing, using the
same surface and distance definitions as ``medpy`` (surface = mask minus its
face-connected erosion; Euclidean distance transform of the other surface's complement).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..anatomy import ontology
from ..anatomy.labelmaps import flat_foreground, in_memory_order, memory_order

__all__ = ["HD95_CONVENTIONS", "LevelRow", "hd95", "identification_rate", "level_metrics", "surface_distances"]

#: VerSe identification rule: a level is identified when its predicted centroid is the
#: closest predicted centroid to the true one and lies within this distance (mm).
IDENTIFICATION_MM = 20.0


@dataclass(frozen=True)
class LevelRow:
    """Agreement for one structure (``nan`` where a value is undefined)."""

    structure_id: int
    name: str
    dice: float
    hd95_mm: float
    msd_mm: float
    volume_ref_ml: float
    volume_cand_ml: float
    volume_diff_ml: float
    centroid_dist_mm: float
    identified: bool | None  # None: not a reference vertebra
    voxels_ref: int
    voxels_cand: int
    overlap: int

    def as_dict(self) -> dict:
        """The row as a plain dict (JSON-ready apart from NaN)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LevelRow:
        """The inverse of :meth:`as_dict`, also for JSON that stored NaN as ``null``.

        >>> r = LevelRow.from_dict({"structure_id": 22, "name": "L3", "dice": 0.9,
        ...     "hd95_mm": None, "msd_mm": 1.0, "volume_ref_ml": 1.0, "volume_cand_ml": 1.0,
        ...     "volume_diff_ml": 0.0, "centroid_dist_mm": 0.5, "identified": None,
        ...     "voxels_ref": 10, "voxels_cand": 10, "overlap": 9})
        >>> r.hd95_mm, r.identified
        (nan, None)
        """
        return cls(**{k: (float("nan") if v is None and k != "identified" else v)
                      for k, v in d.items()})


def surface_distances(a: np.ndarray, b: np.ndarray, spacing: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Distances (mm) from each surface voxel of ``a`` to the surface of ``b``, and back.

    Both masks must be non-empty; computed inside their joint bounding box (exact: the
    nearest surface point of either mask lies inside it).
    """
    from scipy import ndimage

    both = a | b
    idx = np.nonzero(both)
    # mutation-equivalent[1 -> 2]: a box one slice larger holds the same nearest surface points
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in idx)
    a, b = a[box], b[box]
    struct = ndimage.generate_binary_structure(a.ndim, 1)
    sa = a & ~ndimage.binary_erosion(a, structure=struct, iterations=1)
    sb = b & ~ndimage.binary_erosion(b, structure=struct, iterations=1)
    dt_b = ndimage.distance_transform_edt(~sb, sampling=spacing)
    dt_a = ndimage.distance_transform_edt(~sa, sampling=spacing)
    return dt_b[sa], dt_a[sb]


#: HD95 conventions: ``"max"`` (the larger of the two directed 95th percentiles, as MONAI's
#: ``compute_hausdorff_distance(percentile=95)``) and ``"pooled"`` (the 95th percentile of
#: both directions' distances together, as medpy's ``hd95``, the definition of SSMSpine and
#: Spine-MSCA)
HD95_CONVENTIONS = ("max", "pooled")


def hd95(d_ab: np.ndarray, d_ba: np.ndarray, convention: str = "max") -> float:
    """The 95th-percentile Hausdorff distance from the two directed surface distances.

    >>> a, b = np.arange(21.0), np.array([0.0])
    >>> round(hd95(a, b, "max"), 2), round(hd95(a, b, "pooled"), 2)
    (19.0, 18.95)
    """
    if convention == "max":
        return float(max(np.percentile(d_ab, 95), np.percentile(d_ba, 95)))
    if convention == "pooled":
        return float(np.percentile(np.concatenate([d_ab, d_ba]), 95))
    raise ValueError(f"HD95 convention must be one of {HD95_CONVENTIONS}, not {convention!r}")


def _identified(sid, n_ref, n_cand, dist, cen_r, cen_c, present_c) -> bool | None:
    """Identification of a reference vertebra: the candidate's centroid of the same level
    lies within IDENTIFICATION_MM and is the closest of all candidate centroids (None for
    structures that are not a numbered reference vertebra)."""
    generic = (ontology.GENERIC_VERTEBRAL_BODY, ontology.GENERIC_VERTEBRA)
    if not (ontology.is_vertebra(sid) and sid not in generic and n_ref[sid]):
        return None
    if not (n_cand[sid] and dist <= IDENTIFICATION_MM):
        return False
    d_all = {j: float(np.linalg.norm(cen_r[sid] - cen_c[j])) for j in present_c}
    return min(d_all, key=d_all.get) == sid


# mutation-equivalent[1 -> 2, 22 -> 23]: the default slab size sets memory, not results
def _joint_stats(ref: np.ndarray, cand: np.ndarray, k: int, slab_voxels: int = 1 << 22):
    """Joint label counts (k x k) and per-label coordinate sums of both arrays, slab by slab
    along the first axis: a slab is copied only when it is not contiguous, so the extra
    memory is a few slabs, whatever the volume."""
    joint = np.zeros(k * k, dtype=np.int64)
    sums = np.zeros((2, ref.ndim, k))  # mutation-equivalent[2 -> 3]: a third row is never read
    plane = int(np.prod(ref.shape[1:]))
    plane = plane or 1  # mutation-equivalent[1 -> 2]: an empty plane, nothing to count
    strides = [int(np.prod(ref.shape[i + 1:])) for i in range(ref.ndim)]
    step = max(1, slab_voxels // plane)  # mutation-equivalent[1 -> 2]: slab grouping only
    same = ref.dtype == cand.dtype  # mutation-equivalent[Eq -> NotEq]: a fast path, same counts
    for z0 in range(0, ref.shape[0], step):
        # mutation-equivalent[1 -> 2]: numpy reads any negative size as "the rest"
        a = np.ascontiguousarray(ref[z0:z0 + step]).reshape(-1)
        # mutation-equivalent[1 -> 2]: as above
        b = np.ascontiguousarray(cand[z0:z0 + step]).reshape(-1)
        either = np.bitwise_or(a, b) if same else ((a != 0) | (b != 0)).view(np.uint8)
        fg = flat_foreground(either)
        if not fg.size:
            continue
        r, c = a[fg].astype(np.intp), b[fg].astype(np.intp)
        joint += np.bincount(r * k + c, minlength=k * k)
        rest = fg + z0 * plane
        for axis, st in enumerate(strides):
            coord, rest = np.divmod(rest, st)
            sums[0, axis] += np.bincount(r, weights=coord, minlength=k)
            sums[1, axis] += np.bincount(c, weights=coord, minlength=k)
    return joint.reshape(k, k), sums


# long: the rows are assembled from one set of joint statistics; splitting the loop would
# pass the dozen arrays it shares around
def level_metrics(
    reference: np.ndarray,
    candidate: np.ndarray,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    *,
    surface: bool = True,
    hd95_convention: str = "max",
) -> list[LevelRow]:
    """One row per structure present in either labelling (canonical ids, same grid).

    ``hd95_convention`` is ``"max"`` (MONAI's) or ``"pooled"`` (medpy's), see :func:`hd95`.

    Dice is 0 for a structure present on one side only; surface distances and the
    centroid distance are ``nan`` then. ``identified`` follows the VerSe rule for the
    reference's vertebrae. Strided views (as :func:`~napari_spine.load_case` returns) are
    read in their memory order without copies; memory beyond the inputs stays bounded
    (chunked counts; surfaces inside each structure's box).
    """
    if reference.shape != candidate.shape:
        raise ValueError(f"reference {reference.shape} and candidate {candidate.shape} are not on the same grid")
    reference, candidate = np.asarray(reference), np.asarray(candidate)
    # both read in the reference's memory order (no copy of a loaded case), with the spacing
    # of those axes
    ref, cand = in_memory_order(reference), in_memory_order(candidate, like=reference)
    sp = np.asarray(spacing, dtype=float)[list(memory_order(reference)[0])]
    vox_ml = float(np.prod(sp)) / 1000.0
    # mutation-equivalent[1 -> 2, 0 -> 1]: one more label id, counted as absent
    k = int(max(ref.max(initial=0), cand.max(initial=0))) + 1
    joint, sums = _joint_stats(ref, cand, k)
    n_ref, n_cand = joint.sum(axis=1), joint.sum(axis=0)
    tp = np.diagonal(joint).copy()
    cen_r = (sums[0].T * sp) / np.maximum(n_ref, 1)[:, None]  # mm, memory-order axes
    cen_c = (sums[1].T * sp) / np.maximum(n_cand, 1)[:, None]
    # (distances and overlaps do not depend on the order or direction of the axes)

    present_c = [i for i in range(1, k) if n_cand[i]]
    boxes = _boxes(ref, cand) if surface else None
    rows = []
    for sid in range(1, k):
        if not n_ref[sid] and not n_cand[sid]:
            continue
        dice = 2.0 * tp[sid] / (n_ref[sid] + n_cand[sid])
        hd95_mm = msd = dist = math.nan
        if n_ref[sid] and n_cand[sid]:
            dist = float(np.linalg.norm(cen_r[sid] - cen_c[sid]))
            if surface:
                d_ab, d_ba = _surface_for(ref, cand, sid, sp, boxes)
                hd95_mm = hd95(d_ab, d_ba, hd95_convention)
                msd = float((d_ab.mean() + d_ba.mean()) / 2.0)
        identified = _identified(sid, n_ref, n_cand, dist, cen_r, cen_c, present_c)
        rows.append(LevelRow(
            structure_id=sid, name=ontology.name_of(sid), dice=float(dice), hd95_mm=hd95_mm, msd_mm=msd,
            volume_ref_ml=float(n_ref[sid] * vox_ml), volume_cand_ml=float(n_cand[sid] * vox_ml),
            volume_diff_ml=float((n_cand[sid] - n_ref[sid]) * vox_ml), centroid_dist_mm=dist,
            identified=identified, voxels_ref=int(n_ref[sid]), voxels_cand=int(n_cand[sid]),
            overlap=int(tp[sid]),
        ))
    return rows


def _boxes(ref: np.ndarray, cand: np.ndarray):
    """Bounding boxes of every label of both arrays (one ``find_objects`` pass each)."""
    from scipy import ndimage

    def fo(a):  # any integer dtype directly: no widened copy of the volume
        # mutation-equivalent[In -> NotIn]: labels are integers; the cast finds the same boxes
        return ndimage.find_objects(a if a.dtype.kind in "iu" else a.astype(np.int32))

    return fo(ref), fo(cand)


def _surface_for(ref: np.ndarray, cand: np.ndarray, sid: int, sp: np.ndarray, boxes):
    """Surface distances of one structure inside the union of its two boxes."""
    box_r, box_c = boxes[0][sid - 1], boxes[1][sid - 1]
    box = tuple(slice(min(a.start, b.start), max(a.stop, b.stop)) for a, b in zip(box_r, box_c))
    return surface_distances(ref[box] == sid, cand[box] == sid, sp)


def identification_rate(rows: Sequence[LevelRow]) -> float:
    """Share of the reference's vertebrae identified (VerSe rule); ``nan`` if none."""
    ids = [r.identified for r in rows if r.identified is not None]
    return float(np.mean(ids)) if ids else math.nan
