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


REF_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins")
OTHER_PHOTOS = ("hubble_deep_field", "immunohistochemistry", "brick", "gravel", "grass", "page", "text", "moon",
                "cell", "clock", "retina")


def _photo(name: str, max_side: int = 192) -> Image.Image:
    import skimage.data

    img = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
    img.thumbnail((max_side, max_side), Image.BICUBIC)
    return img


def edited_copies(img: Image.Image) -> dict[str, Image.Image]:
    """The edits the dedup benchmark plants: resize, JPEG, crop 10%, flip, brightness +-20%, rotation 10 deg."""
    from PIL import ImageEnhance, ImageOps

    w, h = img.size
    return {
        "resize": img.resize((int(w * 0.6), int(h * 0.6)), Image.BILINEAR),
        "crop": img.crop((int(0.05 * w), int(0.05 * h), int(0.95 * w), int(0.95 * h))),
        "flip": ImageOps.mirror(img),
        "bright": ImageEnhance.Brightness(img).enhance(1.2),
        "dark": ImageEnhance.Brightness(img).enhance(0.8),
        "rotate": img.rotate(10, resample=Image.BILINEAR),
        "flip_rotate": ImageOps.mirror(img).rotate(-8, resample=Image.BILINEAR),
    }


def write_photo_fixture(root: Path) -> dict[str, list[str]]:
    """Reference photos, their edited copies (some saved as JPEG quality 50-90) and unrelated photos in the pool.

    Returns the relative paths: ``ref``, ``copies`` (pool), ``others`` (pool) and ``copy_source`` pairs.
    """
    (root / "ref").mkdir(parents=True, exist_ok=True)
    (root / "pool").mkdir(parents=True, exist_ok=True)
    out: dict[str, list[str]] = {"ref": [], "copies": [], "others": [], "copy_source": []}
    for name in REF_PHOTOS:
        img = _photo(name)
        img.save(root / "ref" / f"{name}.png")
        out["ref"].append(f"ref/{name}.png")
        for j, (edit, copy) in enumerate(edited_copies(img).items()):
            ext = "jpg" if j % 2 else "png"
            rel = f"pool/{name}_{edit}.{ext}"
            copy.save(root / rel, **({"quality": 50 + 10 * (j % 5)} if ext == "jpg" else {}))
            out["copies"].append(rel)
            out["copy_source"].append(f"ref/{name}.png")
    for name in OTHER_PHOTOS:
        rel = f"pool/{name}.png"
        _photo(name).save(root / rel)
        out["others"].append(rel)
    return out
