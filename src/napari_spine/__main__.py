"""``python -m napari_spine``: open napari with the napari-spine widgets and a sample."""

import sys

from .cli import main

sys.exit(main())
