"""Dataset adapters on synthetic trees that reproduce each layout."""

from __future__ import annotations

import io
import zipfile

import nibabel as nib
import numpy as np
import pytest

import napari_spine as ns
from napari_spine import LabelMapError, SpineIOError
from napari_spine.datasets import ADAPTERS, detect, open_dataset
from napari_spine.datasets._pt import JoinedParts, load_pt
from napari_spine.datasets.ctspine1k import parse_split_file
from napari_spine.testing import trees as syn

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    root = tmp_path_factory.mktemp("trees")
    return {
        "ct_hf": syn.write_ctspine1k(root / "ct_hf", "hf"),
        "ct_drive": syn.write_ctspine1k(root / "ct_drive", "drive"),
        "ct_flat": syn.write_ctspine1k(root / "ct_flat", "flat", split_file=False),
        "cs_midrc": syn.write_cspineseg(root / "cs_midrc"),
        "cs_nnunet": syn.write_cspineseg(root / "cs_nnunet", layout="nnunet"),
        "mm_github": syn.write_mmcsd(root / "mm_github"),
        "mm_synapse": syn.write_mmcsd(root / "mm_synapse", variant="synapse"),
        "ssm_numpy": syn.write_ssmspine(root / "ssm_numpy"),
        "ssm_tensor": syn.write_ssmspine(root / "ssm_tensor", tensors=True),
        "msca_zips": syn.write_spine_msca(root / "msca_zips"),
        "msca_dicts": syn.write_spine_msca(root / "msca_dicts", layout="dicts", archives=False),
    }


KIND = {"ct": "ctspine1k", "cs": "cspineseg", "mm": "mmcsd", "ssm": "ssmspine", "msca": "spine_msca"}


@pytest.mark.parametrize("name", ["ct_hf", "ct_drive", "ct_flat", "cs_midrc", "cs_nnunet", "mm_github",
                                  "mm_synapse", "ssm_numpy", "ssm_tensor", "msca_zips", "msca_dicts"])
def test_detect_list_and_load(trees, name):
    ds = open_dataset(trees[name])
    assert ds.kind == KIND[name.split("_")[0]]
    assert ds.root == trees[name]
    assert len(ds.cases) >= 4
    case = ns.load_case(ds.cases[0])
    assert isinstance(case, ns.SpineCase) and case.dataset == ds.kind
    if ds.cases[0].has_labels:
        assert case.labels is not None and case.labels.dtype == np.uint8
        assert set(case.structures_present) <= set(ns.ontology.BY_ID)


def test_every_adapter_rejects_the_other_trees(trees):
    for name, root in trees.items():
        right = KIND[name.split("_")[0]]
        best = detect(root)
        assert best.kind == right, name
        for a in ADAPTERS:
            d = a.detect(root)
            if a.kind != right and d is not None:
                assert d.score < best.score, (name, a.kind)


def test_ctspine1k_splits_groups_and_crlf(trees):
    ds = open_dataset(trees["ct_hf"])
    assert ds.split_counts() == {"test_private": 3, "test_public": 3, "train": 4}
    groups = {c.metadata["group"] for c in ds.cases}
    assert groups == {"COLONOG", "MSD-T10", "COVID-19", "HNSCC-3DCT-RT"}
    raw = (trees["ct_hf"] / "metadata" / "data_split.txt").read_bytes()
    assert b"\r\n" in raw and raw.startswith(b"trainset:\r\n")
    parsed = parse_split_file(trees["ct_hf"] / "metadata" / "data_split.txt")
    assert parsed["liver_0.nii.gz"] in ("train", "test_public", "test_private") and len(parsed) == 10
    case = ds.load_case("liver_83")
    assert case.label_scheme == "ctspine1k" and case.modality == "CT"
    assert {19, 20, 21, 22, 23, 24} == set(case.structures_present)  # T12-L5, no discs
    flat = open_dataset(trees["ct_flat"])  # no split file: train/ and test/ folders
    assert set(flat.split_counts()) == {"train", "test"}


def test_subfolder_and_single_file(trees):
    sub = trees["ct_hf"] / "raw_data" / "volumes" / "COVID-19"
    ds = open_dataset(sub)
    assert ds.root == trees["ct_hf"] and {c.case_id for c in ds.cases} == {
        "volume-covid19-A-0377_ct", "volume-covid19-A-0202_0_ct"}
    assert all(c.split != "unknown" for c in ds.cases)  # splits still come from the root
    one = open_dataset(sub / "volume-covid19-A-0377_ct.nii.gz")
    assert [c.case_id for c in one.cases] == ["volume-covid19-A-0377_ct"] and one.cases[0].has_labels
    pt = next((trees["ssm_numpy"] / "Train").rglob("*.pt"))
    assert [c.case_id for c in open_dataset(pt).cases] == [pt.relative_to(trees["ssm_numpy"]).as_posix()[:-3]]


def test_cspineseg_metadata_join_and_missing_mask(trees):
    ds = open_dataset(trees["cs_midrc"])
    with_mask = [c for c in ds.cases if c.has_labels]
    without = [c for c in ds.cases if not c.has_labels]
    assert len(with_mask) == 3 and len(without) == 1
    m = ds.cases[1].metadata
    assert m["patient_id"] == "593973-000002" and m["sex"] == "Female" and m["age_at_index"] == "41"
    assert m["manufacturer"] == "GE MEDICAL SYSTEMS" and m["magnetic_field_strength"] == "1.5"
    assert m["slice_thickness"] == "3"
    image_only = ds.load_case(without[0])
    assert image_only.labels is None  # loads image-only, clearly without a mask
    case = ds.load_case(with_mask[0])
    assert set(case.structures_present) == {50, 100} and case.modality == "MR-T2"
    nn = open_dataset(trees["cs_nnunet"])
    assert nn.split_counts() == {"test": 1, "train": 3}
    assert {c.case_id for c in nn.cases} >= {"Tr/cspine_0", "Ts/cspine_0"}


@pytest.mark.parametrize("variant", ["mm_github", "mm_synapse"])
def test_mmcsd_clinical_and_sequences(trees, variant):
    ds = open_dataset(trees[variant])
    assert ds.split_counts() == {"test": 1, "train": 2, "unused": 1}
    ref = ds["2"]
    m = ref.metadata
    assert m["age"] == 42 and m["sex"] == "male" and m["myelopathy"] == "yes"
    assert m["radiculopathy"] == "no" and m["surgical_approach"] == "ACDF/ACCF hybrid" and m["vas_pre"] == 5
    assert m["vas_post_1y"] == 2 and m["outcome"] == 1
    assert ds["3"].metadata["outcome"] == 0  # post-op VAS 0: pain-free
    assert "lesion_levels" in m
    assert not any("H000" in str(v) for v in m.values())  # the PHI-like column is never read
    assert set(ref.sequences) == {"ct_bone", "t1_sag", "t2_sag", "t2_tra"}
    seqs = ds.adapter.load_sequences(ref)
    assert {k: v.modality for k, v in seqs.items()} == {
        "ct_bone": "CT", "t1_sag": "MR-T1", "t2_sag": "MR-T2", "t2_tra": "MR-T2"}
    assert ns.load_case(ref).metadata["sequence"] == "t2_sag"  # default sequence
    with pytest.raises(SpineIOError, match="no ct_tissue sequence"):
        ds.load_case(ref, "ct_tissue")


def test_mmcsd_spreadsheet_without_id_column(tmp_path):
    import openpyxl

    root = syn.write_mmcsd(tmp_path / "m", ids=(1,), train=(1,), test=())
    wb = openpyxl.Workbook()
    wb.active.append(["Patient", "Age"])
    wb.save(root / "text" / "high_pain_text.xlsx")
    ds = open_dataset(root)
    assert len(ds) == 1 and any("no sheet has an 'ID' column" in w for w in ds.warnings)
    assert "high_pain_text.xlsx" in ds.warnings[0]


def test_ssmspine_variants_and_landmarks(trees):
    ds = open_dataset(trees["ssm_tensor"])
    assert ds.split_counts() == {"test": 4, "train": 4}
    ref = ds.cases[0]
    case = ns.load_case(ref, sequence="img_equalized")
    assert case.metadata["image_variant"] == "img_equalized" and case.shape == (1, 96, 96)
    assert any("no physical pixel size" in w for w in case.warnings)
    assert set(case.structures_present) == {20, 21, 22, 23, 24, 26, 120, 121, 122, 123, 124}
    lm = case.landmarks
    assert len(lm) == 6 * 236 + 5 * 176
    # contour points (x, y) = (column, row) lie on the boundary of their own structure
    hits = 0
    for p, sid in zip(lm.coords[::7], lm.structure_ids[::7]):
        r, c = int(round(p[1])), int(round(p[2]))
        hits += (case.labels[0, max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2] == sid).any()
    assert hits / len(lm.coords[::7]) > 0.95
    raw = syn.ssmspine_dict(seed=100, size=96)  # same seed as Train/p1/aug0
    assert np.allclose(ns.load_case(open_dataset(trees["ssm_numpy"])["Train/p1/aug0"]).image[0], raw["img"])


def test_spine_msca_split_zip_is_read_joined(trees):
    root = trees["msca_zips"]
    parts = sorted(root.glob("Train.zip.0*"))
    assert [p.name for p in parts] == ["Train.zip.001", "Train.zip.002", "Train.zip.003"]
    joined = b"".join(p.read_bytes() for p in parts)
    with JoinedParts(parts) as f:
        f.seek(len(joined) // 2 - 5)
        assert f.read(1000) == joined[len(joined) // 2 - 5 : len(joined) // 2 + 995]
    ds = open_dataset(root)
    assert ds.split_counts() == {"test": 2, "train": 2, "validation": 2}
    train = [c for c in ds.cases if c.split == "train"]
    assert "Train.zip.001::" in train[0].images["img"]
    case = ds.load_case(train[0])
    assert case.shape == (1, 96, 96) and 124 in case.structures_present
    assert not any(root.rglob("*.pt"))  # nothing unpacked to disk


def test_malicious_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned.txt"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    bad = tmp_path / "case.pt"
    torch.save({"img": np.zeros((4, 4), np.float32), "label": Evil()}, bad)
    with pytest.raises(SpineIOError, match=r"case\.pt: refused to load.*nothing in the file was executed"):
        load_pt(str(bad))
    assert not marker.exists()
    with pytest.raises(SpineIOError, match="refused"):
        open_dataset(tmp_path)
    assert not marker.exists()


def test_bad_inputs_give_clear_errors(trees, tmp_path):
    with pytest.raises(SpineIOError, match="not recognised"):
        open_dataset(tmp_path)  # empty folder
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SpineIOError, match="not recognised"):
        open_dataset(tmp_path / "notes.txt")
    # truncated image in a CTSpine1K tree: listing works, loading names the file
    root = syn.write_ctspine1k(tmp_path / "ct", "hf", names={"MSD-T10": ["liver_1", "liver_2"]})
    victim = root / "raw_data" / "volumes" / "MSD-T10" / "liver_1.nii.gz"
    victim.write_bytes(victim.read_bytes()[:300])
    ds = open_dataset(root)
    with pytest.raises(SpineIOError, match=r"liver_1\.nii\.gz"):
        ds.load_case("liver_1")
    assert ds.load_case("liver_2").labels is not None
    # a label id the scheme does not know
    lab = root / "raw_data" / "labels" / "MSD-T10" / "liver_2_seg.nii.gz"
    img = nib.load(lab)
    data = np.asanyarray(img.dataobj).copy()
    data[0, 0, 0] = 40
    nib.save(nib.Nifti1Image(data, img.affine, img.header), lab)
    with pytest.raises(LabelMapError, match=r"liver_2_seg\.nii\.gz: label id\(s\) 40"):
        ds.load_case("liver_2")


def test_corrupt_zip_member(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("Test/case0.pt", syn._pt_bytes({"img": torch.zeros(8, 8), "label": torch.zeros(1, 8, 8)}))
    blob = bytearray(buf.getvalue())
    blob[100] ^= 0xFF  # flip a byte inside the stored member
    (tmp_path / "Test.zip").write_bytes(bytes(blob))
    ds = open_dataset(tmp_path / "Test.zip")
    assert ds.kind == "spine_msca" and len(ds) == 1
    with pytest.raises(SpineIOError, match=r"Test\.zip::Test/case0\.pt: corrupt archive member"):
        ds.load_case(ds.cases[0])


def test_unknown_label_id_in_pt(tmp_path):
    lab = np.zeros((1, 8, 8), np.uint8)
    lab[0, 2, 2] = 12
    torch.save({"img": np.zeros((8, 8), np.float32), "label": lab}, tmp_path / "c.pt")
    ds = open_dataset(tmp_path, kind="spine_msca")
    with pytest.raises(LabelMapError, match=r"c\.pt: label id\(s\) 12"):
        ds.load_case(ds.cases[0])


def test_cli_info_on_a_dataset(trees, capsys):
    import json

    from napari_spine.cli import main

    assert main(["info", str(trees["ct_hf"]), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["dataset"] == "ctspine1k" and doc["cases"] == 10 and doc["splits"]["train"] == 4
    f = trees["ct_hf"] / "raw_data" / "volumes" / "MSD-T10" / "liver_0.nii.gz"
    assert main(["info", str(f), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["case"]["structures"] == ["T12", "L1", "L2", "L3", "L4", "L5"]
    assert doc["case"]["file_orientation"] == "LPS"


def test_ssmspine_archive_read_without_unpacking(trees, tmp_path):
    src = trees["ssm_numpy"]
    archive = tmp_path / "SSMSpine_Test_Sample.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted((src / "Test").rglob("*.pt")):
            z.write(f, f.relative_to(src).as_posix())
    ds = open_dataset(tmp_path)
    assert ds.kind == "ssmspine" and len(ds) == 4 and ds.split_counts() == {"test": 4}
    case = ds.load_case(ds.cases[0])
    assert case.shape == (1, 96, 96) and len(case.landmarks) == 6 * 236 + 5 * 176
    assert not list(tmp_path.rglob("*.pt"))
