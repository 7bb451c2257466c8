import os

import pytest

# napari needs OpenGL: these tests run under Xvfb (see .ci/run); skip cleanly without a display.
if not os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM") != "offscreen":
    pytest.skip("no display (run under xvfb-run)", allow_module_level=True)


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.gui)
