"""Model inference on a case: devices, sliding window, model formats, the pipeline.

Importing this package does not import torch; every function does so when called.
"""

from __future__ import annotations

from .card import ModelCard, ModelError
from .devices import available_devices, describe_device, resolve_device
from .model import DEFAULT_MODEL, load_model
from .predict import predict, predict_iter
from .trust import UntrustedModelError
from .types import InferenceCancelled, Prediction, ProgressEvent, SpineModel

__all__ = [
    "DEFAULT_MODEL",
    "InferenceCancelled",
    "ModelCard",
    "ModelError",
    "Prediction",
    "ProgressEvent",
    "SpineModel",
    "UntrustedModelError",
    "available_devices",
    "describe_device",
    "load_model",
    "predict",
    "predict_iter",
    "resolve_device",
]
