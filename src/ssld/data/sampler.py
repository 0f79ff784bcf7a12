"""A distributed-aware sampler that can start mid-epoch, for exact resume.

It yields ``(index, epoch)`` keys so the dataset can seed each sample's augmentation from them. The per-epoch
order comes from ``seed + epoch`` alone; shards follow ``torch.utils.data.DistributedSampler`` (pad by wrapping
around, or drop the tail with ``drop_last``), so eval code de-duplicates padded samples by index.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch


class ResumableSampler(torch.utils.data.Sampler[tuple[int, int]]):
    """Yields ``(index, epoch)`` for this rank's shard of a (shuffled) epoch, optionally skipping its first batches."""

    def __init__(self, n: int, shuffle: bool, seed: int, rank: int = 0, world_size: int = 1,
                 drop_last: bool = False) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world size {world_size}")
        self.n, self.shuffle, self.seed = n, shuffle, seed
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.epoch = 0
        self.start = 0
        if drop_last:
            self.shard_size = n // world_size
        else:
            self.shard_size = math.ceil(n / world_size) if n else 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (its permutation); cancels any start batch set for the previous one."""
        self.epoch = epoch
        self.start = 0

    def set_start_batch(self, k: int, batch_size: int) -> None:
        """Skip this rank's first ``k`` batches of ``batch_size`` in the current epoch (resume mid-epoch)."""
        self.start = min(k * batch_size, self.shard_size)

    def _order(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        total = self.shard_size * self.world_size
        if total > len(order) and order:
            order += (order * math.ceil(total / len(order)))[: total - len(order)]
        return order[:total]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        shard = self._order()[self.rank :: self.world_size]
        for index in shard[self.start :]:
            yield index, self.epoch

    def __len__(self) -> int:
        return self.shard_size - self.start
