"""Stand-ins for the external engines (TotalSegmentator, TotalSpineSeg, SPINEPS), written
here from their documentation: an importable package, a command on PATH that takes the
documented arguments and writes the documented output files, and weights folders. They
segment by intensity (see :func:`pattern_case`)."""

from __future__ import annotations

import os
import stat
import sys
import textwrap

import nibabel as nib
import numpy as np
import pytest

from napari_spine import load_case
from napari_spine.anatomy import ontology
from napari_spine.inference import engines as eng

# the stand-ins' shared part: read the input, label by intensity, keep the input's grid
_COMMON = '''
import os, sys, time
import numpy as np, nibabel as nib
def segment(src, dst, ids, header_names=None):
    img = nib.load(src)
    data = np.asarray(img.dataobj)
    out = np.zeros(data.shape, np.uint8)
    for value, label in ids.items():
        out[data == value] = label
    seg = nib.Nifti1Image(out, img.affine)
    if header_names:
        rows = "".join(f'<Label Key="{k}" Red="1" Green="0" Blue="0" Alpha="1"><![CDATA[{v}]]></Label>'
                       for k, v in header_names.items())
        xml = ('<?xml version="1.0" encoding="UTF-8"?><CaretExtension><VolumeInformation Index="0">'
               f'<LabelTable>{rows}</LabelTable></VolumeInformation></CaretExtension>')
        seg.header.extensions.append(nib.nifti1.Nifti1Extension(0, xml.encode()))
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    nib.save(seg, dst)
if os.environ.get("STANDIN_PID_FILE"):
    with open(os.environ["STANDIN_PID_FILE"], "w") as f:
        f.write(str(os.getpid()))
if os.environ.get("STANDIN_FAIL"):
    print("Predicting part 1 of 5")
    print(os.environ["STANDIN_FAIL"])
    sys.exit(3)
if os.environ.get("STANDIN_HANG"):
    print("Resampling...", flush=True)
    time.sleep(120)
'''

# TotalSegmentator: TotalSegmentator -i IN -o OUT.nii.gz --ml --task T --device D --roi_subset ...
_TOTALSEG = _COMMON + '''
args = sys.argv[1:]
src, dst = args[args.index("-i") + 1], args[args.index("-o") + 1]
assert "--ml" in args and args[args.index("--task") + 1] in ("total", "total_mr"), args
assert args[args.index("--device") + 1] in ("cpu", "gpu", "mps") or args[args.index("--device") + 1].startswith("gpu:")
roi = args[args.index("--roi_subset") + 1:]
assert "spinal_cord" in roi, roi
print("Predicting part 1 of 1 ...", flush=True)
segment(src, dst, {100: 31, 200: 79}, {31: "vertebrae_L1", 79: "spinal_cord"})
print("Saving segmentations...", flush=True)
'''

# TotalSpineSeg: totalspineseg IN OUT [--device cpu|cuda] -> OUT/step2_output/<IN name>
_TSS = _COMMON + '''
src, out = sys.argv[1], sys.argv[2]
assert sys.argv[sys.argv.index("--device") + 1] in ("cpu", "cuda")
print("Running step 1 model:", flush=True)
print("Running step 2 model:", flush=True)
segment(src, os.path.join(out, "step2_output", os.path.basename(src)), {100: 41, 200: 1, 150: 92})
'''

# SPINEPS 2.x: spineps sample -i IN -ms M -mv M -dn D -iic [--cpu]
#   -> <IN folder>/D/sub-<id>/<BIDS name>_seg-vert_msk.nii.gz and _seg-spine_msk.nii.gz
_SPINEPS = _COMMON + '''
args = sys.argv[1:]
assert args[0] == "sample" and "-ms" in args and "-mv" in args and "-iic" in args, args
assert all(a in ("sample", "-i", "-ms", "-mv", "-dn", "-iic", "--cpu") or not a.startswith("-") for a in args), args
src, der = args[args.index("-i") + 1], args[args.index("-dn") + 1]
subject = os.path.basename(src).split("_")[0]
folder = os.path.join(os.path.dirname(src), der, subject)
name = os.path.basename(src).replace("_T2w.nii.gz", "_mod-T2w")
segment(src, os.path.join(folder, name + "_seg-vert_msk.nii.gz"), {100: 20, 150: 120})
segment(src, os.path.join(folder, name + "_seg-spine_msk.nii.gz"), {100: 49, 200: 60, 150: 100})
'''

_SCRIPTS = {"totalsegmentator": ("TotalSegmentator", "totalsegmentator", _TOTALSEG),
            "totalsegmentator-mr": ("TotalSegmentator", "totalsegmentator", _TOTALSEG),
            "totalspineseg": ("totalspineseg", "totalspineseg", _TSS),
            "spineps": ("spineps", "spineps", _SPINEPS)}
#: where each stand-in puts L1 and the cord, in canonical ids
L1, CORD = ontology.vertebra_id("L1"), ontology.SPINAL_CORD


@pytest.fixture
def standin(tmp_path, monkeypatch):
    """Install one engine's stand-in: an importable package, a command on PATH and weights."""

    def install(key: str, weights: bool = True):
        exe, module, body = _SCRIPTS[key]
        site, bindir = tmp_path / "site", tmp_path / "bin"
        (site / module).mkdir(parents=True, exist_ok=True)
        (site / module / "__init__.py").write_text("")
        bindir.mkdir(exist_ok=True)
        script = bindir / exe
        script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
        monkeypatch.syspath_prepend(str(site))
        monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
        root = tmp_path / "weights"
        monkeypatch.setenv("TOTALSEG_WEIGHTS_PATH", str(root / "ts"))
        monkeypatch.setenv("TOTALSPINESEG_DATA", str(root / "tss"))
        monkeypatch.setenv("SPINEPS_SEGMENTOR_MODELS", str(root / "spineps"))
        if weights:
            for i in (291, 292, 293, 294, 295, 298, 730, 731, 732):
                (root / "ts" / f"Dataset{i}_x").mkdir(parents=True, exist_ok=True)
            for s in ("Dataset101_TotalSpineSeg_step1", "Dataset102_TotalSpineSeg_step2"):
                (root / "tss" / "nnUNet" / "results" / "r20250224" / s).mkdir(parents=True, exist_ok=True)
            for m in ("t2w_segmentor", "instance_segmentor", "t2w_labeling"):
                (root / "spineps" / m).mkdir(parents=True, exist_ok=True)
                (root / "spineps" / m / "inference_config.json").write_text("{}")
        return eng.ENGINES[key]

    return install


def pattern_case(tmp_path, codes="RAS", shape=(7, 9, 11)):
    """A case from a file in orientation ``codes`` whose values make an asymmetric pattern:
    100 (the stand-ins' L1), 200 (cord) and 150 (a disc) in blocks no flip maps onto
    themselves; returns the case."""
    data = np.zeros(shape, np.int16)
    data[1:3, 2:5, 3:9] = 100
    data[4, 1:3, 2:4] = 200
    data[5:7, 6:9, 8:11] = 150
    ornt = nib.orientations.axcodes2ornt(tuple(codes))
    aff = np.eye(4)
    aff[:3, :3] = 0
    for i, (ax, sign) in enumerate(ornt):
        aff[int(ax), i] = sign * (0.8 + 0.3 * i)
    aff[:3, 3] = (-5.0, 12.0, 30.0)
    p = tmp_path / f"scan_{codes}.nii.gz"
    nib.save(nib.Nifti1Image(data, aff), str(p))
    return load_case(p)
