"""Open napari with the napari-spine widgets docked and a case loaded."""

from __future__ import annotations

from pathlib import Path

PLUGIN = "napari-spine"
#: the docked panels, in tab order, with their tab titles
TABS = (("Spine dataset", "Dataset"), ("Spine case", "Case"), ("Spine correction", "Correct"),
        ("Spine inference", "Model"), ("Spine QA review", "QA"))


def _layout_file() -> Path:
    import os

    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "napari-spine" / "window-layout.bin"


def save_layout(window) -> bool:
    """Remember where the docks of a napari main window are (False: not written)."""
    from ..io.files import write_bytes_atomic

    path = _layout_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, bytes(window.saveState()))
    except (OSError, RuntimeError):
        return False  # a read-only home, or the window is gone: the layout is not remembered
    return True


def restore_layout(viewer, docks) -> bool:
    """Put the docks where they were when napari last quit (True when a layout was
    restored), and remember them when it quits."""
    import weakref

    from qtpy.QtCore import QByteArray
    from qtpy.QtWidgets import QApplication

    win = viewer.window._qt_window
    window = weakref.ref(win)  # the quit hook must not keep a closed window alive
    for name, dock in docks.items():
        dock.setObjectName(name)  # saveState / restoreState know a dock by its object name
    QApplication.instance().aboutToQuit.connect(lambda: window() is not None and save_layout(window()))
    try:
        state = _layout_file().read_bytes()
    except OSError:
        return False
    return bool(win.restoreState(QByteArray(state)))


def open_viewer(paths=(), sample: str | None = None, show: bool = True, scheme: str | None = None):
    """Create a viewer with the plugin's widgets docked and the given files (or a sample);
    ``scheme`` reads the labels of the files in that label scheme."""
    import napari

    viewer = napari.Viewer(title="napari-spine", show=show)
    docks = {}
    for k, (name, short) in enumerate(TABS):
        docks[name] = viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=k > 0)
        docks[name][0].setWindowTitle(short)  # the tab's title: short enough to read in full
    case_dock, case_widget = docks["Spine case"]
    restore_layout(viewer, {name: dock for name, (dock, _) in docks.items()})
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
