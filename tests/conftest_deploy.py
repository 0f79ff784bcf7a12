"""Shared helpers for the deployment tests (export, predict, FixRes, transfer): real Fashion-MNIST PNGs written
from the IDX files, small configs built in code, and weights saved as safetensors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ssld.config.schema import SSLDConfig
from ssld.data.fashion_mnist import CLASSES, find_idx_files, read_idx

NORMALIZE = {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.286] * 3, "std": [0.353] * 3, "order": ""}}
EVAL_OPS: list[Any] = [{"DecodeImage": {"to_rgb": True}}, {"ResizeImage": {"size": 28}}, NORMALIZE]


def write_fashion_pngs(folder: Path, per_class: int, classes: list[int] | None = None, split: str = "test",
                       offset: int = 0, relabel: bool = False) -> list[tuple[str, int]]:
    """Write ``per_class`` real Fashion-MNIST images of each class as PNGs; return ``(relative path, label)``.

    ``offset`` skips that many images per class (disjoint subsets); ``relabel`` numbers ``classes`` 0..k-1.
    """
    files = find_idx_files()
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


def write_list(path: Path, items: list[tuple[str, int]]) -> Path:
    path.write_text("".join(f"{p} {label}\n" for p, label in items))
    return path


def split_config(root: Path, list_file: Path, ops: list[Any], batch_size: int = 64, shuffle: bool = False) -> dict:
    return {"dataset": {"name": "ImageNetDataset", "image_root": str(root), "cls_label_path": str(list_file),
                        "transform_ops": ops},
            "sampler": {"batch_size": batch_size, "shuffle": shuffle},
            "loader": {"num_workers": 0, "persistent_workers": False}}


def make_config(out_dir: Path, arch: dict[str, Any], eval_split: dict | None = None, train_split: dict | None = None,
                **sections: Any) -> SSLDConfig:
    """A validated config for a small-image model (28 px, Fashion-MNIST normalisation); a ``Global`` entry in
    ``sections`` is merged into the defaults."""
    if eval_split is None:
        eval_split = {"dataset": {"image_root": str(out_dir), "cls_label_path": str(out_dir / "none.txt"),
                                  "transform_ops": EVAL_OPS}}
    glob = {"output_dir": str(out_dir), "image_shape": [3, 28, 28], "device": "cpu", "seed": 0,
            **sections.pop("Global", {})}
    data: dict[str, Any] = {
        "Global": glob,
        "Arch": arch,
        "DataLoader": {"Eval": eval_split, **({"Train": train_split} if train_split else {})},
        **sections,
    }
    return SSLDConfig.model_validate(data)


def write_config(path: Path, cfg: SSLDConfig) -> Path:
    """The config as YAML, for CLI tests."""
    import yaml

    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json", exclude_none=True), sort_keys=False))
    return path
