import os

import pytest

# napari needs OpenGL: these tests run under Xvfb (see .ci/run); skip cleanly without a display.
if not os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM") != "offscreen":
    pytest.skip("no display (run under xvfb-run)", allow_module_level=True)


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.gui)


@pytest.fixture(autouse=True)
def _unsaved_edits_are_kept(monkeypatch):
    """Closing a test's viewer with unsaved edits answers "Keep in journal" (no dialog
    blocks the run); tests of the question set their own answer."""
    from napari_spine._napari.panels import _correction_guard

    monkeypatch.setattr(_correction_guard, "ask_unsaved", lambda parent, case, n: "keep")
    monkeypatch.setattr(_correction_guard, "confirm_overwrite", lambda parent, path: True)
