"""Offline teacher targets: a training dataset whose samples carry their row of a soft-label store.

``DataLoader.Train.dataset.soft_labels: STORE`` points at a store written by ``ssld label`` (eval-mode teacher
outputs on the un-augmented, eval-transformed image). Each training sample is looked up by its path relative to
``image_root`` and gets ``soft_target``: the dense teacher probability vector. A top-k row is made dense by
scattering the k probabilities and spreading the remaining mass uniformly over the other classes (so no class
has probability zero and ``log p`` stays finite); a store written with ``--full`` gives its stored vector.

The student still sees the augmented crop while the target belongs to the whole, un-augmented image: teacher
and student no longer see the same view (Beyer et al. 2022, "Knowledge distillation: A good teacher is patient
and consistent", found such inconsistent targets distil worse). What it buys: no teacher forward per step.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ssld.data.dataset import ImageListDataset, Skipped, collate
from ssld.errors import UserError

WHERE = "DataLoader.Train.dataset.soft_labels"


def dense_probs(topk_idx: np.ndarray, topk_prob: np.ndarray, num_classes: int) -> np.ndarray:
    """Float32 ``[num_classes]`` probabilities from one top-k row; the mass outside the top k is spread evenly
    over the other classes (nothing is spread when k covers every class)."""
    idx = np.asarray(topk_idx, dtype=np.int64)
    prob = np.asarray(topk_prob, dtype=np.float32)
    rest = num_classes - len(idx)
    fill = max(0.0, 1.0 - float(prob.sum())) / rest if rest > 0 else 0.0
    out = np.full(num_classes, fill, dtype=np.float32)
    out[idx] = prob
    return out


def store_rows(store: Any, paths: Sequence[str], image_root: str, where: str = WHERE) -> np.ndarray:
    """Store row of every path (each taken relative to ``image_root``, as ``ssld label`` writes them).

    ``UserError`` naming how many paths the store lacks and the first of them.
    """
    rows = np.empty(len(paths), dtype=np.int64)
    missing: list[str] = []
    for i, path in enumerate(paths):
        try:
            rows[i] = store.index_of(os.path.relpath(path, image_root))
        except KeyError:
            missing.append(path)
    if missing:
        raise UserError(
            f"{where}: the store {store.root} does not cover the training list: {len(missing)} of {len(paths)} "
            f"images have no soft label (first: {missing[0]}); label them with `ssld label` on this list"
        )
    return rows


class SoftTargetDataset(torch.utils.data.Dataset):
    """``ImageListDataset`` whose ``load`` adds ``soft_target`` (float32 ``[C]``) from the store row of the path."""

    def __init__(self, dataset: ImageListDataset, store: Any, image_root: str) -> None:
        self.dataset = dataset
        self.store = store
        self.rows = store_rows(store, [s.path for s in dataset.samples], image_root)
        self.num_classes = store.num_classes

    @classmethod
    def open(cls, dataset: ImageListDataset, store_dir: str, image_root: str) -> SoftTargetDataset:
        """Open the store at ``store_dir`` (``UserError`` when it is missing, incomplete or damaged)."""
        from ssld.data.store import SoftLabelStore

        if not os.path.isdir(store_dir):
            raise UserError(f"{WHERE}: soft-label store not found: {store_dir} (write it with `ssld label`)")
        try:
            store = SoftLabelStore.open(store_dir)
        except UserError as e:
            raise UserError(f"{WHERE}: {e}") from None
        return cls(dataset, store, image_root)

    @property
    def samples(self) -> list[Any]:
        return self.dataset.samples

    @property
    def labels(self) -> list[int]:
        return self.dataset.labels

    def __len__(self) -> int:
        return len(self.dataset)

    def target(self, index: int) -> torch.Tensor:
        """Dense teacher probabilities of sample ``index``."""
        row = int(self.rows[index])
        if self.store.probs is not None:
            return torch.from_numpy(np.asarray(self.store.probs[row], dtype=np.float32))
        return torch.from_numpy(dense_probs(self.store.topk_idx[row], self.store.topk_prob[row], self.num_classes))

    def load(self, key: int | tuple[int, int]) -> dict[str, Any] | Skipped:
        item = self.dataset.load(key)
        if isinstance(item, dict):
            item["soft_target"] = self.target(item["index"])
        return item

    def load_batch(self, keys: Sequence[int | tuple[int, int]]) -> dict[str, Any] | None:
        """``ImageListDataset.load_batch`` plus ``soft_target`` (``None`` when the dataset has no batched path)."""
        out = self.dataset.load_batch(keys)
        if out is not None:
            rows = [self.target(i) for i in out["index"].tolist()]
            out["soft_target"] = torch.stack(rows) if rows else torch.empty(0, 0)
        return out

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any] | None:
        item = self.load(key)
        return None if isinstance(item, Skipped) else item


def soft_collate(batch: Sequence[dict[str, Any] | Skipped | None] | dict[str, Any]) -> dict[str, Any]:
    """``collate`` plus ``soft_target`` (float32 ``[B, C]``) of the readable items; a batch collated already
    passes through."""
    if isinstance(batch, dict):
        return batch
    out = collate(batch)
    good = [b["soft_target"] for b in batch if isinstance(b, dict)]
    out["soft_target"] = torch.stack(good) if good else torch.empty(0, 0)
    return out
