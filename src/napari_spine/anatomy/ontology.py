"""The anatomy table: every spine structure napari-spine knows, with one id, name and colour.

Canonical ids follow the VerSe / TPTBox numbering, so VerSe-style files and SPINEPS
outputs need no map:

===========  ==========================================================
ids          structures
===========  ==========================================================
1-7          vertebrae C1-C7
8-19         vertebrae T1-T12
20-25        vertebrae L1-L6 (L6: lumbosacral transitional vertebra)
26           S1 (sacrum)
27           coccyx
28           T13 (transitional thoracic vertebra)
41-49        vertebral sub-regions (arch, processes, facets, body border)
50           vertebral body, level not assigned
51           whole vertebra (body and arch), level not assigned
60, 61       spinal cord, spinal canal
62           endplate, level not assigned
100          intervertebral disc, level not assigned
101-128      disc *below* the vertebra with id ``id - 100`` (C2/C3 = 102 ... L5/S1 = 124)
202-228      endplates of the vertebra with id ``id - 200``
===========  ==========================================================

Every id is below 256, so label arrays are ``uint8`` (napari renders uint8 labels in 3-D
about 100x faster than int32). Names and colours live here and nowhere else; dataset
label schemes translate into these ids through the JSON files in ``label_maps/``.

A disc is identified by the vertebra above it, so 124 is "L5/S1" in a normal spine and
"L5/L6" when an L6 is present; :func:`display_name` gives the name that fits a case.
"""

from __future__ import annotations

import colorsys
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = [
    "DISC_OFFSET",
    "ENDPLATE_OFFSET",
    "GENERIC_DISC",
    "GENERIC_VERTEBRA",
    "GENERIC_VERTEBRAL_BODY",
    "SPINAL_CANAL",
    "SPINAL_CORD",
    "STRUCTURES",
    "Structure",
    "by_id",
    "by_name",
    "color_of",
    "cranio_caudal_order",
    "disc_between",
    "display_name",
    "is_disc",
    "is_vertebra",
    "sort_cranio_caudal",
    "level_names",
    "name_of",
    "vertebra_id",
    "vertebra_order",
]

Kind = Literal["vertebra", "disc", "endplate", "subregion", "neural"]
Region = Literal["C", "T", "L", "S", "Co"]

DISC_OFFSET = 100
ENDPLATE_OFFSET = 200
GENERIC_VERTEBRAL_BODY = 50
GENERIC_VERTEBRA = 51  # a whole vertebra (body and arch), level not assigned
GENERIC_DISC = 100
GENERIC_ENDPLATE = 62
SPINAL_CORD = 60
SPINAL_CANAL = 61


@dataclass(frozen=True, slots=True)
class Structure:
    """One entry of the anatomy table.

    Attributes
    ----------
    id : int
        Canonical label id (VerSe/TPTBox numbering), 1-255.
    name : str
        Short display name, e.g. ``"L3"``, ``"L3/L4"``, ``"Spinal cord"``.
    kind : str
        ``"vertebra"``, ``"disc"``, ``"endplate"``, ``"subregion"`` or ``"neural"``.
    region : str or None
        ``"C"``, ``"T"``, ``"L"``, ``"S"`` or ``"Co"`` for level-assigned structures.
    level : str or None
        The vertebra a structure belongs to (for a disc: the vertebra above it).
    color : tuple of 4 floats
        RGBA in 0-1, used for the napari labels colormap and reports.
    aliases : tuple of str
        Other accepted names (``"L5-S1"``, ``"sacrum"`` ...).
    """

    id: int
    name: str
    kind: Kind
    region: Region | None
    level: str | None
    color: tuple[float, float, float, float]
    aliases: tuple[str, ...] = ()


# Cranio-caudal sequence of vertebrae (T13 and L6 are transitional and usually absent).
_VERTEBRAE: tuple[tuple[str, int], ...] = (
    *((f"C{i}", i) for i in range(1, 8)),
    *((f"T{i}", 7 + i) for i in range(1, 13)),
    ("T13", 28),
    *((f"L{i}", 19 + i) for i in range(1, 7)),
    ("S1", 26),
    ("Co", 27),
)

# Disc below each vertebra: (disc name, aliases). C1 has no disc below it (atlanto-axial
# joint); the sacrum's fused discs and the sacrococcygeal joint are not labelled.
_DISC_BELOW: dict[str, tuple[str, tuple[str, ...]]] = {}
for _i in range(2, 7):
    _DISC_BELOW[f"C{_i}"] = (f"C{_i}/C{_i + 1}", ())
_DISC_BELOW["C7"] = ("C7/T1", ())
for _i in range(1, 12):
    _DISC_BELOW[f"T{_i}"] = (f"T{_i}/T{_i + 1}", ())
_DISC_BELOW["T12"] = ("T12/L1", ("T12/T13",))
_DISC_BELOW["T13"] = ("T13/L1", ())
for _i in range(1, 5):
    _DISC_BELOW[f"L{_i}"] = (f"L{_i}/L{_i + 1}", ())
_DISC_BELOW["L5"] = ("L5/S1", ("L5/L6",))
_DISC_BELOW["L6"] = ("L6/S1", ())


def _region(level: str) -> Region:
    return "Co" if level == "Co" else level[0]  # type: ignore[return-value]


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float, float]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (round(r, 4), round(g, 4), round(b, 4), 1.0)


# Golden-ratio hue steps make every pair of neighbouring levels (and each disc against
# both of its vertebrae) clearly different; a test checks the distances.
_GOLDEN = 0.381966


# long: the anatomy table as data, region by region; splitting it would scatter one table
def _build() -> tuple[Structure, ...]:
    out: list[Structure] = []
    for k, (name, vid) in enumerate(_VERTEBRAE):
        aliases: tuple[str, ...] = ()
        if name == "S1":
            aliases = ("sacrum", "S")
        elif name == "Co":
            aliases = ("coccyx", "Cocc")
        out.append(
            Structure(
                id=vid,
                name="Coccyx" if name == "Co" else name,
                kind="vertebra",
                region=_region(name),
                level=name,
                color=_hsv(0.02 + k * _GOLDEN, 0.78, 0.95),
                aliases=aliases + ((name,) if name == "Co" else ()),
            )
        )
        if name in _DISC_BELOW:
            dname, daliases = _DISC_BELOW[name]
            out.append(
                Structure(
                    id=vid + DISC_OFFSET,
                    name=dname,
                    kind="disc",
                    region=_region(name),
                    level=name,
                    color=_hsv(0.02 + k * _GOLDEN + 0.5 * _GOLDEN, 0.42, 1.0),
                    aliases=daliases,
                )
            )
        if name not in ("C1", "Co"):
            out.append(
                Structure(
                    id=vid + ENDPLATE_OFFSET,
                    name=f"{name} endplate",
                    kind="endplate",
                    region=_region(name),
                    level=name,
                    color=_hsv(0.02 + k * _GOLDEN, 0.85, 0.55),
                )
            )
    generic = [
        (41, "Vertebral arch", "subregion", (0.85, 0.65, 0.45)),
        (42, "Spinous process", "subregion", (0.95, 0.55, 0.35)),
        (43, "Costal/transverse process, left", "subregion", (0.75, 0.45, 0.75)),
        (44, "Costal/transverse process, right", "subregion", (0.55, 0.35, 0.85)),
        (45, "Superior articular process, left", "subregion", (0.35, 0.75, 0.55)),
        (46, "Superior articular process, right", "subregion", (0.25, 0.55, 0.45)),
        (47, "Inferior articular process, left", "subregion", (0.95, 0.85, 0.35)),
        (48, "Inferior articular process, right", "subregion", (0.75, 0.65, 0.15)),
        (49, "Vertebral body border", "subregion", (0.55, 0.55, 0.55)),
        (GENERIC_VERTEBRAL_BODY, "Vertebral body (level not assigned)", "vertebra",
         (0.93, 0.80, 0.55)),
        (GENERIC_VERTEBRA, "Vertebra (level not assigned)", "vertebra", (0.85, 0.72, 0.62)),
        (SPINAL_CORD, "Spinal cord", "neural", (1.0, 0.95, 0.2)),
        (SPINAL_CANAL, "Spinal canal", "neural", (0.35, 0.65, 1.0)),
        (GENERIC_ENDPLATE, "Endplate (level not assigned)", "endplate", (0.6, 0.3, 0.2)),
        (GENERIC_DISC, "Disc (level not assigned)", "disc", (0.3, 0.9, 0.85)),
    ]
    aliases_generic = {
        GENERIC_VERTEBRAL_BODY: ("vertebral body", "vertebral bodies", "corpus"),
        GENERIC_VERTEBRA: ("vertebra", "vertebrae", "whole vertebra"),
        GENERIC_DISC: ("disc", "intervertebral disc", "ivd"),
        SPINAL_CORD: ("cord",),
        SPINAL_CANAL: ("canal", "csf"),
        GENERIC_ENDPLATE: ("endplate",),
    }
    for sid, name, kind, rgb in generic:
        out.append(
            Structure(
                id=sid,
                name=name,
                kind=kind,  # type: ignore[arg-type]
                region=None,
                level=None,
                color=(*rgb, 1.0),
                aliases=aliases_generic.get(sid, ()),
            )
        )
    out.sort(key=lambda s: s.id)
    return tuple(out)


STRUCTURES: tuple[Structure, ...] = _build()
_BY_ID: Mapping[int, Structure] = MappingProxyType({s.id: s for s in STRUCTURES})


def _norm(name: str) -> str:
    n = name.strip().upper()
    n = re.sub(r"^(VERTEBRAE?|VERT)[ _-]+(?=\S)", "", n)
    n = re.sub(r"\s*[-/_]\s*", "/", n)
    n = re.sub(r"\s+", " ", n)
    return n


def _build_names() -> Mapping[str, Structure]:
    table: dict[str, Structure] = {}
    for s in STRUCTURES:
        for n in (s.name, *s.aliases):
            key = _norm(n)
            if key in table and table[key].id != s.id:
                raise RuntimeError(f"ambiguous structure name {n!r}")
            table[key] = s
        if s.kind == "disc" and s.level is not None:
            table.setdefault(_norm(s.name.replace("/", "")), s)  # "L5S1"
    return MappingProxyType(table)


_BY_NAME = _build_names()

#: Read-only lookup tables.
BY_ID = _BY_ID
BY_NAME = _BY_NAME


def by_id(structure_id: int) -> Structure:
    """The structure with canonical id ``structure_id`` (KeyError with a clear text otherwise)."""
    try:
        return _BY_ID[int(structure_id)]
    except KeyError:
        raise KeyError(f"{structure_id} is not a napari-spine structure id") from None


def by_name(name: str) -> Structure:
    """Look a structure up by name or alias, case- and separator-insensitively.

    >>> by_name("l5-s1").id, by_name("L5/S1").id, by_name("sacrum").id
    (124, 124, 26)
    """
    try:
        return _BY_NAME[_norm(name)]
    except KeyError:
        raise KeyError(f"{name!r} is not a napari-spine structure name") from None


def name_of(structure_id: int) -> str:
    """The display name of an anatomy id (``"Label <id>"`` for an id outside the table)."""
    s = _BY_ID.get(int(structure_id))
    return s.name if s is not None else f"label {int(structure_id)}"


def color_of(structure_id: int) -> tuple[float, float, float, float]:
    """The RGBA colour of an anatomy id (grey for an id outside the table)."""
    return by_id(structure_id).color


def vertebra_id(level: str) -> int:
    """Canonical id of a vertebra by level name (``"L3"`` -> 22)."""
    s = by_name(level)
    if s.kind != "vertebra" or s.level is None:
        raise KeyError(f"{level!r} is not a vertebral level")
    return s.id


def disc_between(upper: str, lower: str) -> int:
    """Canonical id of the disc between two adjacent vertebrae (``("L5", "S1")`` -> 124)."""
    up, lo = vertebra_id(upper), vertebra_id(lower)
    seq = [v for _, v in _VERTEBRAE]
    i, j = seq.index(up), seq.index(lo)
    # adjacent, allowing a skipped transitional level (T12 -> L1 without T13, L5 -> S1 without L6)
    skipped = seq[i + 1 : j]
    if j <= i or any(v not in (28, 25) for v in skipped):
        raise KeyError(f"{upper} and {lower} are not adjacent vertebrae")
    did = up + DISC_OFFSET
    if did not in _BY_ID:
        raise KeyError(f"no disc between {upper} and {lower}")
    return did


def is_vertebra(structure_id: int) -> bool:
    """Whether an id is a vertebra of any level, or a "level not assigned" vertebra or body."""
    s = _BY_ID.get(int(structure_id))
    return s is not None and s.kind == "vertebra"


def is_disc(structure_id: int) -> bool:
    """Whether an id is an intervertebral disc."""
    s = _BY_ID.get(int(structure_id))
    return s is not None and s.kind == "disc"


def vertebra_order() -> tuple[int, ...]:
    """Vertebra ids from cranial to caudal: C1..C7, T1..T12, T13, L1..L6, S1, coccyx."""
    return tuple(v for _, v in _VERTEBRAE)


def cranio_caudal_order() -> tuple[int, ...]:
    """Level-assigned vertebrae and discs interleaved from cranial to caudal."""
    out: list[int] = []
    for _, v in _VERTEBRAE:
        out.append(v)
        if v + DISC_OFFSET in _BY_ID:
            out.append(v + DISC_OFFSET)
    return tuple(out)


def level_names(transitional: Iterable[str] = ()) -> tuple[str, ...]:
    """The usual cranio-caudal vertebral levels, C1 ... S1, with T13 / L6 only when named.

    >>> level_names(("L6",))[-3:]
    ('L5', 'L6', 'S1')
    """
    t = set(transitional)
    names = [f"C{i}" for i in range(1, 8)] + [f"T{i}" for i in range(1, 13)]
    names += ["T13"] if "T13" in t else []
    names += [f"L{i}" for i in range(1, 6)]
    names += ["L6"] if "L6" in t else []
    return (*names, "S1")


def sort_cranio_caudal(ids: Iterable[int]) -> list[int]:
    """Structure ids from cranial to caudal (vertebrae and discs interleaved), then the rest."""
    order = _CC_INDEX
    return sorted((int(i) for i in ids), key=lambda i: (order.get(i, len(order) + i), i))


def display_name(structure_id: int, present: Iterable[int] = ()) -> str:
    """Name of a structure as it reads in a given case.

    A disc is stored by the vertebra above it; when a transitional vertebra is present
    the disc below L5 is L5/L6 (not L5/S1) and the one below T12 is T12/T13.

    >>> display_name(124), display_name(124, present=[24, 25])
    ('L5/S1', 'L5/L6')
    """
    sid = int(structure_id)
    ids = set(int(i) for i in present)
    if sid == 24 + DISC_OFFSET and 25 in ids:
        return "L5/L6"
    if sid == 19 + DISC_OFFSET and 28 in ids:
        return "T12/T13"
    return name_of(sid)


_CC_INDEX = {sid: k for k, sid in enumerate(cranio_caudal_order())}
