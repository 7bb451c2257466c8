"""Open napari with the napari-spine widgets docked and a case loaded."""

from __future__ import annotations

from pathlib import Path

PLUGIN = "napari-spine"


def open_viewer(paths=(), sample: str | None = None, show: bool = True, scheme: str | None = None):
    """Create a viewer with the plugin's widgets docked and the given files (or a sample);
    ``scheme`` reads the labels of the files in that label scheme."""
    import napari

    viewer = napari.Viewer(title="napari-spine", show=show)
    viewer.window.add_plugin_dock_widget(PLUGIN, "Spine dataset")
    case_dock, case_widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Spine case", tabify=True)
    viewer.window.add_plugin_dock_widget(PLUGIN, "Spine correction", tabify=True)
    viewer.window.add_plugin_dock_widget(PLUGIN, "Spine inference", tabify=True)
    viewer.window.add_plugin_dock_widget(PLUGIN, "Spine QA review", tabify=True)
    case_dock.raise_()  # the panel that describes the case on screen
    if paths:
        for p in paths:
            viewer.open(str(p), plugin=PLUGIN)
    elif sample != "none":
        key = "mr_cervical" if sample == "mr" else "ct_lumbar"
        viewer.open_sample(PLUGIN, key)
    if scheme:
        from napari.layers import Labels

        for layer in [ly for ly in viewer.layers if isinstance(ly, Labels)]:
            viewer.layers.selection.active = layer
            case_widget.set_scheme(scheme)
    # select the image so the widget shows the case, and start in the sagittal mid-slice
    viewer.layers.selection.active = viewer.layers[0] if len(viewer.layers) else None
    viewer.reset_view()
    return viewer


def launch(paths=(), sample: str | None = None, screenshot: str | None = None,
           scheme: str | None = None) -> int:
    """Open the viewer (see :func:`open_viewer`) and run napari; with ``screenshot`` save a
    picture of the whole window there and close instead. Returns the exit code."""
    import napari

    viewer = open_viewer(paths, sample, scheme=scheme)
    if screenshot:
        from qtpy.QtWidgets import QApplication

        viewer.window._qt_window.resize(1400, 900)
        for _ in range(20):
            QApplication.processEvents()
        viewer.reset_view()  # fit the case to the canvas at its final size
        for _ in range(5):
            QApplication.processEvents()
        out = Path(screenshot)
        viewer.screenshot(str(out), canvas_only=False)
        viewer.close()
        print(f"screenshot saved to {out}")
        return 0
    from qtpy.QtCore import QTimer

    QTimer.singleShot(300, viewer.reset_view)  # once the window has its size, fit the case
    napari.run()
    return 0
