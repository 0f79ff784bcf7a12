"""The reference's transfer comparison on a real new task: is a distilled backbone a better starting point than a
backbone of the same architecture trained from labels?

Source task: Fashion-MNIST classes 0-4 (T-shirt, Trouser, Pullover, Dress, Coat). A ResNet-20 teacher and a
ResNet-8 baseline are trained on ``--source-labels`` labeled images per class; the ResNet-8 student is distilled
from the teacher (DistillationDMLLoss, no labels) on those images plus an unlabeled pool of the same classes.
Target task: classes 5-9 (Sandal, Shirt, Sneaker, Bag, Ankle boot) with ``--target-labels`` labels per class.
Each backbone (and a random initialisation, for scale) goes through ``ssld transfer`` with its own grid search
(configs/fashion_mnist/transfer.yaml; chosen on a split of the target training list), then is tested once on
the target test images.

Run:  .venv/bin/python benchmarks/transfer_demo.py
Measured wall time: 53 min on 2 CPU cores shared with other jobs (load average 7-16); 12 of them are the
transfer grids (3 backbones x 4 settings + 3 final runs).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

SOURCE, TARGET = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]
NORMALIZE = {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.286] * 3, "std": [0.353] * 3, "order": ""}}
TRAIN_OPS = [{"DecodeImage": {"to_rgb": True}}, {"Pad": {"padding": 2}}, {"RandomCrop": {"size": 28}},
             {"RandFlipImage": {"flip_code": 1}}, NORMALIZE]
EVAL_OPS = [{"DecodeImage": {"to_rgb": True}}, {"ResizeImage": {"size": 28}}, NORMALIZE]


def write_split(root: Path, name: str, images: np.ndarray, labels: np.ndarray, classes: list[int],
                start: int, count: int, labeled: bool = True) -> None:
    """PNGs of images ``start .. start+count`` of each class, and ``name.txt`` (labels renumbered 0..k-1)."""
    from ssld.data import write_list

    entries: list[Any] = []
    (root / name).mkdir(parents=True, exist_ok=True)
    for new, c in enumerate(classes):
        for i in np.flatnonzero(labels == c)[start:start + count].tolist():
            rel = f"{name}/{i:05d}.png"
            if not (root / rel).is_file():
                Image.fromarray(images[i]).save(root / rel)
            entries.append((rel, new) if labeled else rel)
    write_list(root / f"{name}.txt", entries)


def prepare(root: Path, args: argparse.Namespace) -> None:
    from ssld.data.fashion_mnist import find_idx_files, read_idx

    files = find_idx_files()
    tx, ty = read_idx(files["train_x"]), read_idx(files["train_y"])
    vx, vy = read_idx(files["test_x"]), read_idx(files["test_y"])
    write_split(root, "source_labeled", tx, ty, SOURCE, 0, args.source_labels)
    write_split(root, "source_pool", tx, ty, SOURCE, args.source_labels, args.source_pool, labeled=False)
    write_split(root, "source_test", vx, vy, SOURCE, 0, args.test_per_class)
    write_split(root, "target_train", tx, ty, TARGET, 0, args.target_labels)
    write_split(root, "target_test", vx, vy, TARGET, 0, args.test_per_class)
    (root / "source_merged.txt").write_text((root / "source_labeled.txt").read_text()
                                            + (root / "source_pool.txt").read_text())


def source_config(root: Path, out: Path, arch: dict, train_list: str, epochs: int, loss: list | None = None,
                  workers: int = 1) -> Any:
    from ssld.config.schema import SSLDConfig

    def split(list_name: str, ops: list, bs: int, shuffle: bool) -> dict:
        return {"dataset": {"image_root": str(root), "cls_label_path": str(root / list_name), "transform_ops": ops},
                "sampler": {"batch_size": bs, "shuffle": shuffle},
                "loader": {"num_workers": workers, "persistent_workers": False}}

    return SSLDConfig.model_validate({
        "Global": {"output_dir": str(out), "epochs": epochs, "image_shape": [3, 28, 28], "seed": 0,
                   "eval_interval": epochs, "save_interval": epochs, "log_interval": 1000},
        "Arch": arch,
        "Loss": {"Train": loss or [{"CELoss": {"weight": 1.0}}]},
        "Optimizer": {"name": "Momentum", "lr": {"name": "Cosine", "learning_rate": 0.1, "warmup_epoch": 1},
                      "regularizer": {"name": "L2", "coeff": 5e-4 if loss is None else 1e-4}},
        "DataLoader": {"Train": split(train_list, TRAIN_OPS, 128, True),
                       "Eval": split("source_test.txt", EVAL_OPS, 500, False)},
    })


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data/fashion_mnist_transfer", help="where the PNGs and lists are written "
                   "(configs/fashion_mnist/transfer.yaml reads this folder)")
    p.add_argument("--out", default="runs/bench/transfer_demo")
    p.add_argument("--source-labels", type=int, default=100, help="labeled images per source class")
    p.add_argument("--source-pool", type=int, default=400, help="unlabeled pool images per source class")
    p.add_argument("--target-labels", type=int, default=20, help="labeled images per target class")
    p.add_argument("--test-per-class", type=int, default=200)
    p.add_argument("--teacher-epochs", type=int, default=15)
    p.add_argument("--epochs", type=int, default=8, help="baseline and distillation epochs")
    p.add_argument("--transfer-epochs", type=int, default=30)
    p.add_argument("--grid", action="append", default=None,
                   help="ssld transfer --grid entries (default: lr 0.03,0.01 x lr_mult none,0.1:0.15:0.2:0.3 x L2 1e-4)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=1, help="DataLoader workers per loader")
    args = p.parse_args()
    grid = args.grid or ["lr=0.03,0.01", "lr_mult=1,0.1:0.15:0.2:0.3", "l2=1e-4"]

    import torch

    from ssld.config import load_config
    from ssld.config.schema import ModelSpec
    from ssld.engine import train
    from ssld.models import create_model, save_safetensors
    from ssld.transfer import run_transfer

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    start = time.perf_counter()
    root, out = Path(args.data), Path(args.out)
    prepare(root, args)
    timings: dict[str, float] = {}

    def timed(name: str, cfg: Any) -> dict:
        t = time.perf_counter()
        report = train(cfg)
        timings[name] = round(time.perf_counter() - t, 1)
        return report

    source: dict[str, dict] = {}
    source["teacher"] = timed("teacher", source_config(root, out / "teacher", {"name": "resnet20", "class_num": 5},
                                                       "source_labeled.txt", args.teacher_epochs, workers=args.workers))
    source["baseline"] = timed("baseline", source_config(root, out / "baseline", {"name": "resnet8", "class_num": 5},
                                                         "source_labeled.txt", args.epochs, workers=args.workers))
    distill_arch = {"name": "DistillationModel", "class_num": 5, "freeze_params_list": [True, False],
                    "models": [{"Teacher": {"name": "resnet20", "pretrained": str(out / "teacher" /
                                                                                  "student.safetensors")}},
                               {"Student": {"name": "resnet8"}}],
                    "infer_model_name": "Student", "teacher_bn_mode": "train"}
    dml = [{"DistillationDMLLoss": {"weight": 1.0, "model_name_pairs": [["Student", "Teacher"]]}}]
    source["distilled"] = timed("distilled", source_config(root, out / "distilled", distill_arch,
                                                           "source_merged.txt", args.epochs, loss=dml,
                                                           workers=args.workers))
    random_init = out / "random_init.safetensors"
    torch.manual_seed(0)
    save_safetensors(create_model(ModelSpec(name="resnet8"), 5).state_dict(), random_init)

    backbones = {"distilled (SSLD, DML on labeled + pool)": out / "distilled" / "student.safetensors",
                 "baseline (labels only)": out / "baseline" / "student.safetensors",
                 "random init (no pretraining)": random_init}
    rows = []
    for (name, weights), tag in zip(backbones.items(), ("distilled", "baseline", "random"), strict=True):
        cfg = load_config("configs/fashion_mnist/transfer.yaml", [
            f"Global.output_dir={out / 'transfer' / tag}", f"Global.epochs={args.transfer_epochs}",
            f"DataLoader.Train.dataset.image_root={root}", f"DataLoader.Eval.dataset.image_root={root}",
            f"DataLoader.Train.dataset.cls_label_path={root / 'target_train.txt'}",
            f"DataLoader.Eval.dataset.cls_label_path={root / 'target_test.txt'}"])
        t = time.perf_counter()
        res = run_transfer(cfg, weights, grid)
        timings[f"transfer {tag}"] = round(time.perf_counter() - t, 1)
        src = source.get(tag, {}).get("top1")
        rows.append({"backbone": name, "source_top1": src, "val_best": max(r["val_top1"] for r in res["grid"]),
                     "chosen": res["chosen_setting"], "test_top1": res["test_top1"], "grid": len(res["grid"])})

    print(f"\nSource: classes 0-4, {args.source_labels} labels/class (+{args.source_pool}/class unlabeled for "
          f"distillation); teacher ResNet-20 top-1 {100 * source['teacher']['top1']:.2f}% on source test.")
    print(f"Target: classes 5-9, {args.target_labels} labels/class, {5 * args.test_per_class} test images; "
          f"{args.transfer_epochs} epochs per run.\n")
    print("| backbone (ResNet-8) | source test top-1 | grid | best val top-1 | chosen setting | target test top-1 |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        src = "-" if r["source_top1"] is None else f"{100 * r['source_top1']:.2f}%"
        print(f"| {r['backbone']} | {src} | {r['grid']} | {100 * r['val_best']:.2f}% | {r['chosen']} | "
              f"**{100 * r['test_top1']:.2f}%** |")
    wall = time.perf_counter() - start
    print(f"\nwall time {wall:.0f} s; {json.dumps(timings)}; torch {torch.__version__}, {args.threads} threads")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"rows": rows, "source": {k: v.get("top1") for k, v in
                                                                           source.items()},
                                                  "timings": timings, "args": vars(args), "wall_s": round(wall, 1)},
                                                 indent=2))


if __name__ == "__main__":
    main()
