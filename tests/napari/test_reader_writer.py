from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from napari_spine import make_phantom, read_landmarks
from napari_spine._napari._layers import case_from_layer
from napari_spine._napari._reader import get_reader
from napari_spine.geometry import voxel_to_world
from napari_spine.synthetic import write_phantom

PLUGIN = "napari-spine"


def test_get_reader_is_narrow(tmp_path):
    assert get_reader(str(tmp_path / "a.txt")) is None
    assert get_reader(str(tmp_path / "a.gz")) is None
    assert get_reader([str(tmp_path / "a.nii.gz"), str(tmp_path / "b.tif")]) is None
    assert callable(get_reader(str(tmp_path / "a.nii.gz")))
    assert callable(get_reader(str(tmp_path / "a.nii")))


def test_open_image_with_sibling_labels(make_napari_viewer, phantom_files):
    case0, img, lab = phantom_files
    viewer = make_napari_viewer()
    layers = viewer.open(str(img), plugin=PLUGIN)
    assert [ly._type_string for ly in layers] == ["image", "labels"]
    image, labels = layers
    case = case_from_layer(image)
    assert case is case_from_layer(labels)
    # no copy: the layers hold the case's display views of the file arrays
    assert image.data is case.image and labels.data is case.labels
    assert labels.data.dtype == np.uint8 and image.data.dtype == np.int16
    assert np.array_equal(labels.data, case0.labels)
    assert tuple(image.scale) == pytest.approx(case.display.scale)
    assert tuple(labels.translate) == pytest.approx(case.display.translate)
    # the sagittal 2-D view: slider over axis 0 (left-right), rows superior->inferior
    assert viewer.dims.ndisplay == 2 and viewer.dims.displayed == (1, 2)
    assert image.contrast_limits == pytest.approx([-500, 1300])  # bone window for CT


def test_name_and_colour_under_cursor(make_napari_viewer, phantom_files):
    case0, img, _ = phantom_files
    viewer = make_napari_viewer()
    _, labels = viewer.open(str(img), plugin=PLUGIN)
    from napari_spine import ontology

    for p, sid in zip(case0.landmarks.coords, case0.landmarks.structure_ids):
        status = labels.get_status(labels.data_to_world(p), world=True)
        assert f"name: {ontology.display_name(int(sid), case0.structures_present)}" in status["value"]
    for sid in case0.structures_present:
        assert np.allclose(labels.colormap.map(np.array([sid]))[0], ontology.color_of(sid))
    assert labels.colormap.map(np.array([0]))[0][3] == 0  # background transparent


def test_open_segmentation_alone(make_napari_viewer, phantom_files):
    case0, _, lab = phantom_files
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(lab), plugin=PLUGIN)
    assert layer._type_string == "labels" and np.array_equal(layer.data, case0.labels)


def test_bad_file_error_names_it(make_napari_viewer, tmp_path):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"")
    viewer = make_napari_viewer()
    with pytest.raises(Exception, match=r"broken\.nii\.gz: file is empty"):
        viewer.open(str(bad), plugin=PLUGIN)
    assert len(viewer.layers) == 0


def test_writer_restores_source_geometry(make_napari_viewer, phantom_files, tmp_path):
    _, img, lab = phantom_files
    viewer = make_napari_viewer()
    _, labels = viewer.open(str(img), plugin=PLUGIN)
    out = tmp_path / "saved.nii.gz"
    written = labels.save(str(out), plugin=PLUGIN)
    assert written == [str(out)]
    src, back = nib.load(lab), nib.load(out)
    assert np.allclose(back.affine, src.affine, atol=1e-6)
    assert np.array_equal(np.asanyarray(back.dataobj), np.asanyarray(src.dataobj))


def test_writer_for_a_user_created_layer(make_napari_viewer, tmp_path):
    """A labels layer drawn from scratch over the image is saved where it is displayed."""
    case = make_phantom((20, 40, 30), (1.5, 1.0, 0.8), levels=("L3", "L4"), axcodes="RAS")
    ip, _ = write_phantom(case, tmp_path / "c.nii.gz")
    viewer = make_napari_viewer()
    (image,) = viewer.open(str(ip), plugin=PLUGIN)
    drawn = viewer.add_labels(np.zeros(image.data.shape, np.uint8), scale=image.scale,
                              translate=image.translate, name="drawn")
    drawn.data[10, 5:8, 3:6] = 22
    out = tmp_path / "drawn.nii.gz"
    drawn.save(str(out), plugin=PLUGIN)
    back = nib.load(out)
    ijk = np.argwhere(np.asanyarray(back.dataobj) == 22)
    world_written = voxel_to_world(back.affine, ijk).mean(axis=0)
    world_drawn = voxel_to_world(case.affine, np.argwhere(drawn.data == 22)).mean(axis=0)
    assert np.allclose(world_written, world_drawn, atol=1e-6)


def test_landmarks_writer(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    layers = viewer.open_sample(PLUGIN, "ct_lumbar")
    points = [ly for ly in layers if ly._type_string == "points"][0]
    case = case_from_layer(points)
    out = tmp_path / "lm.json"
    points.save(str(out), plugin=PLUGIN)
    back = read_landmarks(out, case)
    assert np.allclose(back.coords, case.landmarks.coords)
    assert back.names == case.landmarks.names


@pytest.mark.parametrize("key", ["ct_lumbar", "mr_cervical"])
def test_sample_data(make_napari_viewer, key):
    viewer = make_napari_viewer()
    layers = viewer.open_sample(PLUGIN, key)
    assert [ly._type_string for ly in layers] == ["image", "labels", "points"]
    case = case_from_layer(layers[0])
    assert case.modality == ("CT" if key == "ct_lumbar" else "MR-T2")
    assert layers[1].data.dtype == np.uint8
    assert len(layers[2].data) == len(case.landmarks)
    assert list(layers[2].features["name"]) == list(case.landmarks.names)


def test_open_a_pt_slice(make_napari_viewer, tmp_path):
    pytest.importorskip("torch")
    from napari_spine.testing import trees as syn

    root = syn.write_ssmspine(tmp_path / "ssm", patients=(1,), shapes=1, splits=("Test",))
    viewer = make_napari_viewer()
    layers = viewer.open(str(root / "Test" / "p1" / "aug0.pt"), plugin=PLUGIN)
    assert [ly._type_string for ly in layers] == ["image", "labels", "points", "shapes"]
    assert layers[1].data.shape == (1, 96, 96)


def test_a_totalsegmentator_file_opens_as_labels_by_its_header_whatever_its_name(realdata, tmp_path):
    import shutil

    from napari_spine._napari._reader import read_nifti_layers

    plain = tmp_path / "total.nii.gz"  # TotalSegmentator --ml output name: no "_seg" in it
    shutil.copy(realdata / "totalseg_small" / "multilabel" / "example_seg.nii.gz", plain)
    (layer,) = read_nifti_layers(str(plain))
    data, kwargs, kind = layer
    assert kind == "labels"
    assert {20, 21, 60} <= set(np.unique(np.asarray(data)).tolist())


def test_the_totalsegmentator_folder_or_a_file_in_it_opens_as_one_labels_layer(realdata):
    from napari_spine._napari._reader import read_nifti_layers

    folder = realdata / "totalseg_small" / "segmentations"
    assert callable(get_reader(str(folder)))
    for path in (str(folder), str(folder / "vertebrae_L1.nii.gz")):
        (layer,) = read_nifti_layers(path)
        data, kwargs, kind = layer
        assert kind == "labels" and kwargs["name"] == "segmentations"
        assert {19, 20, 21, 60} <= set(np.unique(np.asarray(data)).tolist())


def test_a_label_map_named_like_an_image_opens_as_labels_and_an_image_stays_an_image(tmp_path):
    from napari_spine._napari._reader import read_nifti_layers

    labels = np.zeros((20, 24, 30), np.int16)
    labels[5:15, 8:16, 4:8], labels[5:15, 8:16, 10:14] = 20, 21
    nib.save(nib.Nifti1Image(labels, np.eye(4)), str(tmp_path / "anatomy.nii.gz"))
    (layer,) = read_nifti_layers(str(tmp_path / "anatomy.nii.gz"))
    assert layer[2] == "labels" and set(np.unique(np.asarray(layer[0]))) == {0, 20, 21}
    ct = np.random.default_rng(0).integers(-1000, 1500, (20, 24, 30)).astype(np.int16)
    nib.save(nib.Nifti1Image(ct, np.eye(4)), str(tmp_path / "scan.nii.gz"))
    (image,) = read_nifti_layers(str(tmp_path / "scan.nii.gz"))
    assert image[2] == "image"
