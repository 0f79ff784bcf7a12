"""PaddleClas's ``MultiLabelDataset``: list lines ``<relative path><TAB><0/1 per class, comma-separated>``.

Each image carries one target per class: 1 (has the attribute), 0 (has not) or -1 (unknown; the multi-label
losses give it weight 0 and the attribute metrics leave it out). ``label_ratio: true`` adds each class's positive
ratio over the list (positives / known entries; for 0/1 lists that is PaddleClas's per-class mean of the labels),
so a sample's label is the ``[2, C]`` pair (targets, ratios) the ``weight_ratio`` losses read; without it the
label is the ``[C]`` targets. As in PaddleClas, each split computes the ratios of its own list.

Paths may contain spaces (the tab separates them from the labels); a line without a tab is split at its last
run of whitespace. Blank lines and ``#`` comments are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ssld.data.dataset import ImageListDataset, Skipped
from ssld.data.lists import UNLABELED, Sample, list_lines
from ssld.errors import UserError

NAME = "MultiLabelDataset"
VALUES = (0, 1, -1)


def _parse_labels(text: str, where: str) -> list[int]:
    try:
        row = [int(v) for v in text.split(",")]
    except ValueError:
        raise UserError(f"{where}: labels {text!r} are not comma-separated integers (e.g. 0,1,0)") from None
    bad = next((v for v in row if v not in VALUES), None)
    if bad is not None:
        raise UserError(f"{where}: label {bad} is not 0, 1 or -1 (unknown), in {text!r}")
    return row


def read_multilabel_list(list_path: str | os.PathLike[str], image_root: str | os.PathLike[str],
                         num_classes: int | None = None,
                         classes_key: str = "Arch.class_num") -> tuple[list[Sample], np.ndarray]:
    """The list's samples and their ``[N, C]`` int8 targets (1, 0, -1).

    Every line must give the same number of labels, ``num_classes`` when known (named ``classes_key`` in the
    message). A sample's ``label`` is 0, or -1 when all its targets are unknown (an unlabeled image).
    """
    lp, root, lines = list_lines(list_path, image_root, "'<path><TAB><labels>' lines")
    samples: list[Sample] = []
    rows: list[list[int]] = []
    for lineno, line in lines:
        where = f"{lp}:{lineno}"
        parts = line.split("\t") if "\t" in line else line.rsplit(None, 1)
        if len(parts) != 2:
            raise UserError(f"{where}: expected '<path><TAB><labels>' (labels like 0,1,0), got {line!r}")
        path, labels = parts[0].strip(), parts[1].strip()
        row = _parse_labels(labels, where)
        expected = num_classes if num_classes is not None else (len(rows[0]) if rows else len(row))
        if len(row) != expected:
            whose = f"{classes_key} is {num_classes}" if num_classes is not None else f"the first line has {expected}"
            raise UserError(f"{where}: {len(row)} labels, but {whose} (one label per class)")
        samples.append(Sample(os.path.join(root, path), 0 if any(v >= 0 for v in row) else UNLABELED))
        rows.append(row)
    width = num_classes if num_classes is not None else 0
    return samples, np.array(rows, dtype=np.int8).reshape(len(rows), -1 if rows else width)


def positive_ratio(targets: np.ndarray) -> np.ndarray:
    """Per class: positives / known entries (0 where a class has no known entry), float32."""
    known = (targets >= 0).sum(axis=0)
    return ((targets == 1).sum(axis=0) / np.maximum(known, 1)).astype(np.float32)


class MultiLabelListDataset(ImageListDataset):
    """An image list whose items' ``label`` is a float tensor: ``[C]`` targets, or ``[2, C]`` (targets, positive
    ratios) with ``label_ratio``. Augmentation, caching and batched loading are the list dataset's."""

    def __init__(self, samples: Sequence[Sample], targets: np.ndarray, transform: Any, seed: int = 0,
                 label_ratio: bool = False) -> None:
        super().__init__(samples, transform, seed)
        if targets.shape[0] != len(self.samples):
            raise ValueError(f"{targets.shape[0]} target rows for {len(self.samples)} samples")
        self.targets = torch.from_numpy(targets.astype(np.float32))
        self.ratio = torch.from_numpy(positive_ratio(targets)) if label_ratio else None

    def label_rows(self, index: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """The labels of ``index`` stacked: ``[n, C]`` or ``[n, 2, C]``."""
        rows = self.targets[torch.as_tensor(index, dtype=torch.long)]
        if self.ratio is None:
            return rows
        return torch.stack([rows, self.ratio.expand_as(rows)], dim=1)

    def load(self, key: int | tuple[int, int]) -> dict[str, Any] | Skipped:
        item = super().load(key)
        if isinstance(item, dict):
            item["label"] = self.label_rows([item["index"]])[0]
        return item

    def load_batch(self, keys: Sequence[int | tuple[int, int]]) -> dict[str, Any] | None:
        batch = super().load_batch(keys)
        if batch is not None:
            batch["label"] = self.label_rows(batch["index"])
        return batch


def random_targets(batch_size: int, num_classes: int, label_ratio: bool, generator: torch.Generator) -> torch.Tensor:
    """Random multi-hot labels for a test step (``ssld check``): the second half of the rows unknown (-1), with
    the batch's positive ratios as a ``[B, 2, C]`` pair when ``label_ratio``."""
    targets = torch.randint(0, 2, (batch_size, num_classes), generator=generator).float()
    targets[batch_size // 2:] = -1.0
    if not label_ratio:
        return targets
    ratio = torch.from_numpy(positive_ratio(targets.numpy().astype(np.int8)))
    return torch.stack([targets, ratio.expand_as(targets)], dim=1)
