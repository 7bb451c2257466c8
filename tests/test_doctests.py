"""The examples in the core modules' docstrings stay true."""

import doctest

import pytest

import napari_spine.anatomy.ontology
import napari_spine.geometry
import napari_spine.io.nifti


@pytest.mark.parametrize("module", [napari_spine.geometry, napari_spine.io.nifti, napari_spine.anatomy.ontology])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
