"""The viewer's layers mirrored into another napari ``ViewerModel`` (the extra planes).

Each layer of the viewer gets a twin in the other model, made with napari's
``Layer.create(*layer.as_layer_data_tuple())``: the twin holds the *same* array, so painting
in either view edits the one mask. What napari keeps per layer is carried across here:

- the layer's settable properties (opacity, colours, contrast, selected label, mode, …),
  both ways, through their events;
- data replaced on either side (a new case, points added in either view);
- painting: a stroke in a twin is announced as the original's ``paint`` event, so everything
  that follows the original's edits (the correction journal, the Structures list) sees it,
  and both layers redraw; the twin shares the original's undo history and key bindings, so
  Ctrl+Z does the same wherever it is pressed;
- which layer is selected, and the layer order.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

__all__ = ["Mirror"]

#: events that are not plain settable state, or that are carried separately
_SKIP = frozenset({"data", "set_data", "thumbnail", "status", "help", "interactive", "cursor",
                   "cursor_size", "loaded", "extent", "extent_augmented", "highlight",
                   "refresh", "reload", "paint", "labels_update", "editable", "selected_data",
                   "current_properties", "properties", "_overlays", "mouse_pan", "mouse_zoom"})


def _synced_properties(layer: Any) -> list[str]:
    """The names of ``layer``'s events that announce a settable property of the same name."""
    from napari.utils.events.event import WarningEmitter

    klass = type(layer)
    names = []
    for name, emitter in layer.events.emitters.items():
        if name in _SKIP or name.startswith("_") or isinstance(emitter, WarningEmitter):
            continue
        prop = getattr(klass, name, None)
        if isinstance(prop, property) and prop.fset is not None:
            names.append(name)
    return names


def _finished(event: Any) -> bool:
    """Whether a ``data`` event reports a finished change (not napari's "adding"/"changing")."""
    action = getattr(event, "action", None)
    return action is None or not str(getattr(action, "value", action)).endswith("ing")


class Mirror:
    """Keeps ``model``'s layers twins of ``viewer``'s: added, removed, moved, edited and
    selected together."""

    def __init__(self, viewer: Any, model: Any):
        self.viewer, self.model = viewer, model
        self.twins: dict[int, Any] = {}  # id(original) -> twin
        self._busy = False
        # (emitter, callback) pairs to disconnect: per original layer (key: its id), and the
        # viewer's own (key None)
        self._links: dict[int | None, list[tuple[Any, Any]]] = {}
        for layer in viewer.layers:
            self._add(layer)
        self._connect(viewer.layers.events.inserted, self._on_inserted)
        self._connect(viewer.layers.events.removed, self._on_removed)
        self._connect(viewer.layers.events.moved, self._on_moved)
        self._connect(viewer.layers.selection.events.active, self._on_active)
        self._on_active()

    # -- bookkeeping -------------------------------------------------------------------
    def _connect(self, emitter: Any, callback: Any, key: int | None = None) -> None:
        emitter.connect(callback)
        self._links.setdefault(key, []).append((emitter, callback))

    def _disconnect(self, key: int | None) -> None:
        for emitter, callback in self._links.pop(key, []):
            try:
                emitter.disconnect(callback)
            except (TypeError, ValueError, RuntimeError):
                pass

    def close(self) -> None:
        """Stop mirroring (the twins stay in the model until it is dropped)."""
        for key in list(self._links):
            self._disconnect(key)

    @contextmanager
    def _quiet(self):
        """While one side is being made like the other, the other's echo is ignored."""
        self._busy, was = True, self._busy
        try:
            yield
        finally:
            self._busy = was

    def twin_of(self, layer: Any) -> Any:
        """The twin of one of the viewer's layers (None if it has none)."""
        return self.twins.get(id(getattr(layer, "__wrapped__", layer)))  # plugins get proxies

    # -- layers coming and going ----------------------------------------------------------
    def _on_inserted(self, event: Any) -> None:
        self._add(event.value, event.index)

    def _on_removed(self, event: Any) -> None:
        twin = self.twins.pop(id(event.value), None)
        self._disconnect(id(event.value))  # the layer may live on (a panel holds it): let go
        if twin is not None and twin in self.model.layers:
            self.model.layers.remove(twin)

    def _on_moved(self, event: Any) -> None:
        order = [self.twins[id(ly)] for ly in self.viewer.layers if id(ly) in self.twins]
        with self._quiet():
            for i, twin in enumerate(order):
                j = list(self.model.layers).index(twin)
                if j != i:
                    self.model.layers.move(j, i)

    def _on_active(self, *_: Any) -> None:
        twin = self.twin_of(self.viewer.layers.selection.active)
        if twin is not None:
            self.model.layers.selection.active = twin

    def _add(self, layer: Any, index: int | None = None) -> None:
        from napari.layers import Labels, Layer

        twin = Layer.create(*layer.as_layer_data_tuple())
        key = id(layer)
        self.twins[key] = twin
        self.model.layers.insert(len(self.model.layers) if index is None else index, twin)
        for name in _synced_properties(layer):  # the twin is of the same class: the same names
            self._connect(getattr(layer.events, name), self._copier(name, layer, twin), key)
            self._connect(getattr(twin.events, name), self._copier(name, twin, layer), key)
        self._connect(layer.events.data, self._data_copier(layer, twin), key)
        self._connect(twin.events.data, self._data_copier(twin, layer), key)
        if isinstance(layer, Labels):
            self._link_labels(layer, twin)
        twin.keymap = layer.keymap  # the same key bindings (the correction panel's undo, …)
        try:
            twin.mode = layer.mode  # the tool in use (the layer data tuple does not carry it)
        except (ValueError, TypeError):
            pass

    def _copier(self, name: str, source: Any, target: Any):
        def copy(*_: Any) -> None:
            if self._busy:
                return
            value = getattr(source, name)
            with self._quiet():
                try:
                    if getattr(target, name) is not value:
                        setattr(target, name, value)
                except (ValueError, TypeError, KeyError, AttributeError):
                    pass  # a value the other layer cannot take (napari validates): keep its own
        return copy

    def _data_copier(self, source: Any, target: Any):
        """Data replaced on one side goes to the other. The original's features are the
        truth: they go to the twin; a twin's features only fill rows the original lacks, and
        what the original's listeners then made of them (ruler values) comes back."""
        original = self._original(source, target)

        def copy(event: Any = None) -> None:
            if self._busy or not _finished(event):
                return
            with self._quiet():
                if target.data is not source.data:
                    target.data = source.data
                if hasattr(source, "features") and len(source.features) == len(target.data) and (
                        source is original or len(target.features) != len(target.data)):
                    target.features = source.features
                if hasattr(source, "_undo_history"):
                    _share_history(original, self._twin(source, target))
            if target is original and hasattr(target, "features") and len(target.features) == len(source.data):
                with self._quiet():
                    source.features = target.features
        return copy

    def _original(self, a: Any, b: Any) -> Any:
        return a if id(a) in self.twins else b

    def _twin(self, a: Any, b: Any) -> Any:
        return b if id(a) in self.twins else a

    # -- painting ---------------------------------------------------------------------------
    def _link_labels(self, layer: Any, twin: Any) -> None:
        _share_history(layer, twin)

        def from_original(*_: Any) -> None:
            twin.refresh()

        def from_twin(event: Any) -> None:
            layer.refresh()
            layer.events.paint(value=event.value)  # the edit is the original's, for its listeners

        self._connect(layer.events.paint, from_original, id(layer))
        self._connect(twin.events.paint, from_twin, id(layer))
        self._connect(layer.events.editable, lambda *_: _share_history(layer, twin), id(layer))


def _share_history(layer: Any, twin: Any) -> None:
    """Let ``twin`` undo and redo in ``layer``'s history (napari keeps it per layer; it is
    rebuilt when the data is replaced, so this is repeated then)."""
    for attr in ("_undo_history", "_redo_history"):
        if hasattr(layer, attr):
            setattr(twin, attr, getattr(layer, attr))
