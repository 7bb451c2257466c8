"""A synthetic spine phantom for tests, benchmarks and sample data.

:func:`make_phantom` builds a curved column of vertebrae (vertebral body with a cortical
shell and cancellous core, pedicles and lamina around the canal, spinous and transverse
processes), intervertebral discs whose end-plates follow the curvature, the spinal canal
and cord, and a soft-tissue body outline, with CT (HU) or MR T1/T2 contrast, canonical
labels and body/disc centre landmarks. Any level range, voxel size, field of view and
file orientation (all 48 axis orders/flips, optionally oblique) is possible, and the
result is deterministic for a given seed.

Everything is computed on the display grid (:mod:`napari_spine.geometry`, axes L, I, P)
and then stored in the requested file orientation, so the phantom exercises exactly the
reorientation that real files go through.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.orientations import axcodes2ornt, inv_ornt_aff, ornt_transform

from . import geometry
from .anatomy import ontology
from .case import Landmarks, SpineCase

__all__ = ["make_phantom", "phantom_levels", "write_phantom"]



@dataclass(frozen=True)
class _Dims:
    body_h: float  # body height (mm)
    disc_h: float  # disc below (mm)
    width: float  # body L-R (mm)
    depth: float  # body A-P (mm)
    canal_lr: float  # canal half-axes (mm)
    canal_ap: float
    spinous: float  # spinous process length (mm)
    transverse: float  # transverse process length (mm)


def _dims(level: str) -> _Dims:
    r = level[0]
    if level == "S1":
        return _Dims(32, 0, 48, 32, 11, 7, 12, 18)
    if level == "C1":
        return _Dims(10, 0, 14, 10, 12, 8, 8, 10)
    if r == "C":
        return _Dims(14, 5, 18, 16, 11, 7, 16, 8)
    if r == "T":
        i = int(level[1:])
        f = (i - 1) / 11
        return _Dims(18 + 6 * f, 5 + 2 * f, 26 + 10 * f, 20 + 8 * f, 8, 8, 28, 16)
    return _Dims(27, 10, 42, 32, 11, 9, 28, 22)  # lumbar, incl. L6


def phantom_levels(first: str = "L1", last: str = "S1", transitional: Sequence[str] = ()) -> tuple[str, ...]:
    """Vertebral levels from ``first`` to ``last`` (inclusive, cranio-caudal).

    ``transitional`` may add ``"T13"`` and/or ``"L6"`` in their anatomical place.
    """
    seq = list(ontology.level_names(transitional))
    try:
        i, j = seq.index(first), seq.index(last)
    except ValueError as exc:
        raise ValueError(f"unknown level in {first!r}..{last!r}; known: {', '.join(seq)}") from exc
    if j < i:
        raise ValueError(f"{first} is below {last}: give the cranial level first")
    return tuple(seq[i : j + 1])


def _file_affine(disp_aff: np.ndarray, axcodes: Sequence[str], disp_shape) -> tuple[np.ndarray, np.ndarray]:
    """Affine of a file stored with ``axcodes`` whose display-ordered view is ``disp_aff``.

    Returns (file affine, ornt from file to display).
    """
    file_ornt = axcodes2ornt(tuple(axcodes))
    disp_ornt = axcodes2ornt(geometry.DISPLAY_AXCODES)
    ornt = ornt_transform(file_ornt, disp_ornt)  # file -> display
    inv = geometry.inverse_ornt(ornt)  # display -> file
    file_shape = [0, 0, 0]
    for d_ax, (f_ax, _) in enumerate(inv):
        file_shape[int(f_ax)] = disp_shape[d_ax]
    # reoriented_affine(file_aff, ornt, file_shape) == disp_aff
    file_aff = disp_aff @ np.linalg.inv(inv_ornt_aff(ornt, tuple(file_shape)))
    return file_aff, ornt


def _rotation_lr(deg: float) -> np.ndarray:
    """Rotation about the patient's left-right axis (a sagittal tilt)."""
    a = np.radians(deg)
    r = np.eye(4)
    r[1:3, 1:3] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    return r


# long: draws the phantom structure by structure, head to foot, like a recipe
def make_phantom(
    shape: Sequence[int] = (64, 160, 96),
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    *,
    levels: Sequence[str] | tuple[str, str] = ("T12", "S1"),
    modality: str = "CT",
    axcodes: Sequence[str] | str = "RAS",
    oblique_deg: float = 0.0,
    origin: Sequence[float] | None = None,
    curvature: float = 1.0,
    noise: float = 1.0,
    include_canal: bool = True,
    seed: int = 0,
    case_id: str = "phantom",
) -> SpineCase:
    """Build a synthetic spine case.

    Parameters
    ----------
    shape, spacing : 3 ints / 3 floats
        Grid size and voxel size (mm) in **display order**: (right-to-left,
        superior-to-inferior, anterior-to-posterior).
    levels : sequence of str
        Either ``(first, last)`` (e.g. ``("C2", "T1")``) or an explicit cranio-caudal
        list (may include ``"T13"`` / ``"L6"``). Vertebra sizes follow each region and
        are scaled down together when the field of view is too small.
    modality : ``"CT"`` (int16 HU), ``"MR-T1"`` or ``"MR-T2"`` (uint16)
    axcodes : 3 axis codes
        Voxel order of the *file* (e.g. ``"RAS"``, ``"PIR"``, ``"LPS"``).
    oblique_deg : float
        Tilt the acquisition about the left-right axis (oblique affine).
    curvature : float
        Scale of the sagittal curve (0 = straight column).
    noise : float
        Noise level relative to the default (0 = noiseless).
    include_canal : bool
        Label the spinal canal (61) and cord (60).

    Returns
    -------
    SpineCase
        ``dataset="phantom"``, labels in canonical ids, landmarks at each body and
        disc centre.
    """
    if modality not in ("CT", "MR-T1", "MR-T2"):
        raise ValueError(f"modality must be 'CT', 'MR-T1' or 'MR-T2', not {modality!r}")
    shape = tuple(int(s) for s in shape)
    spacing = np.asarray(spacing, dtype=np.float64)
    if len(shape) != 3 or min(shape) < 8:
        raise ValueError(f"shape must be 3 sizes of at least 8 voxels, got {shape}")
    if isinstance(axcodes, str):
        axcodes = tuple(axcodes)
    lv = tuple(levels)
    if len(lv) == 2:
        lv = phantom_levels(lv[0], lv[1], transitional=[v for v in lv if v in ("T13", "L6")])
    rng = np.random.default_rng(seed)

    fov = np.asarray(shape) * spacing
    dims = [_dims(level) for level in lv]
    lengths = np.array([d.body_h + (d.disc_h if k < len(lv) - 1 else 0) for k, d in enumerate(dims)])
    wmax = max(d.width / 2 + d.transverse for d in dims)
    amax = max(d.depth + 2 * d.canal_ap + d.spinous + 6 for d in dims)
    s = min(1.0, 0.9 * fov[1] / lengths.sum(), 0.9 * fov[0] / (2 * wmax), 0.85 * fov[2] / (amax + 10))

    # coordinates in mm on the display grid
    u0 = (np.arange(shape[0]) + 0.5) * spacing[0]
    u1 = (np.arange(shape[1]) + 0.5) * spacing[1]
    u2 = (np.arange(shape[2]) + 0.5) * spacing[2]
    x = (u0 - fov[0] / 2)[:, None, None]  # right-left offset from the midline
    total = lengths.sum() * s
    top = (fov[1] - total) / 2
    # sagittal curve of the body centre (A-P position) along the column
    phase = (u1 - top) / max(total, 1e-6)
    amp = 0.06 * fov[2] * curvature
    body_c = 0.32 * fov[2] + amp * np.sin(np.pi * phase * 1.3 + 0.4)
    slope = np.gradient(body_c, u1) if len(u1) > 1 else np.zeros_like(u1)
    y = u2[None, :] - body_c[:, None]  # (n1, n2) A-P offset from the body centre
    t = u1[:, None] + slope[:, None] * y  # level coordinate, perpendicular to the curve

    # level intervals along t
    starts, ends, disc_end = [], [], []
    pos = top
    for k, d in enumerate(dims):
        starts.append(pos)
        ends.append(pos + d.body_h * s)
        pos += d.body_h * s
        if k < len(lv) - 1:
            pos += d.disc_h * s
        disc_end.append(pos)
    starts_a, ends_a, disc_end_a = map(np.asarray, (starts, ends, disc_end))
    idx = np.clip(np.searchsorted(starts_a, t, side="right") - 1, 0, len(lv) - 1)  # (n1, n2)
    inside = (t >= starts_a[0]) & (t < disc_end_a[-1] if len(lv) > 1 else ends_a[-1])
    in_body = inside & (t < ends_a[idx])
    in_disc = inside & ~in_body & (idx < len(lv) - 1)

    def per_level(attr: str) -> np.ndarray:
        return np.array([getattr(d, attr) * s for d in dims])[idx][None]  # (1, n1, n2)

    hw, hd = per_level("width") / 2, per_level("depth") / 2
    clr, cap = per_level("canal_lr"), per_level("canal_ap")
    yc = hd + 2.0 * s + cap  # canal centre behind the body
    y3 = y[None]
    r_body = (x / hw) ** 2 + (y3 / hd) ** 2
    body = in_body[None] & (r_body <= 1.0)
    shell_t = 1.6 * s
    t_rel_lo = t - starts_a[idx]
    t_rel_hi = ends_a[idx] - t
    core = (
        body
        & (((x / np.maximum(hw - shell_t, 1e-3)) ** 2 + (y3 / np.maximum(hd - shell_t, 1e-3)) ** 2) <= 1.0)
        & ((t_rel_lo > shell_t) & (t_rel_hi > shell_t))[None]
    )
    # next level's footprint for the disc (blend of the two neighbours)
    nxt = np.minimum(idx + 1, len(lv) - 1)
    hw_d = 0.5 * (hw + np.array([d.width * s for d in dims])[nxt][None] / 2) * 0.97
    hd_d = 0.5 * (hd + np.array([d.depth * s for d in dims])[nxt][None] / 2) * 0.97
    r_disc = (x / hw_d) ** 2 + (y3 / hd_d) ** 2
    disc = in_disc[None] & (r_disc <= 1.0)
    nucleus = disc & (r_disc <= 0.45)

    canal = ((x / clr) ** 2 + ((y3 - yc) / cap) ** 2 <= 1.0) & inside[None]
    cord = ((x / (0.5 * clr)) ** 2 + ((y3 - yc) / (0.55 * cap)) ** 2 <= 1.0) & inside[None]
    arch_th = 4.0 * s
    ring = ((x / (clr + arch_th)) ** 2 + ((y3 - yc) / (cap + arch_th)) ** 2 <= 1.0) & ~canal
    body_len = ends_a[idx] - starts_a[idx]
    arch_t = (t_rel_lo > 0.12 * body_len) & (t_rel_hi > 0.05 * body_len) & in_body
    arch = ring & arch_t[None] & (y3 > 0)
    mid_t = ((t_rel_lo > 0.3 * body_len) & (t_rel_hi > 0.15 * body_len) & in_body)[None]
    spin_len = per_level("spinous")
    spinous = mid_t & (np.abs(x) <= 3.0 * s) & (y3 >= yc + cap) & (y3 <= yc + cap + arch_th + spin_len)
    tp_len = per_level("transverse")
    transverse = (
        mid_t
        & (np.abs(x) >= clr)
        & (np.abs(x) <= clr + arch_th + tp_len)
        & (np.abs(y3 - yc + 0.3 * cap) <= 3.5 * s)
    )
    bone = body | arch | spinous | transverse

    vert_ids = np.array([ontology.vertebra_id(level) for level in lv], dtype=np.uint8)
    labels = np.zeros(shape, dtype=np.uint8)
    if include_canal:
        labels[canal] = ontology.SPINAL_CANAL
        labels[cord] = ontology.SPINAL_CORD
    vid = np.broadcast_to(vert_ids[idx][None], shape)
    labels[bone] = vid[bone]
    labels[disc] = (vid[disc].astype(np.int32) + ontology.DISC_OFFSET).astype(np.uint8)

    # soft-tissue body outline around the column
    outline = ((x / (0.47 * fov[0])) ** 2 + ((u2[None, None, :] - 0.5 * fov[2]) / (0.47 * fov[2])) ** 2) <= 1.0
    img = _contrast(modality, shape, outline, body, core, arch | spinous | transverse, disc, nucleus,
                    canal, cord, rng, noise, u1)

    # landmarks: body and disc centres on the curve (display voxel coordinates)
    names, sids, pts = [], [], []
    for k in range(len(lv)):
        for kind, t_mid in (("body", 0.5 * (starts[k] + ends[k])), ("disc", 0.5 * (ends[k] + disc_end[k]))):
            if kind == "disc" and k == len(lv) - 1:
                continue
            c_ap = float(np.interp(t_mid, u1, body_c))
            sid = int(vert_ids[k]) + (ontology.DISC_OFFSET if kind == "disc" else 0)
            pts.append([fov[0] / 2 / spacing[0] - 0.5, t_mid / spacing[1] - 0.5, c_ap / spacing[2] - 0.5])
            sids.append(sid)
            names.append(f"{ontology.name_of(sid)} {kind} centre")
    landmarks = Landmarks(np.array(pts), np.array(sids), tuple(names))

    disp_aff = np.eye(4)
    disp_aff[:3, :3] = np.linalg.inv(geometry._RAS_TO_DISPLAY) @ np.diag(spacing)
    if origin is None:
        origin = -disp_aff[:3, :3] @ (np.asarray(shape) / 2.0)
    disp_aff[:3, 3] = origin
    file_aff, ornt = _file_affine(disp_aff, axcodes, shape)
    if oblique_deg:
        file_aff = _rotation_lr(oblique_deg) @ file_aff
    inv = geometry.inverse_ornt(ornt)
    file_img = np.ascontiguousarray(geometry.to_display(img, inv))
    file_lab = np.ascontiguousarray(geometry.to_display(labels, inv))
    case = SpineCase.from_arrays(
        file_img, file_aff, file_lab, case_id=case_id, dataset="phantom", modality=modality,
        landmarks=landmarks, label_scheme="verse",
        metadata={"levels": lv, "seed": seed, "axcodes": "".join(axcodes), "scale": s},
    )
    return case


def _contrast(modality, shape, outline, body, core, posterior, disc, nucleus, canal, cord, rng,
              noise, u1) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    if modality == "CT":
        v = dict(air=-1000, tissue=40, shell=950, core=260, post=700, disc=85, nucleus=95,
                 csf=12, cord=35, sigma=14.0)
    elif modality == "MR-T1":
        v = dict(air=8, tissue=380, shell=70, core=560, post=150, disc=300, nucleus=310,
                 csf=140, cord=430, sigma=10.0)
    else:
        v = dict(air=8, tissue=260, shell=50, core=380, post=120, disc=320, nucleus=900,
                 csf=1100, cord=470, sigma=12.0)
    img = np.full(shape, v["air"], dtype=np.float32)
    img[np.broadcast_to(outline, shape)] = v["tissue"]
    img[canal] = v["csf"]
    img[cord] = v["cord"]
    img[posterior & ~body] = v["post"]
    img[body] = v["shell"]
    img[core] = v["core"]
    img[disc] = v["disc"]
    img[nucleus] = v["nucleus"]
    img = gaussian_filter(img, 0.7, mode="nearest")
    if modality != "CT":  # smooth coil-sensitivity falloff along the column
        bias = 0.85 + 0.3 * np.exp(-(((u1 - u1.mean()) / (0.6 * (np.ptp(u1) + 1))) ** 2))
        img *= bias[None, :, None].astype(np.float32)
    if noise:
        img += rng.normal(0.0, v["sigma"] * noise, size=shape).astype(np.float32)
    if modality == "CT":
        return np.clip(np.rint(img), -1024, 3071).astype(np.int16)
    return np.clip(np.rint(np.abs(img)), 0, 65535).astype(np.uint16)


def _save(array: np.ndarray, case: SpineCase, path: Path) -> None:
    img = nib.Nifti1Image(np.asarray(geometry.from_display(array, case.source.ornt)), case.source.affine)
    img.header.set_qform(case.source.affine, code=1)
    img.header.set_sform(case.source.affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, str(path))


def write_phantom(
    case: SpineCase, image_path: str | Path, labels_path: str | Path | None = None
) -> tuple[Path, Path | None]:
    """Write a case's image (and labels) as NIfTI in its file orientation.

    Test and benchmark helper: qform and sform both carry the file affine (code 1).
    """
    ip = Path(image_path)
    _save(case.image, case, ip)
    lp = None
    if labels_path is not None and case.labels is not None:
        lp = Path(labels_path)
        _save(case.labels, case, lp)
    return ip, lp
