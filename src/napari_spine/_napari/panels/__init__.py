"""The dock widgets napari-spine contributes (see ``napari.yaml``). Each is a thin view
over a :class:`~napari_spine._napari._workspace.Workspace` and the core."""
