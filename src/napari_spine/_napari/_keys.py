"""The plugin's keyboard shortcuts, as napari actions: listed (and changeable) in napari's
Preferences > Shortcuts under the viewer's key bindings, and none on a key napari uses.

A panel calls :func:`attach` with itself and its kind; an action runs the method of the
newest live panel of that kind in the viewer where the key was pressed.
"""

from __future__ import annotations

import weakref
from typing import Any

__all__ = ["ACTIONS", "attach", "shortcut_of", "tooltip"]

#: action name -> (panel kind, method, arguments, default shortcut, description)
ACTIONS: dict[str, tuple[str, str, tuple, str, str]] = {
    "napari-spine:next_level": ("correction", "step_level", (+1,), "Control-Alt-Down",
                                "Spine correction: paint the next level down"),
    "napari-spine:previous_level": ("correction", "step_level", (-1,), "Control-Alt-Up",
                                    "Spine correction: paint the next level up"),
    "napari-spine:next_dataset_case": ("dataset", "_step", (+1,), "Shift-Alt-Right",
                                       "Spine dataset: load the next case"),
    "napari-spine:previous_dataset_case": ("dataset", "_step", (-1,), "Shift-Alt-Left",
                                           "Spine dataset: load the previous case"),
    "napari-spine:qa_approve": ("qa", "approve", (), "Alt-A", "Spine QA: approve the case and save"),
    "napari-spine:qa_needs_correction": ("qa", "needs_correction", (), "Alt-C",
                                         "Spine QA: the case needs correction; save"),
    "napari-spine:qa_flag_level": ("qa", "flag_under_cursor", (), "Alt-F",
                                   "Spine QA: flag the level under the cursor"),
    "napari-spine:qa_next_case": ("qa", "next_case", (), "Alt-Right", "Spine QA: next case to do"),
    "napari-spine:qa_previous_case": ("qa", "previous_case", (), "Alt-Left", "Spine QA: previous case to do"),
}

_PANELS: dict[str, list[weakref.ref]] = {}
_registered = False


def _unwrap(viewer: Any) -> Any:
    return getattr(viewer, "__wrapped__", viewer)


def _viewer_of(panel: Any) -> Any:
    try:
        return _unwrap(panel.viewer)
    except RuntimeError:  # the panel's Qt side was deleted (its dock closed)
        return None


def _panel_for(kind: str, viewer: Any) -> Any:
    live = [(p, _viewer_of(p)) for p in (r() for r in _PANELS.get(kind, [])) if p is not None]
    live = [(p, v) for p, v in live if v is not None]
    _PANELS[kind] = [weakref.ref(p) for p, _ in live]
    mine = [p for p, v in live if v is _unwrap(viewer)]
    return (mine or [None])[-1]


def _command(name: str):
    kind, method, args, _, _ = ACTIONS[name]

    def run(viewer) -> None:
        panel = _panel_for(kind, viewer)
        if panel is not None:
            getattr(panel, method)(*args)

    from napari.components import ViewerModel

    run.__annotations__ = {"viewer": ViewerModel, "return": None}
    return run


def _register() -> None:
    global _registered
    if _registered:
        return
    from napari.components import ViewerModel
    from napari.settings import get_settings
    from napari.utils.action_manager import action_manager

    saved = get_settings().shortcuts.shortcuts
    for name, (_, _, _, key, description) in ACTIONS.items():
        action_manager.register_action(name, _command(name), description, ViewerModel)
        if not action_manager._shortcuts.get(name):
            for k in saved.get(name, [key]):  # the user's choice from the preferences first
                action_manager.bind_shortcut(name, k)
    _registered = True


def attach(panel: Any, kind: str) -> None:
    """Make ``panel`` the one the ``kind`` shortcuts act on in its viewer."""
    _register()
    _PANELS.setdefault(kind, []).append(weakref.ref(panel))


def shortcut_of(name: str) -> str:
    """The shortcut bound to an action now, as napari writes it (e.g. ``Ctrl+Alt+Down``)."""
    from napari.utils.action_manager import action_manager
    from napari.utils.interactions import Shortcut

    keys = action_manager._shortcuts.get(name) or []
    return str(Shortcut(keys[0])) if keys else ""


def tooltip(text: str, name: str) -> str:
    """``text`` with the action's shortcut appended, for a control's tooltip."""
    key = shortcut_of(name)
    return f"{text} ({key})" if key else text
