"""napari-spine's per-user folders and remembered settings (no Qt).

- the configuration folder (``$NAPARI_SPINE_CONFIG_DIR``, else the platform's user
  configuration folder: ``~/.config/napari-spine`` on Linux): trusted models, settings;
- the data folder (``$NAPARI_SPINE_DATA_DIR``, else the platform's user data folder:
  ``~/.local/share/napari-spine`` on Linux): the edit journals of correction sessions,
  found again after a crash whatever output folder the user chose.

Both come from :mod:`platformdirs` (the folders every desktop application of the platform
uses); the environment variables let tests and shared installations move them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["config_dir", "data_dir", "journal_dir", "load_settings", "remember"]

_APP = "napari-spine"
_SETTINGS = "settings.json"


def config_dir() -> Path:
    """The per-user configuration folder (not created here)."""
    env = os.environ.get("NAPARI_SPINE_CONFIG_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir(_APP, appauthor=False))


def data_dir() -> Path:
    """The per-user data folder (not created here)."""
    env = os.environ.get("NAPARI_SPINE_DATA_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir(_APP, appauthor=False))


def journal_dir() -> Path:
    """Where the edit journals live: one folder per case, keyed by its source file's path."""
    return data_dir() / "journal"


def load_settings() -> dict[str, Any]:
    """The remembered settings ({} when none or unreadable)."""
    try:
        doc = json.loads((config_dir() / _SETTINGS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def remember(key: str, value: Any) -> bool:
    """Remember one setting (written atomically); False when the folder cannot be written
    (the setting is then only lost, nothing else)."""
    from .io.files import write_json

    doc = load_settings()
    doc[key] = value
    try:
        config_dir().mkdir(parents=True, exist_ok=True)
        write_json(config_dir() / _SETTINGS, doc)
    except OSError:
        return False
    return True
