"""What a batch run is asked to do and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SpineIOError

__all__ = ["COMMANDS", "BatchError", "BatchOptions", "BatchResult"]

COMMANDS = ("predict", "qa", "export")


class BatchError(SpineIOError):
    """The batch cannot start (bad dataset folder, unwritable output, unreachable cluster)."""


@dataclass(frozen=True)
class BatchOptions:
    """What to do with every case (everything here enters the fingerprint)."""

    command: str
    scheme: str | None = None  # labels scheme of written labels; default per command
    model: str = "default"
    device: str = "auto"
    sequence: str | None = None
    predictions: str | None = None  # qa: a previous ``batch predict`` output folder
    trust_model: bool = False  # the user trusts a model file that carries code (TorchScript)

    def __post_init__(self) -> None:
        if self.command not in COMMANDS:
            raise BatchError(f"unknown command {self.command!r}; use {', '.join(COMMANDS)}")

    @property
    def label_scheme(self) -> str:
        """The label scheme of the written labels (``native`` unless canonical ids were asked for)."""
        return self.scheme or ("canonical" if self.command == "predict" else "native")


@dataclass
class BatchResult:
    rows: list[dict[str, Any]]
    out: Path
    computed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Cases that succeeded (or were up to date)."""
        return all(r["status"] == "ok" for r in self.rows)

    @property
    def failed(self) -> list[dict[str, Any]]:
        """Cases that failed, with their reasons in the rows."""
        return [r for r in self.rows if r["status"] != "ok"]
