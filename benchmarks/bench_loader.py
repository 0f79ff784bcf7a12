"""Data loading cost of a 28 px Fashion-MNIST sample: torchvision on PIL vs numpy ops vs a decoded-image cache.

Variants, all on the distill recipe's training ops (Pad 2, RandomCrop 28, RandFlipImage, NormalizeImage):
``torchvision``: the chain ssld used before (v2 Pad/RandomCrop/RandomHorizontalFlip on PIL, then ToImage,
ToDtype, Normalize), PNG decoded on every read; ``array_ops``: ssld's numpy ops and fused normalize (what
``build_transform`` gives now), PNG decoded every read; ``array_ops_cached``: the same with
``dataset.cache_images`` (decoded once), one sample at a time; ``batched``: the cache augmented a batch at a
time (``ssld.data.batched``, what ``cache_images`` gives now). Measured two ways in interleaved rounds:
microseconds per sample in one process as a DataLoader worker runs it (one thread, no RNG save/restore; batched:
a 128-image batch's time / 128), and the DataLoader alone (batch 128, no model) in images per second: 2 workers,
or none for ``batched`` (the loader drops workers for it on a CPU-only machine).

Run: ``PYTHONPATH=src python benchmarks/bench_loader.py [--quick]``
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import common
import torch
from torchvision.transforms import v2

MEAN, STD = 0.286, 0.353  # configs/fashion_mnist: NormalizeImage mean/std


def torchvision_chain() -> v2.Compose:
    """The PIL + torchvision v2 transform ssld built for the recipe before the numpy ops."""
    return v2.Compose([v2.Pad(2), v2.RandomCrop(28), v2.RandomHorizontalFlip(), v2.ToImage(),
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize([MEAN] * 3, [STD] * 3),
                       v2.ToPureTensor()])


def variant(cfg: Any, name: str) -> Any:
    """The training dataset of ``cfg`` set up as ``name``."""
    from ssld.data.loader import build_dataset

    ds = build_dataset(cfg.DataLoader.Train, train=True, seed=0)
    if name == "torchvision":
        ds.transform = torchvision_chain()
    if name in ("array_ops_cached", "batched"):
        ds.cache_decoded()
    ds.batched = None  # one sample at a time unless asked
    if name == "batched":
        ds.use_batched()
    return ds


def per_sample_us(ds: Any, n: int) -> float:
    """Microseconds per ``load`` as a worker runs it (workers skip the caller-RNG save/restore)."""
    import ssld.data.dataset as dataset_module

    init = dataset_module._SeededRNG.__init__

    def as_worker(self: Any, seed: int) -> None:
        init(self, seed)
        self.restore = False

    dataset_module._SeededRNG.__init__ = as_worker
    try:
        t0 = time.perf_counter()
        if ds.batched is not None:
            for start in range(0, n, 128):
                ds.load_batch([((start + i) % len(ds), 1) for i in range(min(128, n - start))])
        for i in range(n if ds.batched is None else 0):
            ds.load((i % len(ds), 1))
        return (time.perf_counter() - t0) / n * 1e6
    finally:
        dataset_module._SeededRNG.__init__ = init


def loader_img_s(ds: Any, batches: int, workers: int) -> float:
    """Images per second of a DataLoader over ``ds`` alone (first batch, the workers' start, not counted)."""
    from ssld.data.dataset import LoaderView, collate

    loader = torch.utils.data.DataLoader(LoaderView(ds), batch_size=128, shuffle=True, num_workers=workers,
                                         collate_fn=collate)
    it = iter(loader)
    next(it)
    t0, images = time.perf_counter(), 0
    for _, batch in zip(range(batches), it, strict=False):
        images += len(batch["image"])
    return images / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    data = common.fashion_mnist(500 if args.quick else 1000)
    cfg = common.load(common.distill_config(data, common.OUT / "loader", None))
    names = ("torchvision", "array_ops", "array_ops_cached", "batched")
    datasets = {n: variant(cfg, n) for n in names}
    rounds = args.rounds or (2 if args.quick else 3)
    samples, batches = (1000, 15) if args.quick else (3000, 30)
    per: dict[str, list[float]] = {n: [] for n in names}
    rate: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:
            per[n].append(per_sample_us(datasets[n], samples))
            rate[n].append(loader_img_s(datasets[n], batches, workers=0 if n == "batched" else 2))
    med = {n: sorted(v)[len(v) // 2] for n, v in per.items()}
    result = {"rounds": rounds, "samples_per_round": samples, "batches_per_round": batches,
              "per_sample_us": per, "loader_img_s": rate,
              "per_sample_us_median": med,
              "per_sample_cost_over_torchvision": {n: med[n] / med["torchvision"] for n in names},
              "machine": common.machine()}
    common.write_result("loader", result)
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
