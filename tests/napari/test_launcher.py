import os
import subprocess
import sys

import numpy as np
import pytest


@pytest.mark.slow
def test_screenshot_of_the_real_window(tmp_path):
    from PIL import Image

    out = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "xcb"))
    proc = subprocess.run([sys.executable, "-m", "napari_spine", "--screenshot", str(out)],
                          capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    img = np.asarray(Image.open(out).convert("RGB")).astype(float)
    assert img.shape[0] > 400 and img.shape[1] > 800
    # not a black canvas: the phantom and the dock widget are drawn
    assert img.std() > 20
    centre = img[img.shape[0] // 3 : 2 * img.shape[0] // 3, img.shape[1] // 3 : 2 * img.shape[1] // 3]
    assert (centre.max(axis=-1) > 100).mean() > 0.05
