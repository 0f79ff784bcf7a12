"""A user's own torch ``Dataset`` (or a ``DataLoader``'s) as the batches ssld's training loop consumes.

The loop wants ``{"image", "label", "index", "bad"}`` batches from a sampler it can set to an epoch and a batch
(exact resume) and that shards over torchrun ranks. :func:`torch_loader` wraps a map-style Dataset whose items
are ``(image, label)`` pairs, ``{"image", "label"}`` dicts or bare image tensors (unlabeled: label -1) in a
DataLoader over a :class:`~ssld.data.sampler.ResumableSampler`. Each item is fetched with torch, ``random`` and
numpy seeded from ``(seed, epoch, index)``, so random augmentations repeat exactly after a resume, under any
number of workers or processes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, default_collate

from ssld.data.dataset import _SeededRNG, sample_seed
from ssld.data.sampler import ResumableSampler
from ssld.errors import UserError


class SeededItems(Dataset):
    """``ds[(index, epoch)] -> (index, item)``: the item drawn under RNGs seeded from ``(seed, epoch, index)``."""

    def __init__(self, dataset: Any, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> tuple[int, Any]:
        index, epoch = key
        with _SeededRNG(sample_seed(self.seed, epoch, index)):
            return index, self.dataset[index]


def _image_and_label(batch: Any, n: int, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(batch, dict):
        image, label = batch.get("image"), batch.get("label")
    elif isinstance(batch, (list, tuple)):
        image, label = batch[0], (batch[1] if len(batch) > 1 else None)
    else:
        image, label = batch, None
    if not torch.is_tensor(image):
        raise UserError(f"{where}: items must be (image tensor, label) pairs, {{'image', 'label'}} dicts or image "
                        f"tensors (after collate_fn), got images of type {type(image).__name__}")
    if label is None:
        return image, torch.full((n,), -1, dtype=torch.long)
    label = torch.as_tensor(label)
    return image, label if label.is_floating_point() else label.long()


class BatchCollate:
    """Collates ``(index, item)`` pairs with the user's ``collate_fn`` into the loop's batch dict; ``targets``
    adds ``soft_target`` rows (offline teacher) by dataset index."""

    def __init__(self, collate_fn: Callable[[list[Any]], Any], where: str,
                 targets: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.collate_fn, self.where, self.targets = collate_fn, where, targets

    def __call__(self, pairs: list[tuple[int, Any]]) -> dict[str, Any]:
        index = torch.tensor([i for i, _ in pairs], dtype=torch.long)
        image, label = _image_and_label(self.collate_fn([item for _, item in pairs]), len(pairs), self.where)
        batch = {"image": image, "label": label, "index": index, "bad": []}
        if self.targets is not None:
            batch["soft_target"] = self.targets(index)
        return batch


def torch_loader(data: Dataset | DataLoader, *, train: bool, seed: int, batch_size: int, num_workers: int,
                 where: str, targets: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 ) -> tuple[DataLoader, ResumableSampler]:
    """A DataLoader of loop batches over ``data`` and its sampler (call once the process group is up).

    A DataLoader contributes its dataset, batch size, workers, ``collate_fn``, ``drop_last`` and whether it
    shuffles; its sampler is replaced by ssld's (shuffled per epoch from ``seed``, sharded over ranks,
    resumable). ``batch_size``/``num_workers`` apply to a bare Dataset; evaluation never shuffles or drops.
    """
    collate_fn: Callable[[list[Any]], Any] = default_collate
    shuffle, drop_last, pin, persistent = train, False, torch.cuda.is_available(), False
    if isinstance(data, DataLoader):
        if data.batch_size is None:
            raise UserError(f"{where}: a DataLoader with a batch_sampler cannot be resharded; pass its dataset "
                            "and batch_size instead")
        dataset, batch_size, num_workers = data.dataset, data.batch_size, data.num_workers
        collate_fn, pin, persistent = data.collate_fn, data.pin_memory, data.persistent_workers
        shuffle, drop_last = train and isinstance(data.sampler, RandomSampler), train and data.drop_last
    else:
        dataset = data
    if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
        raise UserError(f"{where}: expected a map-style torch Dataset (with __len__ and __getitem__) or a "
                        f"DataLoader over one, got {type(dataset).__name__}")
    if len(dataset) == 0:
        raise UserError(f"{where}: the dataset is empty")
    rank, world = 0, 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    sampler = ResumableSampler(len(dataset), shuffle=shuffle, seed=seed, rank=rank, world_size=world,
                               drop_last=drop_last)
    if drop_last and batch_size > sampler.shard_size:
        raise UserError(f"{where}: batch size {batch_size} per process is more than the {sampler.shard_size} items "
                        "of this rank's shard (drop_last would leave no batch)")
    loader = DataLoader(SeededItems(dataset, seed), batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                        collate_fn=BatchCollate(collate_fn, where, targets), pin_memory=pin, drop_last=drop_last,
                        persistent_workers=persistent and num_workers > 0)
    return loader, sampler
