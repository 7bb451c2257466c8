"""Level identification on analytic spines: fused and bridged bodies, thick slices,
lordosis and scoliosis, the sacrum and C2 as anchors, transitional anatomy, slivers,
file axis orders. The fixtures are drawn here from simple solids (not with the project's
phantom), with the true level of every voxel known."""

from __future__ import annotations

import numpy as np
import pytest

from napari_spine.anatomy import ontology
from napari_spine.anatomy.levels import identify_levels

BODY, DISC = ontology.GENERIC_VERTEBRAL_BODY, ontology.GENERIC_DISC


def spine(levels, *, spacing=(1.0, 1.0, 1.0), body_h=26.0, disc_h=7.0, radius=18.0, touching=(),
          lordosis=0.0, scoliosis_deg=0.0, sacrum=False, dens=False, bridge=False, margin=10.0):
    """(truth, semantic): ``truth`` has each level's canonical id, ``semantic`` the generic
    body (50) and disc (100) ids. Display axes: 0 left-right, 1 superior-inferior, 2 AP.

    Bodies are rounded cylinders (rounded rims give a waist where two of them touch),
    centred on a curve: ``lordosis`` bends it in the sagittal plane (mm of AP offset at
    mid-height), ``scoliosis_deg`` tilts successive bodies in the coronal plane.
    ``touching``: indices ``k`` of bodies that touch the next one (no disc between: fused
    in the mask); ``bridge`` joins them by a 1-voxel column of bone across the disc instead.
    """
    sp = np.asarray(spacing, float)
    n = len(levels)
    length = n * body_h + n * disc_h + (2.5 * body_h if sacrum else 0) + 2 * margin
    shape = (int(np.ceil(2.6 * radius / sp[0])), int(np.ceil(length / sp[1])), int(np.ceil(3.0 * radius / sp[2])))
    ii, jj, kk = np.meshgrid(*[(np.arange(s) + 0.5) * d for s, d in zip(shape, sp)], indexing="ij")
    truth = np.zeros(shape, np.uint8)
    semantic = np.zeros(shape, np.uint8)
    x0, z0 = shape[0] * sp[0] / 2, shape[2] * sp[2] / 2
    total = length - 2 * margin

    def centre(t):  # curve through the body centres at height t
        u = (t - margin) / total
        tilt = np.radians(scoliosis_deg) * (u - 0.5) * 2
        return x0 + np.sin(tilt) * total / 4, z0 + lordosis * np.sin(np.pi * u)

    def solid(top, h, r, taper=1.0):
        cx, cz = centre(top + h / 2)
        along = (jj - top) / h  # 0 .. 1 through the solid
        rad = r * (1 - (1 - taper) * np.clip(along, 0, 1))
        # rounded rims: the cross-section at an endplate is about a third of the middle's
        rim = np.minimum(1.0, 0.55 + 0.45 * np.sqrt(np.clip(1 - (2 * along - 1) ** 2, 0, 1)) * 2)
        return (along >= 0) & (along <= 1) & ((ii - cx) ** 2 + (kk - cz) ** 2 <= (rad * rim) ** 2)

    t = margin
    for k, name in enumerate(levels):
        vid = ontology.vertebra_id(name)
        h = body_h * (1.4 if dens and k == 0 else 1.0)
        body = solid(t, h, radius)
        if dens and k == 0:  # the dens: a narrow peg on top of C2
            cx, cz = centre(t)
            body |= (jj >= t - 0.6 * body_h) & (jj < t) & ((ii - cx) ** 2 + (kk - cz) ** 2 <= (0.3 * radius) ** 2)
        truth[body], semantic[body] = vid, BODY
        t += h
        if k < n - 1 or sacrum:
            fused = k in touching
            if fused and not bridge:
                continue  # no disc: the next body starts right here
            d = solid(t, disc_h, radius * 0.95)
            if not fused:
                truth[d & (truth == 0)] = vid + ontology.DISC_OFFSET
                semantic[d & (semantic == 0)] = DISC
            else:  # a 1-voxel bony bridge across the (unlabelled) disc space
                cx, cz = centre(t)
                col = (np.abs(ii - cx) < sp[0]) & (np.abs(kk - cz) < sp[2]) & (jj >= t - 1) & (jj < t + disc_h + 1)
                col &= semantic != BODY
                truth[col], semantic[col] = vid, BODY
            t += disc_h
    if sacrum:  # a wedge: wide at S1, narrowing caudally, about twice a body's volume
        s1 = solid(t, 2.5 * body_h, 1.4 * radius, taper=0.3)
        truth[s1], semantic[s1] = ontology.vertebra_id("S1"), BODY
    return truth, semantic


def named(truth, result_labels):
    """True level -> the level most of its voxels got."""
    out = {}
    for vid in np.unique(truth):
        if vid and ontology.is_vertebra(int(vid)):
            got, n = np.unique(result_labels[truth == vid], return_counts=True)
            out[ontology.name_of(int(vid))] = ontology.name_of(int(got[np.argmax(n)]))
    return out


LUMBAR = ("T12", "L1", "L2", "L3", "L4", "L5")


def test_sacrum_anchors_a_lumbar_spine():
    truth, sem = spine(LUMBAR, sacrum=True)
    res = identify_levels(sem, spacing=(1, 1, 1))
    assert res.anchor_source == "sacrum" and not res.assumed
    assert named(truth, res.labels) == {v: v for v in (*LUMBAR, "S1")}
    assert [ontology.name_of(d) for d, _ in res.discs] == ["T12/L1", "L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1"]
    assert all(lv.confidence >= 0.8 for lv in res.levels)


def test_c2_with_its_dens_anchors_a_cervical_spine():
    cerv = ("C2", "C3", "C4", "C5", "C6", "C7")
    truth, sem = spine(cerv, body_h=13.0, disc_h=5.0, radius=9.0, dens=True)
    res = identify_levels(sem, spacing=(1, 1, 1))
    assert res.anchor_source == "C2"
    assert named(truth, res.labels) == {v: v for v in cerv}


def test_without_an_anchor_the_numbering_says_it_is_assumed():
    truth, sem = spine(("T11", "T12", "L1", "L2"), body_h=20.0)
    res = identify_levels(sem, spacing=(1, 1, 1))
    assert res.assumed and res.alternatives == (-1, 1)
    assert any("anchor assumed" in w for w in res.warnings) and "anchor assumed" in res.summary()
    assert all(lv.confidence < 0.5 for lv in res.levels)
    seq = list(ontology.level_names())
    for step in (-1, +1):  # the one-click alternatives: every body (and disc) one level up / down
        moved = res.shifted(step)
        for lv in res.levels:  # across the thoracolumbar junction: T12 + 1 is L1
            want = ontology.vertebra_id(seq[seq.index(lv.name) + step])
            assert set(np.unique(moved[res.labels == lv.structure_id])) == {want}


@pytest.mark.parametrize("how", ["touching", "bridge"])
def test_fused_bodies_are_split_and_reported(how):
    # T12 + L1 and L5 + S1 fused, as TotalSegmentator's vertebrae_body mask of a 3 mm CT has them
    truth, sem = spine(LUMBAR, sacrum=True, touching=(0, 5), bridge=how == "bridge")
    res = identify_levels(sem, spacing=(1, 1, 1))
    assert res.splits, "the split must be reported"
    assert named(truth, res.labels) == {v: v for v in (*LUMBAR, "S1")}


@pytest.mark.parametrize("slice_mm", [3.0, 5.0])
def test_thick_sagittal_slices(slice_mm):
    truth, sem = spine(LUMBAR, sacrum=True, spacing=(slice_mm, 1.0, 1.0))
    res = identify_levels(sem, spacing=(slice_mm, 1.0, 1.0))
    assert named(truth, res.labels) == {v: v for v in (*LUMBAR, "S1")}


def test_thick_axial_slices_3mm():
    truth, sem = spine(LUMBAR, sacrum=True, spacing=(1.0, 3.0, 1.0))
    res = identify_levels(sem, spacing=(1.0, 3.0, 1.0))
    assert named(truth, res.labels) == {v: v for v in (*LUMBAR, "S1")}


def test_lordosis_and_scoliosis():
    truth, sem = spine(LUMBAR, sacrum=True, lordosis=25.0, scoliosis_deg=30.0)
    res = identify_levels(sem, spacing=(1, 1, 1))
    assert named(truth, res.labels) == {v: v for v in (*LUMBAR, "S1")}


def _rib_off(truth, level):
    """A rib leaving the upper part of a body sideways (its head at the body)."""
    rib = np.zeros(truth.shape, bool)
    pts = np.argwhere(truth == ontology.vertebra_id(level))
    top = pts[pts[:, 1] == pts[:, 1].min()][0]
    rib[: max(top[0] - 12, 1), top[1] + 2 : top[1] + 6, top[2] - 2 : top[2] + 2] = True
    return rib


@pytest.mark.parametrize("lv, last_rib, said", [
    (("T12", "L1", "L2", "L3", "L4", "L5", "L6"), "T12", "6 lumbar"),
    (("T12", "T13", "L1", "L2", "L3", "L4", "L5"), "T13", "13 rib-bearing"),
])
def test_transitional_spines_between_the_last_rib_and_the_sacrum(lv, last_rib, said):
    truth, sem = spine(lv, sacrum=True)
    res = identify_levels(sem, spacing=(1, 1, 1), ribs={int(last_rib[1:]): _rib_off(truth, last_rib)})
    assert named(truth, res.labels) == {v: v for v in (*lv, "S1")}
    assert any(said in w for w in res.warnings)


def test_a_disc_above_the_top_body_is_named_from_the_sequence_and_said():
    truth, sem = spine(("L1", "L2", "L3"))
    top = np.argwhere(sem == BODY)[:, 1].min()
    disc = np.zeros_like(sem, bool)
    disc[:, max(top - 6, 0) : top - 1, :] = (sem[:, top + 12 : top + 13, :] == BODY)  # a disc-shaped slab
    sem2 = sem.copy()
    sem2[disc] = DISC
    res = identify_levels(sem2, "L1", spacing=(1, 1, 1))
    assert ontology.by_name("T12/L1").id in [d for d, _ in res.discs]
    assert any("no body above it" in w for w in res.warnings)


def test_a_stray_sliver_changes_no_name():
    truth, sem = spine(LUMBAR, sacrum=True)
    base = identify_levels(sem, spacing=(1, 1, 1)).labels
    noisy = sem.copy()
    noisy[1, 2:4, 1:3] = BODY  # partial-volume speck in a corner
    noisy[-2, sem.shape[1] // 2, -2] = BODY
    res = identify_levels(noisy, spacing=(1, 1, 1))
    assert np.array_equal(res.labels[sem > 0], base[sem > 0])
    assert len(res.ignored) == 2


def test_the_users_anchor_wins():
    truth, sem = spine(LUMBAR, sacrum=True)
    res = identify_levels(sem, "T11", spacing=(1, 1, 1))
    assert res.anchor_source == "given"
    assert named(truth, res.labels)["L1"] == "T12"  # numbered as told, one level up


def test_any_file_axis_order_gives_the_same_names(tmp_path):
    import nibabel as nib

    from napari_spine import load_case

    truth, sem = spine(LUMBAR, sacrum=True, spacing=(2.0, 1.0, 1.5))
    display = nib.orientations.axcodes2ornt(("L", "I", "P"))  # the display axes
    # display index -> RAS mm: axis 0 towards Left (-x), 1 towards Inferior (-z), 2 towards Posterior (-y)
    disp_aff = np.array([[-2.0, 0, 0, 0], [0, 0, -1.5, 0], [0, -1.0, 0, 0], [0, 0, 0, 1]])
    ref = None
    for codes in ("RAS", "LPS", "PIR", "SLA", "IRP", "ASL"):
        to_file = nib.orientations.ornt_transform(display, nib.orientations.axcodes2ornt(tuple(codes)))
        arr = nib.orientations.apply_orientation(sem, to_file)
        aff = disp_aff @ nib.orientations.inv_ornt_aff(to_file, sem.shape)
        p = tmp_path / f"{codes}.nii.gz"
        nib.save(nib.Nifti1Image(arr, aff), str(p))
        case = load_case(p)
        assert case.shape == sem.shape and np.allclose(case.spacing, (2.0, 1.0, 1.5)), codes
        res = identify_levels(np.asarray(case.image).astype(np.uint8), spacing=case.spacing)
        assert named(truth, res.labels) == {v: v for v in (*LUMBAR, "S1")}, codes
        ref = res.labels if ref is None else ref
        assert np.array_equal(res.labels, ref), codes


# -- real masks ---------------------------------------------------------------------------------
def _merged(case):
    """The case's named vertebrae merged into one 'level not assigned' class."""
    verts = [int(v) for v in np.unique(case.labels) if ontology.is_vertebra(int(v))]
    return verts, np.where(np.isin(case.labels, verts), ontology.GENERIC_VERTEBRA, 0).astype(np.uint8)


def _ribs(case):
    ribs: dict[int, np.ndarray] = {}
    for e in case.other_structures():
        if e.name.startswith("rib_"):
            n = int(e.name.rsplit("_", 1)[1])
            ribs[n] = ribs.get(n, np.zeros(case.shape, bool)) | (case.native_labels == e.native_id)
    return ribs


def test_totalsegmentator_ct_numbered_from_its_lowest_rib(realdata):
    from napari_spine import load_case

    folder = realdata / "totalseg_small"
    case = load_case(folder / "example_ct_sm.nii.gz", folder / "multilabel" / "example_seg.nii.gz")
    verts, sem = _merged(case)  # T11 (a 70-voxel sliver at the top), T12, L1, L2 at 3 mm
    res = identify_levels(sem, spacing=case.spacing, ribs=_ribs(case))
    got = named(case.labels, res.labels)
    right = [v for v, g in got.items() if v == g]
    assert len(right) >= len(verts) - 1 and {"T12", "L1", "L2"} <= set(right), got
    assert res.anchor_source == "ribs" and not res.assumed
    # without the ribs nothing anatomical shows: the numbering must say it is a guess
    blind = identify_levels(sem, spacing=case.spacing)
    assert blind.assumed and any("anchor assumed" in w for w in blind.warnings)
    assert len(blind.bodies) == len(res.bodies)  # the same pieces, only the names are unsure


@pytest.mark.parametrize("name, anchor, crop", [("tptbox_ct", "L2", "sub-ct_label-22"),
                                                ("tptbox_mri", "C5", "sub-mri_label-6")])
def test_tptbox_whole_vertebrae_fused_in_the_mask(realdata, name, anchor, crop):
    from napari_spine import load_case

    folder = realdata / name
    image = next(folder.glob(f"{crop}_*.nii.gz"))
    case = load_case(image, folder / f"{crop.replace('label', 'seg-vert_label')}_msk.nii.gz")
    verts, sem = _merged(case)  # touching whole vertebrae: one component
    auto = identify_levels(sem, spacing=case.spacing)
    assert auto.assumed and len(auto.bodies) == len(verts)  # split into the right count
    given = identify_levels(sem, anchor, spacing=case.spacing)
    assert named(case.labels, given.labels) == {ontology.name_of(v): ontology.name_of(v) for v in verts}
