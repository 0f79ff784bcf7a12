"""Fashion-MNIST as real PNG files and PaddleClas list files, so the demo walks the same path as ImageNet users.

``export`` writes ``images/{train,test}/NNNNN.png`` (NNNNN = index in the original IDX set) and, under ``out_dir``:
``train_labeled.txt`` (N per class), ``unlabeled.txt`` (the rest of train, labels withheld),
``unlabeled_truth.txt`` (the same with labels, for analysis only), ``val.txt`` (the test set),
``train_full.txt`` (every exported train image, labeled), ``labels.txt`` and ``meta.json``. ``meta.json`` is
written last: a killed export never looks complete, and a finished one with the same parameters is reused.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ssld.data.lists import write_list
from ssld.errors import UserError
from ssld.utils.io import atomic_write_text, write_json

log = logging.getLogger("ssld.data")

DEFAULT_IDX_DIR = "/usr/share/datasets/fashion-mnist"
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_PARTS = {"train_x": "train-images", "train_y": "train-labels", "test_x": "t10k-images", "test_y": "t10k-labels"}
TEACHER_LIST = "train_teacher.txt"  # labeled + teacher-only images (teacher_extra_per_class)
LIST_FILES = ("train_labeled.txt", "unlabeled.txt", "unlabeled_truth.txt", "val.txt", "train_full.txt", "labels.txt")


def find_idx_files(idx_dir: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Locate the four IDX files (``train-images-idx3-ubyte[.gz]`` ...) in ``idx_dir``."""
    d = Path(idx_dir or DEFAULT_IDX_DIR)
    found: dict[str, Path] = {}
    names = sorted(os.listdir(d)) if d.is_dir() else []
    for key, prefix in _PARTS.items():
        match = [n for n in names if n.startswith(prefix) and (d / n).is_file()]
        if match:
            found[key] = d / min(match, key=len)
    if len(found) < len(_PARTS):
        raise UserError(f"Fashion-MNIST IDX files not found in {d}: run `apt-get install -y dataset-fashion-mnist` "
                        "or pass --idx-dir")
    return found


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """An IDX array (unsigned bytes), gzip-compressed or raw."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
        zero, dtype, ndim = data[0:2], data[2], data[3]
        if zero != b"\0\0" or dtype != 0x08:
            raise ValueError("not an unsigned-byte IDX file")
        shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
        return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)
    except (OSError, ValueError, IndexError, EOFError) as e:
        raise UserError(f"{path}: cannot read IDX file: {e}") from None


def _balanced(labels: np.ndarray, per_class: list[int], rng: np.random.Generator) -> np.ndarray:
    """Sorted indices with ``per_class[c]`` random items of each class ``c``."""
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in enumerate(per_class)]
    return np.sort(np.concatenate(chosen))


def _write_pngs(images: np.ndarray, indices: np.ndarray, folder: Path) -> None:
    """One grayscale PNG per image (serial: a thread pool measured no faster, zlib at level 1 is cheap)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in indices.tolist():
        Image.fromarray(images[i]).save(folder / f"{i:05d}.png", compress_level=1)


def _check(labeled_per_class: int, val_size: int | None, pool_size: int | None, n_test: int) -> None:
    if not 1 <= labeled_per_class <= 6000:
        raise UserError(f"--labeled-per-class: must be between 1 and 6000, got {labeled_per_class}")
    if val_size is not None and not len(CLASSES) <= val_size <= n_test:
        raise UserError(f"--val-size: must be between {len(CLASSES)} and {n_test}, got {val_size}")
    if pool_size is not None and pool_size < 0:
        raise UserError(f"--pool-size: must be 0 or more, got {pool_size}")


def export(out_dir: str | os.PathLike[str], labeled_per_class: int, seed: int = 0,
           idx_dir: str | os.PathLike[str] | None = None, val_size: int | None = None,
           pool_size: int | None = None, teacher_extra_per_class: int = 0) -> dict[str, Any]:
    """Write the PNGs and list files (see the module docstring); returns the contents of ``meta.json``.

    ``labeled_per_class`` train images per class become the labeled set (chosen by ``seed``); the others form
    the unlabeled pool (a random ``pool_size`` of them if given). ``val_size`` takes a class-balanced subset of
    the 10k test images. ``teacher_extra_per_class`` more labeled images per class, from the train images left
    outside both, go with the labeled set into ``train_teacher.txt`` (a teacher that has seen more data).
    Nothing is rewritten when ``meta.json`` already records the same parameters.
    """
    out = Path(out_dir)
    params: dict[str, Any] = {"labeled_per_class": labeled_per_class, "seed": seed, "val_size": val_size,
                              "pool_size": pool_size}
    if teacher_extra_per_class:
        params["teacher_extra_per_class"] = teacher_extra_per_class
    meta_path = out / "meta.json"
    if meta_path.is_file() and all((out / f).is_file() for f in LIST_FILES):
        try:
            old = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            old = {}
        if old.get("params") == params:
            log.info("%s: Fashion-MNIST already exported with these parameters; nothing rewritten", out)
            return old
    files = find_idx_files(idx_dir)
    train_x, train_y, test_x, test_y = (read_idx(files[k]) for k in ("train_x", "train_y", "test_x", "test_y"))
    _check(labeled_per_class, val_size, pool_size, len(test_y))
    rng = np.random.default_rng(seed)
    labeled = _balanced(train_y, [labeled_per_class] * len(CLASSES), rng)
    rest = np.setdiff1d(np.arange(len(train_y)), labeled)
    if pool_size is not None:
        if pool_size > len(rest):
            raise UserError(f"--pool-size: {pool_size} is more than the {len(rest)} unlabeled train images")
        rest = np.sort(rng.choice(rest, size=pool_size, replace=False))
    extra = np.array([], dtype=np.int64)
    if teacher_extra_per_class:
        left = np.setdiff1d(np.setdiff1d(np.arange(len(train_y)), labeled), rest)
        extra = left[_balanced(train_y[left], [teacher_extra_per_class] * len(CLASSES), rng)]
        if len(extra) < teacher_extra_per_class * len(CLASSES):
            raise UserError(f"teacher_extra_per_class: {teacher_extra_per_class} per class is more than the train "
                            "images left outside the labeled set and the pool (lower it or pool_size)")
    if val_size is None:
        val = np.arange(len(test_y))
    else:
        per = [val_size // len(CLASSES) + (c < val_size % len(CLASSES)) for c in range(len(CLASSES))]
        val = _balanced(test_y, per, rng)

    meta_path.unlink(missing_ok=True)  # from here on the directory is incomplete until meta.json is back
    train_all = np.union1d(labeled, rest)
    _write_pngs(train_x, np.union1d(train_all, extra), out / "images" / "train")
    _write_pngs(test_x, val, out / "images" / "test")

    def rel(split: str, i: int) -> str:
        return f"images/{split}/{i:05d}.png"

    write_list(out / "train_labeled.txt", [(rel("train", i), int(train_y[i])) for i in labeled])
    if teacher_extra_per_class:
        write_list(out / TEACHER_LIST, [(rel("train", i), int(train_y[i]))
                                               for i in np.concatenate([labeled, extra])])
    write_list(out / "unlabeled.txt", [rel("train", i) for i in rest])
    write_list(out / "unlabeled_truth.txt", [(rel("train", i), int(train_y[i])) for i in rest])
    write_list(out / "val.txt", [(rel("test", i), int(test_y[i])) for i in val])
    write_list(out / "train_full.txt", [(rel("train", i), int(train_y[i])) for i in train_all])
    atomic_write_text(out / "labels.txt", "".join(c + "\n" for c in CLASSES))
    meta = {
        "dataset": "fashion-mnist",
        "params": params,
        "counts": {"train_labeled": len(labeled), "unlabeled": len(rest), "val": len(val),
                   "train_full": len(train_all), **({"teacher_extra": len(extra)} if len(extra) else {})},
        "classes": list(CLASSES),
        "image_root": ".",
        "source": {k: str(v) for k, v in files.items()},
    }
    write_json(meta_path, meta)
    return meta
