"""Which torch device inference runs on: ``auto`` resolves CUDA, then MPS, then CPU.

The environment variable ``NAPARI_SPINE_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``)
overrides ``auto``; an explicit request for a device that is not there is an error rather
than a silent fallback, so the user always knows where the work ran.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["DeviceInfo", "available_devices", "describe_device", "resolve_device", "ENV_VAR"]

ENV_VAR = "NAPARI_SPINE_DEVICE"


@dataclass(frozen=True)
class DeviceInfo:
    """One device a model can run on, as shown in the device picker."""

    name: str  # torch device string: "cpu", "cuda:0", "mps"
    label: str  # what the user reads: "NVIDIA H100 (77.1 GiB free of 79.2 GiB)"
    free_bytes: int | None = None
    total_bytes: int | None = None


def _cpu_label() -> str:
    import torch

    return f"CPU ({torch.get_num_threads()} threads)"


def available_devices() -> list[DeviceInfo]:
    """Every usable device, GPUs first (with name and free memory), CPU last."""
    import torch

    out: list[DeviceInfo] = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            name = torch.cuda.get_device_name(i)
            try:
                free, total = torch.cuda.mem_get_info(i)
            except RuntimeError:  # device busy or in an exclusive mode
                free = total = None
            mem = (
                f" ({free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB)"
                if free is not None
                else ""
            )
            out.append(DeviceInfo(f"cuda:{i}", f"{name}{mem}", free, total))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append(DeviceInfo("mps", "Apple GPU (MPS)"))
    out.append(DeviceInfo("cpu", _cpu_label()))
    return out


def resolve_device(device=None):
    """Turn ``"auto"``/``None``/a string/a ``torch.device`` into a usable ``torch.device``.

    ``auto`` honours :data:`ENV_VAR`, then picks CUDA, MPS, CPU in that order. A named
    device that is not available raises ``RuntimeError`` with the devices that are.
    """
    import torch

    if isinstance(device, torch.device):
        req = device
    else:
        name = (device or "auto").strip().lower()
        if name == "auto":
            name = os.environ.get(ENV_VAR, "").strip().lower() or "auto"
        if name == "auto":
            if torch.cuda.is_available():
                return torch.device("cuda", torch.cuda.current_device())
            mps = getattr(torch.backends, "mps", None)
            if mps is not None and mps.is_available():
                return torch.device("mps")
            return torch.device("cpu")
        try:
            req = torch.device(name)
        except RuntimeError as e:
            raise RuntimeError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from e
    ok = {
        "cpu": True,
        "cuda": torch.cuda.is_available()
        and (req.index is None or req.index < torch.cuda.device_count()),
        "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available(),
    }.get(req.type, False)
    if not ok:
        have = ", ".join(d.name for d in available_devices())
        raise RuntimeError(f"device {str(req)!r} is not available here; available: {have}")
    if req.type == "cuda" and req.index is None:
        req = torch.device("cuda", torch.cuda.current_device())
    return req


def describe_device(device) -> str:
    """A one-line description of a resolved device (GPU name and free memory)."""
    import torch

    device = torch.device(device)
    for d in available_devices():
        if torch.device(d.name) == device:
            return d.label
    return str(device)
