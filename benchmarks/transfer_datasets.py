"""Two datasets nobody tuned the recipe for, as PNG files and list files for `ssld init`:

- ``digits32``: scikit-learn's 8x8 handwritten digits (1,797 images) upsampled to 32 px and coloured (a random ink
  colour on a dark random background per image): 20 labeled images per class, 500 val, the other 1,097 unlabeled,
  each coloured 6 times (6,582 pool images: 1,797 digits are few for a pool).
- ``fmnist32``: Fashion-MNIST re-coloured the same way and resized to 32 px: 50 labeled images per class, a pool
  of 6,000 train images, 2,000 test images as val.

    python benchmarks/transfer_datasets.py digits32 --out data/digits32      # needs scikit-learn's digits
    python benchmarks/transfer_datasets.py fmnist32 --out data/fmnist32      # Fashion-MNIST IDX files
    ssld init --data data/digits32 --out runs/digits32.yaml && ssld pipeline -c runs/digits32.yaml
    python benchmarks/transfer_datasets.py fmnist32 --out data/fmnist32 --teacher-extra 200   # + teacher_extra.txt

Files that exist are left as they are (the same seed paints the same colours), so adding ``--teacher-extra`` to
a built folder writes only the teacher's images and list.

The digits come from ``sklearn.datasets.load_digits`` or, without scikit-learn installed, from the
``digits.csv.gz`` its wheel ships (``--digits-csv``: ``pip download scikit-learn --no-deps`` and unzip it).
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np
from PIL import Image


def _digits(csv: str | None) -> tuple[np.ndarray, np.ndarray]:
    if csv is None:
        from sklearn.datasets import load_digits

        d = load_digits()
        return (d.images * (255 / 16)).astype(np.uint8), d.target.astype(int)
    with gzip.open(csv, "rt") as f:
        rows = np.loadtxt(f, delimiter=",")
    return (rows[:, :64].reshape(-1, 8, 8) * (255 / 16)).astype(np.uint8), rows[:, 64].astype(int)


def _fashion(idx_dir: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from ssld.data.fashion_mnist import read_idx

    d = Path(idx_dir)
    return (read_idx(d / "train-images-idx3-ubyte.gz"), read_idx(d / "train-labels-idx1-ubyte.gz").astype(int),
            read_idx(d / "t10k-images-idx3-ubyte.gz"), read_idx(d / "t10k-labels-idx1-ubyte.gz").astype(int))


def colour(gray: np.ndarray, size: int, rng: np.random.Generator) -> Image.Image:
    """A gray image resized to ``size`` px (bicubic) and painted: ink colour x intensity over a dark background."""
    g = np.asarray(Image.fromarray(gray).resize((size, size), Image.BICUBIC), dtype=np.float32) / 255.0
    ink, back = rng.uniform(0.4, 1.0, 3), rng.uniform(0.0, 0.3, 3)
    rgb = g[..., None] * ink + (1 - g[..., None]) * back
    return Image.fromarray((rgb * 255).round().clip(0, 255).astype(np.uint8))


def write(out: Path, name: str, images: np.ndarray, labels: np.ndarray | None, size: int,
          rng: np.random.Generator) -> None:
    (out / name).mkdir(parents=True, exist_ok=True)
    lines = []
    for i, img in enumerate(images):
        rel = f"{name}/{i:05d}.png"
        painted = colour(img, size, rng)  # drawn even when the file exists: the colours stay the same
        if not (out / rel).is_file():
            painted.save(out / rel, compress_level=1)
        lines.append(rel if labels is None else f"{rel} {labels[i]}")
    list_name = {"labeled": "train_labeled", "pool": "unlabeled", "val": "val", "teacher": "teacher_extra"}[name]
    (out / f"{list_name}.txt").write_text("\n".join(lines) + "\n")


def per_class(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:n] for c in np.unique(labels)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", choices=["digits32", "fmnist32"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--digits-csv", help="sklearn's digits.csv.gz (when scikit-learn is not installed)")
    ap.add_argument("--idx-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--teacher-extra", type=int, default=0,
                    help="fmnist32: also write teacher_extra.txt, N labeled train images per class outside the "
                         "labeled set and the pool, for a teacher that knows more than the student "
                         "(ssld pipeline ... -o data.teacher_labeled=DIR/teacher_extra.txt)")
    args = ap.parse_args()
    rng, out = np.random.default_rng(args.seed), Path(args.out)
    if args.dataset == "digits32":
        x, y = _digits(args.digits_csv)
        order = rng.permutation(len(y))
        val = order[:500]
        rest = order[500:]
        lab = rest[per_class(y[rest], 20, rng)]
        pool = np.repeat(np.setdiff1d(rest, lab), 6)  # each unlabeled digit in 6 colourings
        parts = {"labeled": (x[lab], y[lab]), "pool": (x[pool], None), "val": (x[val], y[val])}
        size = 32
    else:
        xt, yt, xv, yv = _fashion(args.idx_dir)
        lab = per_class(yt, 50, rng)
        pool = rng.permutation(np.setdiff1d(np.arange(len(yt)), lab))[:6000]
        val = rng.permutation(len(yv))[:2000]
        parts = {"labeled": (xt[lab], yt[lab]), "pool": (xt[pool], None), "val": (xv[val], yv[val])}
        size = 32
        if args.teacher_extra:  # its own generator: the other parts are the same with or without it
            t_rng = np.random.default_rng(args.seed + 1)
            rest = np.setdiff1d(np.arange(len(yt)), np.concatenate([lab, pool]))
            extra = rest[per_class(yt[rest], args.teacher_extra, t_rng)]
            write(out, "teacher", xt[extra], yt[extra], size, t_rng)
    for name, (imgs, labels) in parts.items():
        write(out, name, imgs, labels, size, rng)
    print({k: len(v[0]) for k, v in parts.items()}, "->", out)


if __name__ == "__main__":
    main()
