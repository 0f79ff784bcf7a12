"""Metrics: top-k hits per sample, running averages, throughput, and the ``metrics.jsonl`` log.

``metrics.jsonl`` holds one JSON object per line: ``"kind": "train"`` rows every ``log_interval`` iterations
(epoch, step, lr, loss parts, img/s, time) and one ``"kind": "epoch"`` row per epoch (mean ``train_*`` loss
parts, lr, img/s, time, and top1/top5/loss/count when it evaluated). On resume, rows written after the checkpoint's step (by the killed run) are dropped so the
log reads as one uninterrupted run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from ssld.utils.io import atomic_write_text


def topk_hits(logits: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[int, torch.Tensor]:
    """For each k (capped at the number of classes), a bool tensor: is the label among the top-k logits."""
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices
    match = top == labels[:, None]
    return {k: match[:, : min(k, logits.shape[1])].any(dim=1) for k in ks}


class RunningMean:
    """Mean of scalars weighted by batch size (loss parts over an interval or an epoch)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0

    def update(self, values: dict[str, float], n: int) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v * n
        self.count += n

    def means(self) -> dict[str, float]:
        return {k: s / max(self.count, 1) for k, s in self.sums.items()}


class Throughput:
    """Images per second since the last ``reset``."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.start = time.perf_counter()
        self.images = 0

    def add(self, n: int) -> None:
        self.images += n

    def rate(self) -> float:
        return self.images / max(time.perf_counter() - self.start, 1e-9)


class MetricsLog:
    """Append-only ``metrics.jsonl`` writer; inert on ranks other than 0."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled

    def truncate_after(self, step: int) -> None:
        """Drop rows with ``step`` beyond ``step`` (left by a run that was killed after its last checkpoint)."""
        if not self.enabled or not self.path.is_file():
            return
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if int(row.get("step", 0)) <= step:
                keep.append(line)
        atomic_write_text(self.path, "".join(line + "\n" for line in keep))

    def write(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(row, default=float) + "\n")
