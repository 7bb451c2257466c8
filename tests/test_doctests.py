"""The examples in the core modules' docstrings stay true."""

import doctest
import importlib

import pytest

MODULES = ["napari_spine.geometry", "napari_spine.io.nifti", "napari_spine.anatomy.ontology",
           "napari_spine.io.files", "napari_spine.io.safeload", "napari_spine.display",
           "napari_spine.qa.metrics", "napari_spine.qa.overlay", "napari_spine.qa.triage",
           "napari_spine.correction.ops", "napari_spine.anatomy.levels"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
