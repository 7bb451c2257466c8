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




def drain(gen):
    """Run a generator to the end: (yielded items, returned value)."""
    items = []
    while True:
        try:
            items.append(next(gen))
        except StopIteration as stop:
            return items, stop.value


def save_torchscript(module, path, card: dict | None) -> Path:
    """Script ``module`` and save it with ``card`` embedded as model_card.json."""
    import json
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated in torch 2.14
        extra = {"model_card.json": json.dumps(card)} if card is not None else {}
        torch.jit.save(torch.jit.script(module), str(path), _extra_files=extra)
    return Path(path)


def sign_card(**overrides) -> dict:
    """Card of a two-class model: background where the input is negative, L1 where positive."""
    card = {"name": "sign", "axcodes": "LIP", "spacing": None, "patch_size": [16, 16, 16],
            "normalization": {"scheme": "none"}, "labels": {"0": "background", "1": "L1"}}
    card.update(overrides)
    return card


def sign_model_file(path, **card_overrides) -> Path:
    """A TorchScript "sign" network (logits [-x, x]) with its card."""
    import torch

    class Sign(torch.nn.Module):
        def forward(self, x):
            return torch.cat([-x, x], 1)

    return save_torchscript(Sign(), path, sign_card(**card_overrides))


class FileOpeningPickle:
    """Pickles to a call of ``open(marker, "w")``: loading it would create ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))
