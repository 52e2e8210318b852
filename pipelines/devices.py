"""Device and dtype choice: cuda, then mps, then cpu; fp16 on cuda, fp32 elsewhere."""
from __future__ import annotations

import torch

DEVICES = ("auto", "cuda", "mps", "cpu")


def pick_device(requested: str = "auto") -> torch.device:
    """Return the device for `requested` ("auto", "cuda", "mps" or "cpu").

    Raises ValueError if a named device is unknown or not available here."""
    if requested not in DEVICES:
        raise ValueError(f"Unknown device {requested!r}; expected one of {DEVICES}.")
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if requested == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (requested == "cuda" and not cuda) or (requested == "mps" and not mps):
        raise ValueError(f"ATELIER_DEVICE={requested} but no {requested} device is available here; "
                         "use auto or cpu.")
    return torch.device(requested)


def pick_dtype(device: torch.device) -> torch.dtype:
    return torch.float16 if device.type == "cuda" else torch.float32
