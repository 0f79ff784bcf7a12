"""Real Fashion-MNIST images on disk for the tests, read from the installed IDX files (the same location
``ssld data fashion-mnist`` reads: ``ssld.data.fashion_mnist.DEFAULT_IDX_DIR``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ssld.data.fashion_mnist import (
    CLASSES,
    DEFAULT_IDX_DIR,
    export,
    find_idx_files,
    read_idx,
)

IDX_DIR = Path(DEFAULT_IDX_DIR)


def fmnist(n: int, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` images (uint8 [n, 28, 28]) and labels (int64) of the ``train`` or ``test`` split."""
    files = find_idx_files(IDX_DIR)
    images, labels = read_idx(files[f"{split}_x"])[:n], read_idx(files[f"{split}_y"])[:n]
    return images.copy(), labels.astype(np.int64)


def export_fashion_mnist(out: Path, labeled_per_class: int = 30, val_size: int = 200, pool_size: int = 100) -> Path:
    """Real Fashion-MNIST PNGs and lists (``train_labeled.txt``, ``unlabeled.txt``, ``val.txt``) under ``out``."""
    export(out, labeled_per_class=labeled_per_class, seed=0, idx_dir=IDX_DIR, val_size=val_size, pool_size=pool_size)
    return out


def write_fashion_pngs(folder: Path, per_class: int, classes: list[int] | None = None, split: str = "test",
                       offset: int = 0, relabel: bool = False) -> list[tuple[str, int]]:
    """Write ``per_class`` real Fashion-MNIST images of each class as PNGs; return ``(relative path, label)``.

    ``offset`` skips that many images per class (disjoint subsets); ``relabel`` numbers ``classes`` 0..k-1.
    """
    files = find_idx_files(IDX_DIR)
    images = read_idx(files[f"{split}_x"])
    labels = read_idx(files[f"{split}_y"])
    classes = list(range(len(CLASSES))) if classes is None else classes
    out: list[tuple[str, int]] = []
    folder.mkdir(parents=True, exist_ok=True)
    for new, c in enumerate(classes):
        for i in np.flatnonzero(labels == c)[offset:offset + per_class].tolist():
            name = f"{split}_{i:05d}.png"
            Image.fromarray(images[i]).save(folder / name)
            out.append((name, new if relabel else c))
    return out


def write_fmnist_list(root: Path, n: int, name: str = "pool.txt") -> Path:
    """Write the first ``n`` test images as PNGs under ``root/img`` and an unlabeled list of them."""
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


def write_list(path: Path, items: list[tuple[str, int]]) -> Path:
    """A labeled list file: one ``path label`` line per item."""
    path.write_text("".join(f"{p} {label}\n" for p, label in items))
    return path
