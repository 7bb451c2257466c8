"""The napari edge: readers, writers, sample data and dock widgets.

The only subpackage that imports napari or Qt; everything here translates between
:class:`napari_spine.case.SpineCase` and napari layers and calls the core.
"""
