"""Shared helpers for the engine tests: a small real Fashion-MNIST export and config files for it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
IDX_DIR = Path("/usr/share/datasets/fashion-mnist")
NORMALIZE = {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.286] * 3, "std": [0.353] * 3, "order": ""}}


def export_fashion_mnist(out: Path, labeled_per_class: int = 30, val_size: int = 200, pool_size: int = 100) -> Path:
    """Real Fashion-MNIST PNGs and lists (``train_labeled.txt``, ``unlabeled.txt``, ``val.txt``) under ``out``."""
    from ssld.data.fashion_mnist import export

    export(out, labeled_per_class=labeled_per_class, seed=0, val_size=val_size, pool_size=pool_size)
    return out


def split(data: Path, list_name: str, batch_size: int, train: bool, workers: int = 0) -> dict[str, Any]:
    ops: list[Any] = [{"DecodeImage": {"to_rgb": True}}]
    if train:
        ops += [{"RandCropImage": {"size": 28, "scale": [0.6, 1.0]}}, {"RandFlipImage": {"flip_code": 1}}]
    ops.append(NORMALIZE)
    return {
        "dataset": {"name": "ImageNetDataset", "image_root": str(data), "cls_label_path": str(data / list_name),
                    "transform_ops": ops},
        "sampler": {"batch_size": batch_size, "drop_last": False, "shuffle": train},
        "loader": {"num_workers": workers, "persistent_workers": workers > 0},
    }


def supervised_config(data: Path, out: Path, **global_overrides: Any) -> dict[str, Any]:
    """A small teacher-style config: CIFAR ResNet-8, SGD momentum, cosine with warmup, 28 px."""
    return {
        "Global": {"output_dir": str(out), "epochs": 2, "image_shape": [3, 28, 28], "seed": 0,
                   "log_interval": 2, "device": "cpu", **global_overrides},
        "Arch": {"name": "cifar_resnet8", "class_num": 10},
        "Loss": {"Train": [{"CELoss": {"weight": 1.0}}]},
        "Optimizer": {"name": "Momentum", "momentum": 0.9,
                      "lr": {"name": "Cosine", "learning_rate": 0.1, "warmup_epoch": 1},
                      "regularizer": {"name": "L2", "coeff": 5e-4}},
        "DataLoader": {"Train": split(data, "train_labeled.txt", 32, True),
                       "Eval": split(data, "val.txt", 64, False)},
    }


def distill_config(data: Path, out: Path, teacher_weights: str | None, bn_mode: str = "train") -> dict[str, Any]:
    """Teacher (frozen ResNet-8) -> student (ResNet-8) with symmetric KL on labeled + unlabeled images."""
    cfg = supervised_config(data, out, epochs=1)
    cfg["Arch"] = {
        "name": "DistillationModel", "class_num": 10, "teacher_bn_mode": bn_mode,
        "models": [{"Teacher": {"name": "cifar_resnet8", "pretrained": teacher_weights or False}},
                   {"Student": {"name": "cifar_resnet8"}}],
        "freeze_params_list": [True, False], "infer_model_name": "Student",
    }
    cfg["Loss"] = {"Train": [{"DistillationDMLLoss": {"weight": 1.0, "model_name_pairs": [["Student", "Teacher"]]}},
                             {"DistillationGTCELoss": {"weight": 1.0, "model_names": ["Student"]}}]}
    return cfg


def write_config(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m ssld ARGS`` in a subprocess with one intra-op thread."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "ssld", *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout, cwd=ROOT, check=False)
