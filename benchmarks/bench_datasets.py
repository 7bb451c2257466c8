"""On-demand benchmark: listing a 1,005-case CTSpine1K tree, and a case switch in the widget.

    xvfb-run -a .venv/bin/python benchmarks/bench_datasets.py

- DS-1 open_dataset on a CTSpine1K tree with the real 1,005 names (tiny files): target < 1 s.
- DS-2 case switch in the Spine dataset widget (background load + layers shown) for a
  512x512x300 CT with labels, vs a bare nibabel load of the same two files, same run.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np


def _names() -> dict[str, list[str]]:
    return {
        "COLONOG": [f"1.3.6.1.4.1.9328.50.4.{i:04d}" for i in range(1, 751)]
        + [f"CTC-{3000000000 + i}" for i in range(34)],
        "MSD-T10": [f"liver_{i}" for i in range(150)],
        "COVID-19": [f"volume-covid19-A-{i:04d}_ct" for i in range(40)],
        "HNSCC-3DCT-RT": [f"HN_P{i:03d}" for i in range(1, 32)],
    }


def build_tree(root: Path) -> int:
    tiny = nib.Nifti1Image(np.zeros((2, 2, 2), np.int16), np.eye(4))
    tiny_l = nib.Nifti1Image(np.zeros((2, 2, 2), np.uint8), np.eye(4))
    lines = {"trainset:": [], "test_public:": [], "test_private:": []}
    n = 0
    for group, names in _names().items():
        (root / "raw_data" / "volumes" / group).mkdir(parents=True, exist_ok=True)
        (root / "raw_data" / "labels" / group).mkdir(parents=True, exist_ok=True)
        for name in names:
            nib.save(tiny, root / "raw_data" / "volumes" / group / f"{name}.nii.gz")
            nib.save(tiny_l, root / "raw_data" / "labels" / group / f"{name}_seg.nii.gz")
            list(lines.values())[n % 3].append(f"{name}.nii.gz")
            n += 1
    (root / "metadata").mkdir(exist_ok=True)
    (root / "metadata" / "data_split.txt").write_bytes(
        "\r\n\r\n".join("\r\n".join([h, *v]) for h, v in lines.items()).encode())
    return n


def main() -> int:
    from napari_spine import make_phantom
    from napari_spine.datasets import open_dataset
    from napari_spine.synthetic import write_phantom
    from napari_spine.testing.trees import _native

    tmp = Path(tempfile.mkdtemp(prefix="napari-spine-ds-"))
    results: dict = {}
    n = build_tree(tmp / "ctspine1k")
    open_dataset(tmp / "ctspine1k")  # warm the directory cache
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        ds = open_dataset(tmp / "ctspine1k")
        times.append(time.perf_counter() - t0)
    assert len(ds) == n == 1005
    results["DS-1"] = {"cases": len(ds), "list_s": statistics.median(times), "target_s": 1.0}
    print(f"DS-1 list {len(ds)} CTSpine1K cases: {statistics.median(times):.3f} s (target < 1 s)")

    big = tmp / "big"
    for name in ("liver_1", "liver_2"):
        (big / "raw_data" / "volumes" / "MSD-T10").mkdir(parents=True, exist_ok=True)
        (big / "raw_data" / "labels" / "MSD-T10").mkdir(parents=True, exist_ok=True)
        case = make_phantom((512, 300, 512), (0.7, 1.0, 0.7), levels=("T11", "S1"), axcodes="LPS",
                            seed=1, include_canal=False)
        case = case.with_labels(_native(case.labels, "ctspine1k"))
        write_phantom(case, big / "raw_data" / "volumes" / "MSD-T10" / f"{name}.nii.gz",
                      big / "raw_data" / "labels" / "MSD-T10" / f"{name}_seg.nii.gz")
    img_p = big / "raw_data" / "volumes" / "MSD-T10" / "liver_2.nii.gz"
    lab_p = big / "raw_data" / "labels" / "MSD-T10" / "liver_2_seg.nii.gz"

    def bare():
        np.asanyarray(nib.load(img_p).dataobj)
        np.asanyarray(nib.load(lab_p).dataobj)

    bare()
    base = statistics.median([_t(bare) for _ in range(3)])

    from qtpy.QtWidgets import QApplication

    import napari
    from napari_spine._napari.panels.dataset import DatasetWidget

    viewer = napari.Viewer(show=True)
    w = DatasetWidget(viewer)
    w.open(big)
    switch = []
    for k in range(4):
        row = k % 2
        t0 = time.perf_counter()
        w.load_row(row)
        while w._worker is not None or w.current is None or w.current.case_id != w.visible_cases[row].case_id:
            if "Could not load" in w.status.text():
                raise RuntimeError(w.status.text())
            QApplication.processEvents()
            time.sleep(0.002)
        for _ in range(3):
            QApplication.processEvents()
        switch.append(time.perf_counter() - t0)
    viewer.close()
    s = statistics.median(switch[1:])
    results["DS-2"] = {"bare_nibabel_s": base, "widget_switch_s": s, "ratio": s / base,
                       "volume": "512x512x300 int16 CT + uint8 labels"}
    print(f"DS-2 case switch {s:.3f} s vs bare nibabel load {base:.3f} s: ratio {s / base:.2f}")
    Path("bench_datasets.json").write_text(json.dumps(results, indent=1))
    return 0


def _t(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main())
