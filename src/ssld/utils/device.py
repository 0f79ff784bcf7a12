"""``Global.device`` -> a torch device: this process's GPU under torchrun, or the CPU."""

from __future__ import annotations

import torch

from ssld.errors import UserError
from ssld.utils import distributed as dist


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available; ``gpu``/``cuda`` without a GPU is a UserError; ``cpu`` is the CPU."""
    if name in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"Global.device: '{name}' requested but no CUDA device is available (use auto or cpu)")
        return torch.device("cuda", dist.local_rank())
    if name == "auto" and torch.cuda.is_available():
        return torch.device("cuda", dist.local_rank())
    return torch.device("cpu")
