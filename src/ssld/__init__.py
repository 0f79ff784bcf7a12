"""ssld: semi-supervised label knowledge distillation (SSLD) for image classifiers, on PyTorch and timm.

``import ssld`` loads nothing heavy; the Python API (``ssld.distill``, ``ssld.train``, ``ssld.TrainResult``,
docs/python_api.md) is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_API = ("TrainResult", "distill", "train")
__all__ = ["TrainResult", "__version__", "distill", "train"]

if TYPE_CHECKING:
    from ssld.api import TrainResult, distill, train


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module("ssld.api"), name)
    raise AttributeError(f"module 'ssld' has no attribute '{name}'")
