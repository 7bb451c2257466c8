"""Helpers shared by the tests (importable as ``helpers``)."""

from __future__ import annotations

import itertools
from pathlib import Path

import nibabel as nib

REPO = Path(__file__).resolve().parents[1]
REALDATA = REPO.parent / "shared" / "realdata"

_PAIRS = (("L", "R"), ("P", "A"), ("I", "S"))


def all_axcodes() -> list[tuple[str, str, str]]:
    """All 48 axis orders/flips as nibabel axis codes."""
    out = []
    for perm in itertools.permutations(range(3)):
        for flips in itertools.product((0, 1), repeat=3):
            out.append(tuple(_PAIRS[perm[i]][flips[i]] for i in range(3)))
    return out


def save_nifti(path, data, affine, *, qcode=1, scode=1, header=None) -> Path:
    img = nib.Nifti1Image(data, affine, header=header)
    img.header.set_qform(affine, code=qcode)
    img.header.set_sform(affine, code=scode)
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, str(path))
    return Path(path)


