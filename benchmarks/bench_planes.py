"""On-demand benchmark: the three linked planes on a 512x535x512 CT with its labels.

    QT_QPA_PLATFORM=xcb xvfb-run -a .venv/bin/python benchmarks/bench_planes.py

Times, each the median of 3 runs, against same-run baselines napari itself sets:

- opening the axial and coronal views (twins of the layers, two canvases, letters,
  crosshairs, first draw) against two plain napari canvases (``ViewerModel`` + ``QtViewer``)
  showing the same two layers;
- one brush stroke in napari's canvas with the views open (the stroke, its journal event and
  the redraw of both twins) against the same stroke with them closed;
- moving the shared point (three views re-sliced) against moving napari's own slider.

Targets: opening within 2.5x the baseline (the twins are napari layers made anew: their
events and the first slicing are most of the difference), a stroke within 2x, a point move within 4x (three
canvases instead of one, plus the crosshairs).
"""

from __future__ import annotations

import json
import statistics
import time


def _settle():
    from qtpy.QtWidgets import QApplication

    for _ in range(3):
        QApplication.processEvents()


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    _settle()
    return time.perf_counter() - t0


def _plain_canvases(image, labels, keep: list) -> None:
    """What two more napari canvases cost without any linking: the baseline of opening
    (kept in ``keep`` and hidden: closed at the end, like the viewer)."""
    from napari.components.viewer_model import ViewerModel
    from napari.qt import QtViewer
    from qtpy.QtWidgets import QSplitter

    box = QSplitter()
    models = []
    for _ in range(2):
        model = ViewerModel()
        model.add_image(image, scale=(0.7,) * 3, contrast_limits=(-500, 1300))
        model.add_labels(labels, scale=(0.7,) * 3)
        box.addWidget(QtViewer(model))
        models.append(model)
    box.show()
    _settle()
    box.hide()
    keep.append((box, models))


def main() -> int:
    import napari
    from napari_spine import make_phantom
    from napari_spine._napari._planes import LinkedPlanes

    case = make_phantom((512, 535, 512), (0.7, 0.7, 0.7), levels=("C2", "S1"), noise=0.0)
    viewer = napari.Viewer(show=True)
    res: dict[str, list[float]] = {k: [] for k in ("plain_canvases", "open", "stroke_alone",
                                                  "stroke_linked", "slider", "point")}
    kept: list = []
    for _ in range(3):
        viewer.layers.clear()
        viewer.add_image(case.image, scale=(0.7,) * 3, contrast_limits=(-500, 1300))
        viewer.add_labels(case.labels, scale=(0.7,) * 3)
        _settle()
        res["plain_canvases"].append(_timed(lambda: _plain_canvases(case.image, case.labels, kept)))
        labels = viewer.layers[1]
        labels.brush_size = 10
        res["stroke_alone"].append(_timed(lambda: labels.paint((256, 260, 250), 3)))
        res["slider"].append(_timed(lambda: viewer.dims.set_point(0, 100.0)))
        holder = {}
        res["open"].append(_timed(lambda: holder.setdefault("p", LinkedPlanes(viewer))))
        planes = holder["p"]
        res["stroke_linked"].append(_timed(lambda: labels.paint((256, 262, 250), 4)))
        res["point"].append(_timed(lambda: planes.set_point((120.0, 180.0, 170.0))))
        planes.close()
    med = {k: statistics.median(v) for k, v in res.items()}
    out = {k: round(v, 4) for k, v in med.items()}
    out.update(open_ratio=round(med["open"] / med["plain_canvases"], 2),
               stroke_ratio=round(med["stroke_linked"] / med["stroke_alone"], 2),
               point_ratio=round(med["point"] / med["slider"], 2),
               targets={"open_ratio": 2.5, "stroke_ratio": 2.0, "point_ratio": 4.0})
    print(json.dumps(out, indent=1))
    viewer.close()
    ok = out["open_ratio"] <= 2.5 and out["stroke_ratio"] <= 2.0 and out["point_ratio"] <= 4.0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
