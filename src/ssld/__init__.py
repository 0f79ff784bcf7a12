"""ssld: semi-supervised label knowledge distillation (SSLD) for image classifiers, on PyTorch and timm.

``import ssld`` loads nothing heavy (not even ``typing``); the Python API (``ssld.distill``, ``ssld.train``,
``ssld.TrainResult``, and the mining steps ``ssld.label``, ``ssld.dedup``, ``ssld.select``; docs/python_api.md)
is imported on first use.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = ("TrainResult", "dedup", "distill", "label", "select", "train")
__all__ = ["TrainResult", "__version__", "dedup", "distill", "label", "select", "train"]

TYPE_CHECKING = False  # type checkers take it as True, without importing typing at run time
if TYPE_CHECKING:
    from ssld.api import TrainResult, dedup, distill, label, select, train


def __getattr__(name: str) -> object:
    if name in _API:
        return getattr(importlib.import_module("ssld.api"), name)
    raise AttributeError(f"module 'ssld' has no attribute '{name}'")
