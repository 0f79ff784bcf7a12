"""Label-free data expansion (the part of SSLD PaddleClas never released): label, dedup, select.

The steps as library calls (:mod:`ssld.mining.jobs`): :func:`label_images` writes the teacher's soft labels of an
image list into a resumable store (:class:`ssld.data.store.SoftLabelStore`), :func:`dedup_images` removes pool
images that copy a validation image, and :func:`select_images` keeps the k most confident images per class. Names
are imported lazily so that ``ssld --help`` (which reads the dedup defaults) does not pay for numpy, torch or faiss.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "label_images": "ssld.mining.jobs",
    "dedup_images": "ssld.mining.jobs",
    "select_images": "ssld.mining.jobs",
    "LabelResult": "ssld.mining.jobs",
    "DedupResult": "ssld.mining.jobs",
    "SelectResult": "ssld.mining.jobs",
    "Selection": "ssld.mining.select",
    "select_topk": "ssld.mining.select",
    "label": "ssld.mining.label",
    "load_teacher": "ssld.mining.teacher",
    "Thresholds": "ssld.mining.rules",
}
__all__ = ["DedupResult", "LabelResult", "SelectResult", "Selection", "Thresholds", "dedup_images", "label",
           "label_images", "load_teacher", "select_images", "select_topk"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ssld.mining' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
