"""Datasets: PaddleClas list files and folder-per-class trees, transform op mapping, resumable loading.

Names are imported on first use, so ``ssld.data.lists`` and ``ssld.data.fashion_mnist`` work without loading
torch and torchvision.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "ImageListDataset": "dataset", "Skipped": "dataset", "collate": "dataset", "load_image": "dataset",
    "load_image_reduced": "dataset", "image_size": "dataset",
    "Sample": "lists", "read_image_folder": "lists", "read_list": "lists", "write_list": "lists",
    "build_dataset": "loader", "build_loader": "loader", "ResumableSampler": "sampler",
    "build_transform": "transforms",
}
__all__ = [
    "ImageListDataset", "ResumableSampler", "Sample", "Skipped", "build_dataset", "build_loader",
    "build_transform", "collate", "image_size", "load_image", "load_image_reduced", "read_image_folder", "read_list", "write_list",
]

if TYPE_CHECKING:
    from ssld.data.dataset import (
        ImageListDataset,
        Skipped,
        collate,
        image_size,
        load_image,
        load_image_reduced,
    )
    from ssld.data.lists import Sample, read_image_folder, read_list, write_list
    from ssld.data.loader import build_dataset, build_loader
    from ssld.data.sampler import ResumableSampler
    from ssld.data.transforms import build_transform


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'ssld.data' has no attribute '{name}'")
    return getattr(importlib.import_module(f"ssld.data.{_WHERE[name]}"), name)
