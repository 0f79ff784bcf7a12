"""Fixtures for the mining tests: real Fashion-MNIST PNGs, real photographs, and a tiny classifier."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

IDX_DIR = Path("/usr/share/datasets/fashion-mnist")


def fmnist(n: int, split: str = "t10k") -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` images (uint8 [n, 28, 28]) and labels of a Fashion-MNIST split, read from the IDX files."""
    with gzip.open(IDX_DIR / f"{split}-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:n]
    with gzip.open(IDX_DIR / f"{split}-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    return images.copy(), labels.astype(np.int64)


def write_fmnist_list(root: Path, n: int, name: str = "pool.txt") -> Path:
    """Write ``n`` Fashion-MNIST test images as PNGs under ``root/img`` and an unlabeled list of them."""
    images, _ = fmnist(n)
    (root / "img").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, arr in enumerate(images):
        rel = f"img/{i:05d}.png"
        Image.fromarray(arr).save(root / rel)
        lines.append(rel)
    lst = root / name
    lst.write_text("\n".join(lines) + "\n")
    return lst


class TinyNet(nn.Module):
    """A small conv net with BatchNorm (so eval vs train mode matters) and timm's forward_features/forward_head."""

    def __init__(self, num_classes: int = 10, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Linear(16, num_classes)
        with torch.no_grad():
            self.features[1].running_mean.uniform_(-0.5, 0.5)
            self.features[1].running_var.uniform_(0.5, 2.0)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean(dim=(2, 3))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
