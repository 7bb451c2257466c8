"""The examples in the core modules' docstrings stay true."""

import doctest

import pytest

import napari_spine.geometry
import napari_spine.io_nifti
import napari_spine.ontology


@pytest.mark.parametrize("module", [napari_spine.geometry, napari_spine.io_nifti, napari_spine.ontology])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
