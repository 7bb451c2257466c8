"""Anatomy: the one named, coloured table of spine structures, label schemes and levels.

- :mod:`.ontology` — the canonical anatomy table (ids, names, colours, regions);
- :mod:`.labelmaps` — label schemes (dataset and tool conventions) to and from canonical ids;
- :mod:`.labelnames` — label names read from files (header extensions, sidecars) and matched;
- :mod:`.levels` — vertebral level identification on label masks.
"""
