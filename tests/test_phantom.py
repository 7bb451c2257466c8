import numpy as np
import pytest

from napari_spine import make_phantom, ontology
from napari_spine.synthetic import phantom_levels


def test_deterministic_by_seed():
    a = make_phantom((24, 64, 40), seed=7)
    b = make_phantom((24, 64, 40), seed=7)
    c = make_phantom((24, 64, 40), seed=8)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.image, c.image)
    assert np.array_equal(a.labels, c.labels)  # the anatomy does not depend on the noise


def test_levels_and_structures():
    case = make_phantom((32, 128, 80), levels=("C3", "T1"), modality="MR-T2")
    present = set(case.structures_present)
    expected = {ontology.vertebra_id(v) for v in ("C3", "C4", "C5", "C6", "C7", "T1")}
    expected |= {103, 104, 105, 106, 107, 60, 61}
    assert present == expected
    assert phantom_levels("T11", "L2", transitional=["T13"]) == ("T11", "T12", "T13", "L1", "L2")
    l6 = make_phantom((32, 160, 96), levels=("L4", "L6"))
    assert 25 in l6.structures_present and 124 in l6.structures_present


def test_ct_intensities_are_hounsfield():
    case = make_phantom((100, 128, 120), levels=("L2", "L4"), modality="CT", noise=0)
    assert case.metadata["scale"] == 1.0  # real vertebra sizes
    img, lab = case.image, case.labels
    assert img.dtype == np.int16
    assert img.min() <= -990  # air
    body = lab == 22
    assert 150 < np.median(img[body]) < 1000  # cancellous/cortical bone
    assert np.median(img[lab == 122]) < 150  # disc: soft tissue
    assert np.median(img[lab == 61]) < 60  # CSF


@pytest.mark.parametrize("modality", ["MR-T1", "MR-T2"])
def test_mr_contrast(modality):
    case = make_phantom((32, 96, 64), modality=modality, noise=0)
    assert case.image.dtype == np.uint16 and case.modality == modality
    csf = np.median(case.image[case.labels == 61])
    marrow = np.median(case.image[case.labels == 22])
    if modality == "MR-T2":
        assert csf > marrow  # fluid bright on T2
    else:
        assert csf < marrow  # fluid dark, fatty marrow bright on T1


def test_landmarks_sit_in_their_structures():
    case = make_phantom((40, 160, 96), (1.0, 1.0, 1.0), levels=("T12", "S1"))
    lm = case.landmarks
    assert len(lm) == 2 * 7 - 1
    for p, sid in zip(lm.coords, lm.structure_ids):
        assert case.labels[tuple(np.round(p).astype(int))] == sid


def test_vertebra_has_cortical_shell_and_posterior_elements():
    case = make_phantom((48, 128, 96), levels=("L2", "L4"), noise=0)
    img, lab = case.image.astype(float), case.labels
    l3 = np.argwhere(lab == 22)
    # posterior elements: part of L3 lies behind the canal
    canal_cols = np.argwhere(lab == 61)[:, 2]
    assert l3[:, 2].max() > canal_cols.max()
    # cortical shell brighter than the core
    body_mask = lab == 22
    inner = body_mask & (img > 0)
    assert img[inner].max() > 700 and np.percentile(img[inner], 30) < 500


def test_anisotropic_and_oblique():
    case = make_phantom((20, 200, 200), (4.0, 0.5, 0.5), levels=("C2", "C7"), oblique_deg=12.0,
                        axcodes="PIR", modality="MR-T2")
    assert case.source.oblique and case.spacing == pytest.approx((4.0, 0.5, 0.5))
    assert case.warnings


def test_bad_arguments():
    with pytest.raises(ValueError, match="modality"):
        make_phantom(modality="PET")
    with pytest.raises(ValueError, match="below"):
        make_phantom(levels=("L4", "L1"))
