"""Mixed precision: which autocast dtype to use and whether a GradScaler is needed.

An ``AMP`` section that is present and enabled means autocast in bfloat16 (CPU and CUDA), or float16 with a
GradScaler when ``AMP.dtype: float16`` on CUDA (float16 on CPU falls back to bfloat16: CPU autocast has no
loss scaling). No ``AMP`` section means float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ssld.config.schema import AMPConfig


@dataclass(frozen=True)
class Precision:
    """The numeric precision of a run: ``dtype`` is None for float32."""

    device_type: str
    dtype: torch.dtype | None

    @property
    def needs_scaler(self) -> bool:
        return self.dtype is torch.float16

    @property
    def name(self) -> str:
        return "float32" if self.dtype is None else str(self.dtype).removeprefix("torch.")

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Autocast in this precision (nothing for float32)."""
        if self.dtype is None:
            yield
            return
        with torch.autocast(device_type=self.device_type, dtype=self.dtype):
            yield

    def grad_scaler(self, amp: AMPConfig | None = None) -> torch.amp.GradScaler:
        """A GradScaler, active only for float16; PaddleClas ``scale_loss`` is its initial scale and
        ``use_dynamic_loss_scaling: false`` never grows it."""
        init_scale = amp.scale_loss if amp else 65536.0
        growth = 2000 if (amp is None or amp.use_dynamic_loss_scaling) else 2**62
        return torch.amp.GradScaler(
            self.device_type, init_scale=init_scale, growth_interval=growth, enabled=self.needs_scaler
        )


def resolve_precision(amp: AMPConfig | None, device: torch.device) -> Precision:
    """The precision the config asks for on this device."""
    if amp is None or not amp.enabled:
        return Precision(device.type, None)
    if amp.dtype == "float16" and device.type == "cuda":
        return Precision(device.type, torch.float16)
    return Precision(device.type, torch.bfloat16)
