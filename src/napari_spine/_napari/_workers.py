"""One way for a panel to run work in the background: progress, cancel, errors in the panel.

A job is a function, or a generator function that yields
:class:`~napari_spine.inference.ProgressEvent` and returns its result. :class:`Task` runs it
in a napari thread worker (or in place with ``sync=True``, for scripts and tests), drives
the panel's progress bar and status line, and hands an exception back as a
:class:`Failure` so that it is shown in the panel and never escapes into the Qt event loop.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["Failure", "Task"]


@dataclass(frozen=True)
class Failure:
    """What a job raised. Returned, not raised: napari's worker re-raises raised exceptions
    into the event loop."""

    error: BaseException


def _guarded(job: Callable[[], Any]) -> Generator[Any, None, Any]:
    try:
        out = job()
        if inspect.isgenerator(out):
            out = yield from out
        return out
    except Exception as exc:  # shown in the panel with the file and the problem
        return Failure(exc)


class Task:
    """Runs one background job at a time for a panel.

    Parameters
    ----------
    progress : QProgressBar, optional
        Shown while a job runs: busy until the job reports a count, then the count.
    status : QLabel, optional
        Says what runs, then what came of it.
    buttons : iterable of QWidget
        Disabled while a job runs (the panel's start buttons).
    cancel_button : QPushButton, optional
        Enabled while a job runs; pressing it asks the job to stop (:attr:`cancelled`).
    """

    def __init__(self, *, progress=None, status=None, buttons: Iterable = (), cancel_button=None):
        self.progress = progress
        self.status = status
        self.buttons = tuple(buttons)
        self.cancel_button = cancel_button
        #: set when the user asks the running job to stop; jobs poll ``cancelled.is_set``
        self.cancelled = threading.Event()
        self.worker = None
        self._running = False
        if cancel_button is not None:
            cancel_button.setEnabled(False)
            cancel_button.clicked.connect(self.cancel)
        if progress is not None:
            progress.setVisible(False)

    @property
    def busy(self) -> bool:
        """Whether a job is running."""
        return self._running

    def cancel(self) -> None:
        """Ask the running job to stop at its next check."""
        if self._running:
            self.cancelled.set()
            self._say("Cancelling…")

    def start(self, job: Callable[[], Any], *, desc: str, done: Callable[[Any], str | None],
              failed: Callable[[BaseException], str | None] | None = None, sync: bool = False):
        """Run ``job``; ``done(result)`` / ``failed(error)`` return the status text (or None).

        Returns the napari worker (``None`` with ``sync=True``, or when a job is already
        running: one at a time).
        """
        if self._running:
            return None
        self.cancelled.clear()
        self._begin(desc)
        gen = _guarded(job)
        finish = lambda res: self._end(res, desc, done, failed)  # noqa: E731
        if sync:
            while True:
                try:
                    self._on_event(next(gen))
                except StopIteration as stop:
                    finish(stop.value)
                    return None
        from napari.qt.threading import create_worker

        worker = create_worker(lambda: (yield from gen), _progress={"total": 0, "desc": desc})
        worker.yielded.connect(self._on_event)
        worker.returned.connect(finish)
        worker.finished.connect(self._stopped)  # also after an abort, when nothing returned
        self.worker = worker
        worker.start()
        return worker

    # -- the panel's side ----------------------------------------------------------------
    def _say(self, text: str | None) -> None:
        if self.status is not None and text is not None:
            self.status.setText(text)

    def _set_running(self, running: bool) -> None:
        self._running = running
        for b in self.buttons:
            b.setEnabled(not running)
        if self.cancel_button is not None:
            self.cancel_button.setEnabled(running)
        if self.progress is not None:
            if running:
                self.progress.setRange(0, 0)  # busy until the job reports a count
            self.progress.setVisible(running)

    def _begin(self, desc: str) -> None:
        self._set_running(True)
        self._say(f"{desc}…")

    def _on_event(self, ev: Any) -> None:
        if getattr(ev, "total", 0) and self.progress is not None:
            self.progress.setRange(0, ev.total)
            self.progress.setValue(ev.done)
        if getattr(ev, "message", ""):
            self._say(ev.message)

    def _stopped(self) -> None:
        self.worker = None
        self._set_running(False)

    def _end(self, res: Any, desc: str, done, failed) -> None:
        self._stopped()
        if isinstance(res, Failure):
            text = failed(res.error) if failed is not None else f"{desc} failed: {res.error}"
            self._say(text)
            if failed is None:
                from napari.utils.notifications import show_error

                show_error(text)
            return
        self._say(done(res))
