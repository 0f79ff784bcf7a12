"""Label-free data expansion (the part of SSLD PaddleClas never released): dedup, soft-label store, selection.

``ssld.mining.dedup`` (``search`` + ``decide``) removes pool images that copy a validation image,
``ssld.mining.label.label`` writes the teacher's soft labels into a resumable store read by
:class:`SoftLabelStore`, and :func:`select_topk` keeps the k most confident images per class. Names are
imported lazily so that ``ssld --help`` (which reads the dedup defaults) does not pay for numpy, torch or faiss.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SoftLabelStore": "ssld.mining.store",
    "Selection": "ssld.mining.select",
    "select_topk": "ssld.mining.select",
    "label": "ssld.mining.label",
    "load_teacher": "ssld.mining.teacher",
    "Thresholds": "ssld.mining.rules",
}
__all__ = ["Selection", "SoftLabelStore", "Thresholds", "label", "load_teacher", "select_topk"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ssld.mining' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
