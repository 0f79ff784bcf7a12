"""Transform op lists and small training configs (28 px, Fashion-MNIST statistics) for the tests, and a writer
that turns a config into the YAML file the CLI reads."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from ssld.config.schema import SSLDConfig

NORMALIZE = {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.286] * 3, "std": [0.353] * 3, "order": ""}}
DECODE = {"DecodeImage": {"to_rgb": True}}
EVAL_OPS: list[Any] = [DECODE, NORMALIZE]  # no crop or resize: images used as they are
RESIZED_EVAL_OPS: list[Any] = [DECODE, {"ResizeImage": {"size": 28}}, NORMALIZE]
PAD_CROP_OPS: list[Any] = [DECODE, {"Pad": {"padding": 2}}, {"RandomCrop": {"size": 28}},
                           {"RandFlipImage": {"flip_code": 1}}, NORMALIZE]  # the CIFAR recipe (numpy fast path)
RAND_CROP_OPS: list[Any] = [DECODE, {"RandCropImage": {"size": 28, "scale": [0.6, 1.0]}},
                            {"RandFlipImage": {"flip_code": 1}}, NORMALIZE]
LABEL_OPS: list[Any] = [{"NormalizeImage": {"scale": 0.00392156862745098, "mean": [0.286] * 3, "std": [0.353] * 3}}]

PAIR = [["Student", "Teacher"]]  # model_name_pairs of a two-model distillation loss
NAMES = ["Student", "Teacher"]  # model_names of the same

# The reference document's Arch block for its MobileNetV3 example, as written (distillation_en.md).
REFERENCE_ARCH: dict[str, Any] = {
    "name": "DistillationModel",
    "pretrained_list": None,
    "freeze_params_list": [True, False],
    "models": [
        {"Teacher": {"name": "MobileNetV3_large_x1_0", "pretrained": True, "use_ssld": True}},
        {"Student": {"name": "MobileNetV3_small_x1_0", "pretrained": False}},
    ],
    "infer_model_name": "Student",
}


def split_config(root: Path, list_file: Path, ops: list[Any], batch_size: int = 64, shuffle: bool = False,
                 workers: int = 0) -> dict[str, Any]:
    """A ``DataLoader`` split over a list file (no dropped last batch); ``ops`` is copied, so a test may edit
    the result freely."""
    return {"dataset": {"name": "ImageNetDataset", "image_root": str(root), "cls_label_path": str(list_file),
                        "transform_ops": copy.deepcopy(ops)},
            "sampler": {"batch_size": batch_size, "drop_last": False, "shuffle": shuffle},
            "loader": {"num_workers": workers, "persistent_workers": workers > 0}}


def split(data: Path, list_name: str, batch_size: int, train: bool, workers: int = 0) -> dict[str, Any]:
    """A split over ``data/list_name``: random crops and flips when ``train``, shuffled."""
    return split_config(data, data / list_name, RAND_CROP_OPS if train else EVAL_OPS, batch_size, train, workers)


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


def make_config(out_dir: Path, arch: dict[str, Any], eval_split: dict | None = None, train_split: dict | None = None,
                **sections: Any) -> SSLDConfig:
    """A validated config for a small-image model (28 px, Fashion-MNIST normalisation); a ``Global`` entry in
    ``sections`` is merged into the defaults."""
    if eval_split is None:
        eval_split = {"dataset": {"image_root": str(out_dir), "cls_label_path": str(out_dir / "none.txt"),
                                  "transform_ops": RESIZED_EVAL_OPS}}
    glob = {"output_dir": str(out_dir), "image_shape": [3, 28, 28], "device": "cpu", "seed": 0,
            **sections.pop("Global", {})}
    data: dict[str, Any] = {
        "Global": glob,
        "Arch": arch,
        "DataLoader": {"Eval": eval_split, **({"Train": train_split} if train_split else {})},
        **sections,
    }
    return SSLDConfig.model_validate(data)


def label_config(path: Path, arch: dict[str, Any], batch_size: int = 16) -> Path:
    """A config file for ``ssld label``/``dedup`` on 28 px images listed relative to the current folder."""
    split = {"dataset": {"name": "ImageNetDataset", "image_root": ".", "transform_ops": LABEL_OPS},
             "sampler": {"batch_size": batch_size}, "loader": {"num_workers": 0}}
    return write_config(path, {"Global": {"device": "cpu", "image_shape": [3, 28, 28]}, "Arch": arch,
                               "DataLoader": {"Train": split, "Eval": split}})


def write_config(path: Path, cfg: dict[str, Any] | SSLDConfig) -> Path:
    """The config (a dict or a validated config) as the YAML file the CLI reads."""
    data = cfg.model_dump(mode="json", exclude_none=True) if isinstance(cfg, SSLDConfig) else cfg
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
