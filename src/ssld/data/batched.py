"""Whole-batch augmentation of cached small images: pad, random crop, flip and normalize as array ops on a batch.

With ``cache_images`` and a CIFAR-style op list (``Pad``, ``RandomCrop``, ``RandFlipImage``, ``NormalizeImage``),
loading one 28 px sample still costs ~150 CPU-us of per-sample Python (seeding, four small array ops, a tensor
per image); on a 2-core machine the DataLoader workers that do it take cores from the training step. Here the
same ops run once per batch (~2 ms for 128 images) in the process that asks for it, no workers needed.

Randomness is per sample and counter-based: every draw is a hash of ``(seed, epoch, index, draw)``
(splitmix64), so a sample's crop and flip do not depend on its batch, on the worker, or on a resume mid-epoch.
The streams differ from the per-sample path's (``ssld.data.dataset``), so the two paths crop differently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ssld.data.array_ops import (
    ArrayPad,
    ArrayRandomCrop,
    ArrayRandomFlip,
    FitSize,
    scale_up,
)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer on uint64 arrays (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def uniform(seed: int, epochs: np.ndarray, indices: np.ndarray, draw: int) -> np.ndarray:
    """One float in [0, 1) per sample, a pure function of ``(seed, epoch, index, draw)``."""
    with np.errstate(over="ignore"):
        h = _mix(np.uint64(seed & 0xFFFFFFFF) + np.uint64(0x9E3779B97F4A7C15))
        h = _mix(h ^ epochs.astype(np.uint64))
        h = _mix(h ^ (indices.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)))
        h = _mix(h ^ np.uint64(draw + 1))
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


class BatchedAugment:
    """``(uint8 NHWC batch, seed, epochs, indices) -> float32 NCHW tensor``, the batch form of a per-sample chain.

    Build it with :func:`batched_form`; it holds the chain's ops and replays them on whole batches.
    """

    def __init__(self, ops: list[Any], gain: torch.Tensor, offset: torch.Tensor) -> None:
        self.ops, self.gain, self.offset = ops, gain, offset

    def __call__(self, batch: np.ndarray, seed: int, epochs: np.ndarray, indices: np.ndarray) -> torch.Tensor:
        draw = 0
        for op in self.ops:
            if isinstance(op, (ArrayPad, FitSize)):
                batch = op(batch)
            elif isinstance(op, ArrayRandomCrop):
                if op.pad is not None:
                    batch = op.pad(batch)
                batch = scale_up(batch, op.h, op.w)  # images smaller than the crop are stretched to cover it
                n, h, w, _ = batch.shape
                top = (uniform(seed, epochs, indices, draw) * (h - op.h + 1)).astype(np.int64)
                left = (uniform(seed, epochs, indices, draw + 1) * (w - op.w + 1)).astype(np.int64)
                draw += 2
                rows = top[:, None] + np.arange(op.h)
                cols = left[:, None] + np.arange(op.w)
                batch = batch[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
            elif isinstance(op, ArrayRandomFlip):
                flip = uniform(seed, epochs, indices, draw) < op.p
                draw += 1
                if flip.any():
                    batch = np.array(batch)  # a private copy before flipping rows in place
                    sel = batch[flip]
                    for axis in op.axes:  # HWC axes of one image: 0 = vertical, 1 = horizontal
                        sel = np.flip(sel, axis + 1)
                    batch[flip] = sel
        x = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2)
        x = x.to(torch.float32, memory_format=torch.contiguous_format)
        return x.mul_(self.gain).sub_(self.offset)


def batched_form(transform: Callable[[Any], torch.Tensor]) -> BatchedAugment | None:
    """The batch form of a per-sample transform built by ``build_transform``, or ``None`` when it has an op
    without one (anything but constant ``Pad``, ``RandomCrop`` without ``pad_if_needed``, ``RandFlipImage``,
    ``FitSize`` and a final ``NormalizeImage``)."""
    from ssld.data.image_ops import ToNormalizedTensor

    ops = list(getattr(transform, "transforms", []))
    if not ops or not isinstance(ops[-1], ToNormalizedTensor):
        return None
    for op in ops[:-1]:
        if isinstance(op, ArrayPad) and op.mode == "constant":
            continue
        if isinstance(op, ArrayRandomCrop) and not op.pad_if_needed and (op.pad is None or op.pad.mode == "constant"):
            continue
        if isinstance(op, (ArrayRandomFlip, FitSize)):
            continue
        return None
    norm = ops[-1]
    return BatchedAugment(ops[:-1], norm.gain, norm.offset)
