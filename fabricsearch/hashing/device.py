"""Pick the torch device: CUDA when present, else Apple MPS, else CPU; an explicit name wins."""

from __future__ import annotations

import torch

from fabricsearch.errors import UserError


class DeviceError(UserError, RuntimeError):
    """A requested device that is not available here."""


def resolve_device(name: str = "auto") -> torch.device:
    """ "auto" → cuda / mps / cpu in that order; otherwise the named device, checked."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise DeviceError(f"unknown device {name!r}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("CUDA was requested but no CUDA device is available")
    if (
        device.type == "cuda"
        and device.index is not None
        and device.index >= torch.cuda.device_count()
    ):
        raise DeviceError(f"CUDA device {device.index} does not exist")
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError("MPS was requested but is not available")
    return device
