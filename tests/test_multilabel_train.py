"""A multi-label distillation config in PaddleClas's PULC attribute style (written here): it is checked, trains
a short run that keeps its best checkpoint by mA, evaluates, and its inconsistent variants are one-line errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from ssld.cli import main
from ssld.config import load_config
from ssld.errors import UserError

NORM = {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                           "order": ""}}
TRAIN_OPS = [{"DecodeImage": {"to_rgb": True, "channel_first": False}}, {"ResizeImage": {"size": [16, 16]}},
             {"TimmAutoAugment": {"prob": 0.5, "config_str": "rand-m9-mstd0.5-inc1", "interpolation": "bicubic",
                                  "img_size": [16, 16]}},
             {"Padv2": {"size": [20, 20], "pad_mode": 1, "fill_value": 0}}, {"RandomCropImage": {"size": [16, 16]}},
             {"RandFlipImage": {"flip_code": 1}}, NORM,
             {"RandomErasing": {"EPSILON": 0.5, "sl": 0.02, "sh": "1.0/3.0", "r1": 0.3, "attempt": 10,
                                "use_log_aspect": True, "mode": "pixel"}}]
EVAL_OPS = [{"DecodeImage": {"to_rgb": True, "channel_first": False}}, {"ResizeImage": {"size": [16, 16]}}, NORM]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 training and 6 eval images; attribute 0 is 'red', 1 'bright', 2 random; a few unknown (-1) entries."""
    root = tmp_path_factory.mktemp("attr")
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("val", 6)):
        lines = []
        for i in range(n):
            red, bright = int(rng.integers(0, 2)), int(rng.integers(0, 2))
            img = np.full((18, 14, 3), 60 + 120 * bright, dtype=np.uint8)
            img[..., 0] = 230 if red else 20
            Image.fromarray(img).save(root / f"{split} {i}.png")
            labels = [red, bright, int(rng.integers(0, 2))]
            if split == "train" and i % 5 == 4:
                labels[2] = -1
            lines.append(f"{split} {i}.png\t{','.join(map(str, labels))}")
        (root / f"{split}_list.txt").write_text("\n".join(lines) + "\n")
    return root


def _split(data: Path, name: str, ops: list[Any], train: bool) -> dict[str, Any]:
    return {"dataset": {"name": "MultiLabelDataset", "image_root": str(data),
                        "cls_label_path": str(data / f"{name}_list.txt"), "label_ratio": True,
                        "transform_ops": copy.deepcopy(ops)},
            "sampler": {"name": "DistributedBatchSampler", "batch_size": 4, "drop_last": train, "shuffle": train},
            "loader": {"num_workers": 0, "use_shared_memory": True}}


def pulc_style(data: Path, out: Path) -> dict[str, Any]:
    """The shape of PaddleClas's PULC attribute distillation configs, at 16 px with tiny networks."""
    return {
        "Global": {"output_dir": str(out), "device": "cpu", "epochs": 2, "image_shape": [3, 16, 16], "seed": 0,
                   "eval_during_train": True, "eval_interval": 1, "use_multilabel": True, "log_interval": 1},
        "Arch": {"name": "DistillationModel", "class_num": 3, "pretrained_list": None,
                 "freeze_params_list": [True, False], "use_sync_bn": True, "infer_model_name": "Student",
                 "models": [{"Teacher": {"name": "cifar_resnet8", "class_num": 3}},
                            {"Student": {"name": "cifar_resnet8", "class_num": 3}}]},
        "Loss": {"Train": [{"DistillationMultiLabelLoss": {"weight": 1.0, "model_names": ["Student"],
                                                           "weight_ratio": True, "size_sum": True}},
                           {"DistillationDMLLoss": {"weight": 1.0, "weight_ratio": True,
                                                    "sum_across_class_dim": False,
                                                    "model_name_pairs": [["Student", "Teacher"]]}}],
                 "Eval": [{"MultiLabelLoss": {"weight": 1.0, "weight_ratio": True, "size_sum": True}}]},
        "Optimizer": {"name": "Momentum", "momentum": 0.9, "lr": {"name": "Cosine", "learning_rate": 0.05,
                                                                  "warmup_epoch": 1},
                      "regularizer": {"name": "L2", "coeff": 0.0005}},
        "DataLoader": {"Train": _split(data, "train", TRAIN_OPS, True), "Eval": _split(data, "val", EVAL_OPS, False)},
        "Metric": {"Eval": [{"ATTRMetric": None}]},
    }


def _write(cfg: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_check_builds_and_steps(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(pulc_style(data, tmp_path / "out"), tmp_path / "attr.yaml")
    assert main(["check", "-c", str(path)]) == 0
    assert "ok:" in capsys.readouterr().out


def test_short_distillation_run_keeps_the_best_mA(data: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    path = _write(pulc_style(data, out), tmp_path / "attr.yaml")
    assert main(["train", "-c", str(path)]) == 0
    report = json.loads((out / "train_report.json").read_text())
    assert report["count"] == 6 and 0.0 <= report["mA"] <= 1.0 and "top1" not in report
    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
              if json.loads(line)["kind"] == "epoch"]
    assert len(epochs) == 2 and all("mA" in row and "instance_f1" in row for row in epochs)
    assert report["best_mA"] == pytest.approx(max(row["mA"] for row in epochs))
    assert (out / "checkpoints" / "best.pt").is_file()
    printed = json.loads(capsys.readouterr().out.splitlines()[-2])
    assert printed["best_mA"] == report["best_mA"]

    assert main(["eval", "-c", str(path), "--weights", str(out / "student.safetensors")]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith(f"mA {report['mA']:.4f}") and "(6 images)" in line


def _refused(data: Path, tmp_path: Path, edit: Any) -> str:
    cfg = pulc_style(data, tmp_path / "out")
    edit(cfg)
    with pytest.raises(UserError) as e:
        load_config(_write(cfg, tmp_path / "bad.yaml"))
    return str(e.value)


def test_single_label_loss_on_multi_hot_labels_is_refused(data: Path, tmp_path: Path) -> None:
    msg = _refused(data, tmp_path, lambda c: c["Loss"]["Train"].append(
        {"DistillationGTCELoss": {"weight": 1.0, "model_names": ["Student"]}}))
    assert "Loss.Train[2].DistillationGTCELoss: needs one class per image" in msg and "bad.yaml:" in msg


def test_weight_ratio_needs_label_ratio(data: Path, tmp_path: Path) -> None:
    def edit(c: dict[str, Any]) -> None:
        c["DataLoader"]["Train"]["dataset"]["label_ratio"] = False

    msg = _refused(data, tmp_path, edit)
    assert "Loss.Train[0].DistillationMultiLabelLoss.weight_ratio: needs the positive ratios" in msg


def test_label_ratio_only_on_multilabel_lists(data: Path, tmp_path: Path) -> None:
    def edit(c: dict[str, Any]) -> None:
        c["DataLoader"]["Eval"]["dataset"]["name"] = "ImageNetDataset"

    assert "DataLoader.Eval.dataset.label_ratio: only MultiLabelDataset reads it" in _refused(data, tmp_path, edit)


def test_mixup_and_soft_labels_are_not_supported(data: Path, tmp_path: Path) -> None:
    def mixup(c: dict[str, Any]) -> None:
        c["DataLoader"]["Train"]["dataset"]["batch_transform_ops"] = [{"MixupOperator": {"alpha": 0.2}}]

    def soft(c: dict[str, Any]) -> None:
        c["DataLoader"]["Train"]["dataset"]["soft_labels"] = "store"

    assert "batch_transform_ops: not supported with MultiLabelDataset" in _refused(data, tmp_path, mixup)
    assert "soft_labels: not supported with MultiLabelDataset" in _refused(data, tmp_path, soft)


def test_bad_attr_threshold_names_its_line(data: Path, tmp_path: Path) -> None:
    msg = _refused(data, tmp_path, lambda c: c["Metric"].update(Eval=[{"ATTRMetric": {"threshold": 2}}]))
    assert "Metric.Eval" in msg and "must be a number between 0 and 1, got 2" in msg


def test_retrieval_datasets_are_not_supported(data: Path, tmp_path: Path) -> None:
    def edit(c: dict[str, Any]) -> None:
        c["DataLoader"]["Train"]["dataset"]["name"] = "Market1501"

    msg = _refused(data, tmp_path, edit)
    assert "dataset.name: a PaddleClas dataset ssld does not support" in msg and "'Market1501'" in msg
