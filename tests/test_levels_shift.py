"""A level result renumbered by hand-checked shifts: bodies and the discs below them, the
transitional T13 / L6 in the sequence when present, the ends of the spine refused, and the
summary line's parts."""

from __future__ import annotations

import numpy as np
import pytest

from napari_spine.anatomy.levels import LevelResult, standard_levels
from napari_spine.anatomy.ontology import vertebra_id

D = 100  # a disc's id: the vertebra above it + 100


def _result(names, discs=True):
    ids = [vertebra_id(n) for n in names]
    lab = np.zeros((2, 4 * len(ids) + 2, 3), np.uint8)
    for k, v in enumerate(ids):
        lab[:, 4 * k, :] = v
        if discs and v + D in __import__("napari_spine").ontology.BY_ID:
            lab[:, 4 * k + 2, :] = v + D
    res = LevelResult(labels=lab, bodies=[(v, 4.0 * k) for k, v in enumerate(ids)])
    return res, lab


def _ids(labels):
    return sorted(int(i) for i in np.unique(labels) if i)


def test_a_shift_moves_bodies_with_their_discs():
    res, lab = _result(["L2", "L3", "L4"])
    down = res.shifted(+1)
    assert _ids(down) == [22, 23, 24, 122, 123, 124]
    assert np.array_equal(down == 23, lab == 22) and np.array_equal(down == 123, lab == 122)
    up = res.shifted(-1)
    assert _ids(up) == [20, 21, 22, 120, 121, 122]
    assert np.array_equal(res.shifted(0), lab)
    assert np.array_equal(res.labels, lab)  # the result itself is left as it is


def test_the_ends_of_the_spine_are_refused():
    res, _ = _result(["L4", "L5", "S1"])
    with pytest.raises(ValueError, match=r"shifting by 1 runs past S1"):
        res.shifted(+1)
    res, _ = _result(["C1", "C2"])
    with pytest.raises(ValueError, match=r"shifting by -1 runs past C1"):
        res.shifted(-1)
    assert _ids(_result(["C1", "C2"])[0].shifted(+1))[:2] == [2, 3]


def test_transitional_levels_join_the_sequence_when_present():
    res, _ = _result(["L5", "L6"])  # six lumbar vertebrae: L6 then S1
    # L5->L6 (its disc becomes L6/S1), L6->S1 (no disc below S1: its disc goes back to generic)
    assert _ids(res.shifted(+1)) == [25, 26, 100, 125]
    res, lab = _result(["T12", "T13"])
    out = res.shifted(+1)
    assert set(out[lab == vertebra_id("T12")].tolist()) == {vertebra_id("T13")}
    assert set(out[lab == vertebra_id("T13")].tolist()) == {vertebra_id("L1")}
    res, lab = _result(["T12", "L1"])  # without T13, T12 -> L1 directly
    out = res.shifted(+1)
    assert set(out[lab == vertebra_id("T12")].tolist()) == {vertebra_id("L1")}
    assert set(out[lab == vertebra_id("L1")].tolist()) == {vertebra_id("L2")}


def test_a_body_without_a_disc_below_keeps_no_disc():
    res, lab = _result(["L4", "L5"], discs=False)
    lab[:, 6, :] = 124  # the L5/S1 disc
    res = LevelResult(labels=lab, bodies=res.bodies)
    out = res.shifted(-1)  # L5 -> L4: its disc becomes L4/L5
    assert _ids(out) == [22, 23, 123]


def test_summary_names_what_was_done():
    res, _ = _result(["L1", "L2"])
    res.discs = [(120, 2.0)]
    res.anchor, res.anchor_source = "L1", "given"
    res.splits.append("a body split in two")
    res.ignored.extend(["a", "b"])
    assert res.summary() == ("2 bodies and 1 discs numbered from L1 (as given); a body split in two; "
                             "2 small piece(s) ignored")
    res.anchor_source = "assumed"
    assert res.assumed and "(anchor assumed)" in res.summary()
    res.anchor_source = "sacrum"
    assert not res.assumed and "(anchor: sacrum)" in res.summary()


def test_the_standard_sequence():
    levels = standard_levels()
    assert levels[0] == "C1" and levels[-1] == "S1" and len(levels) == 7 + 12 + 5 + 1
    assert "T13" not in levels and "L6" not in levels


def test_a_disc_whose_new_level_has_none_below_goes_back_to_generic():
    # C2 -> C1: there is no C1/C2 disc, so the C2/C3 disc may not keep its name (the old C3,
    # now C2, brings its own disc as C2/C3)
    res, lab = _result(["C2", "C3"])
    out = res.shifted(-1)
    assert _ids(out) == [1, 2, 100, 102]
    assert np.array_equal(out == 100, lab == 102) and np.array_equal(out == 102, lab == 103)
    res, lab = _result(["L4", "L5"])  # L5 -> S1 the same way at the other end
    lab[:, 6, :] = 124
    res = LevelResult(labels=lab, bodies=res.bodies)
    out = res.shifted(+1)
    assert _ids(out) == [24, 26, 100, 124]
