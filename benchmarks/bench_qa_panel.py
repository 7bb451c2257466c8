"""On-demand benchmark: the QA review panel on clinical-size cases.

    xvfb-run -a .venv/bin/python benchmarks/bench_qa_panel.py [--shot docs/qa_review.png]

QA-PANEL-1, on 3 CTs of 512 x 300 x 512 (0.7 x 1 x 0.7 mm, T9-L5 with a batch-predict
folder whose predictions miss L3 or are numbered one level off):
- case switch with *Next* (read the case, show its layers in the previous ones, load its
  prediction as the candidate) vs a bare nibabel load of the same three files, same run;
- *Compare* (per-level metrics incl. HD95, level-shift check, validator, overlay).
With ``--shot``, a picture of a 10-case review (small cases) is saved there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _tree(root: Path, n: int, shape) -> tuple[Path, Path]:
    import napari_spine as ns
    from napari_spine.correction import relabel
    from napari_spine.io.files import safe_name
    from napari_spine.synthetic import write_phantom
    from napari_spine.testing.trees import _native

    vol, lab = root / "raw_data" / "volumes" / "COLONOG", root / "raw_data" / "labels" / "COLONOG"
    vol.mkdir(parents=True)
    lab.mkdir(parents=True)
    preds = root.parent / "pred"
    for i in range(n):
        case = ns.make_phantom(shape, (0.7, 1.0, 0.7) if shape[0] > 100 else (1.0, 1.0, 1.0),
                               levels=("T9", "L5"), seed=i, axcodes="LPS", include_canal=False,
                               case_id=f"case{i:02d}")
        write_phantom(case.with_labels(_native(case.labels, "ctspine1k")), vol / f"case{i:02d}.nii.gz",
                      lab / f"case{i:02d}_seg.nii.gz")
        pred = relabel(case.labels, "L3", 0) if i % 3 == 1 else case.labels
        if i % 3 == 2:
            pred = np.where((pred > 0) & (pred < 26), pred + 1, pred).astype(np.uint8)
        out = preds / "cases" / safe_name(f"case{i:02d}") / "prediction.nii.gz"
        out.parent.mkdir(parents=True)
        ns.export_labels(case, pred, out, scheme="canonical")
    return root, preds


def _panel(root: Path, preds: Path, db: Path):
    import napari

    viewer = napari.Viewer(show=True)
    _, w = viewer.window.add_plugin_dock_widget("napari-spine", "Spine QA review")
    w.db_path.setText(str(db))
    w.predictions.setText(str(preds))
    w.reviewer.setText("ana")
    w.queue_dataset(root, sync=True)
    return viewer, w


def main(argv=None) -> int:
    import nibabel as nib
    from qtpy.QtWidgets import QApplication

    ap = argparse.ArgumentParser()
    ap.add_argument("--shot", default=None)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-qa-panel-"))
    root, preds = _tree(tmp / "CTSpine1K", 3, (512, 300, 512))
    viewer, w = _panel(root, preds, tmp / "r.sqlite")
    switch, bare, comp = [], [], []
    for _ in range(3):
        t0 = time.perf_counter()
        key = w.step_queue(+1)
        QApplication.processEvents()
        switch.append(time.perf_counter() - t0)
        cid = key.split("/", 1)[1]
        t0 = time.perf_counter()
        for p in (root / "raw_data" / "volumes" / "COLONOG" / f"{cid}.nii.gz",
                  root / "raw_data" / "labels" / "COLONOG" / f"{cid}_seg.nii.gz",
                  preds / "cases" / cid / "prediction.nii.gz"):
            np.asanyarray(nib.load(str(p)).dataobj)
        bare.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        w.compute(sync=True)
        QApplication.processEvents()
        comp.append(time.perf_counter() - t0)
        w.save_review()
    viewer.close()
    s, b, c = (statistics.median(x) for x in (switch, bare, comp))
    res = {"case_switch_s": s, "bare_nibabel_load_s": b, "ratio": s / b, "compare_s": c}
    print(f"QA-PANEL-1 case switch {s:.2f} s vs bare nibabel load of its 3 files {b:.2f} s "
          f"({s / b:.1f}x); compare {c:.2f} s (512x300x512, 0.7 mm)")
    Path("bench_qa_panel.json").write_text(json.dumps(res, indent=1))
    if args.shot:
        small_root, small_preds = _tree(tmp / "small" / "CTSpine1K", 10, (64, 160, 96))
        viewer, w = _panel(small_root, small_preds, tmp / "small.sqlite")
        for status in ("approved", "needs correction", "approved"):
            w.step_queue(+1)
            w.compute(sync=True)
            w.status.setCurrentText(status)
            w.save_review()
        w.step_queue(+1)
        w.compute(sync=True)
        viewer.window._qt_window.resize(1366, 768)
        for _ in range(30):
            QApplication.processEvents()
        viewer.screenshot(args.shot, canvas_only=False)
        viewer.close()
        print(f"screenshot of a 10-case review saved to {args.shot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
