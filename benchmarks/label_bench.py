"""Labeling throughput: ``ssld.mining.label`` (shards, top-k, merge, manifest) vs a bare inference loop.

Both run the same model over the same DataLoader settings (ImageListDataset + collate, same batch size and
workers) on Fashion-MNIST test PNGs; the bare loop only does ``model(x)`` under ``torch.inference_mode()``.
Runs alternate (bare, label, bare, label, ...); the best and the median wall-clock rates are compared. With
``--workers 0`` everything runs in one process and its CPU time (``time.process_time``) is also compared, which a
loaded, shared machine disturbs far less than wall time. Target: label img/s >= 0.9 x bare img/s.

Run: ``OMP_NUM_THREADS=2 python benchmarks/label_bench.py [--images 10000] [--arch cifar_resnet20]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from ssld.config.schema import ModelSpec
from ssld.data import ImageListDataset, Sample, build_transform, collate
from ssld.mining.label import label
from ssld.models import create_model

IDX = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
OPS = [{"NormalizeImage": {"scale": 1 / 255, "mean": [0.286] * 3, "std": [0.353] * 3}}]


def images(root: Path, n: int) -> list[str]:
    """``n`` Fashion-MNIST test images as PNG files under ``root`` (written once)."""
    root.mkdir(parents=True, exist_ok=True)
    files = [str(root / f"{i:05d}.png") for i in range(n)]
    if not Path(files[-1]).is_file():
        with gzip.open(IDX) as f:
            arr = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
        for i in range(n):
            Image.fromarray(arr[i % len(arr)]).save(files[i])
    return files


def bare(model: torch.nn.Module, ds: ImageListDataset, batch_size: int, workers: int) -> tuple[float, float]:
    """(wall img/s, process-CPU img/s) of ``model(x)`` over the loader, nothing else."""
    loader = DataLoader(ds, batch_size=batch_size, num_workers=workers, collate_fn=collate)
    t0, c0, n = time.perf_counter(), time.process_time(), 0
    with torch.inference_mode():
        for batch in loader:
            model(batch["image"])
            n += len(batch["index"])
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def ours(model: torch.nn.Module, ds: ImageListDataset, files: list[str], batch_size: int,
         workers: int) -> tuple[float, float]:
    """(wall img/s, process-CPU img/s) of a complete ``label`` run (fresh store each time)."""
    out = Path(tempfile.mkdtemp(prefix="label_bench_"))
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        label(ds, model, out / "store", paths=files, files=files, meta={"teacher": "bench"}, num_classes=10,
              topk=10, batch_size=batch_size, workers=workers, shard_size=4096)
        return len(files) / (time.perf_counter() - t0), len(files) / (time.process_time() - c0)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--arch", default="cifar_resnet20")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="bench_out/mining")
    args = ap.parse_args()
    files = images(Path(args.out) / "label_images", args.images)
    ds = ImageListDataset([Sample(f, -1) for f in files], build_transform(OPS, 28))
    model = create_model(ModelSpec(name=args.arch), 10).eval()
    runs: dict[str, list[tuple[float, float]]] = {"bare": [], "label": []}
    for _ in range(args.repeats):
        runs["bare"].append(bare(model, ds, args.batch_size, args.workers))
        runs["label"].append(ours(model, ds, files, args.batch_size, args.workers))
        print({k: [round(x, 1) for x in v[-1]] for k, v in runs.items()})
    best = {k: max(w for w, _ in v) for k, v in runs.items()}
    median = {k: float(np.median([w for w, _ in v])) for k, v in runs.items()}
    result = {"arch": args.arch, "images": args.images, "batch_size": args.batch_size, "workers": args.workers,
              "torch_threads": torch.get_num_threads(), "runs_wall_and_cpu_img_s": runs, "best_wall_img_s": best,
              "ratio_best_wall": best["label"] / best["bare"], "ratio_median_wall": median["label"] / median["bare"]}
    if args.workers == 0:  # everything runs in this process: its CPU time is the whole cost, load or not
        cpu = {k: max(c for _, c in v) for k, v in runs.items()}
        result["ratio_best_cpu"] = cpu["label"] / cpu["bare"]
    Path(args.out, f"label_bench_w{args.workers}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
