"""File formats: NIfTI read/write with exact geometry, mask folders, atomic writes, export.

- :mod:`.nifti` — reading NIfTI images and label files into :class:`~napari_spine.SpineCase`;
- :mod:`.masks` — folders of one binary mask per class (TotalSegmentator);
- :mod:`.export` — labels and landmarks written back on the source grid;
- :mod:`.files` — atomic writes, safe file names, JSON conversion;
- :mod:`.safeload` — the one allow-list for unpickling data and checkpoint files;
- :mod:`.nnunet_raw` — nnU-Net ``Dataset###`` training-set export.
"""
