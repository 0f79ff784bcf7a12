"""FixRes: evaluation at another test resolution, and the finetune that changes only the classifier's parameters
(and the BN running statistics only when recalibration is on), on real Fashion-MNIST images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers.configs import NORMALIZE, RESIZED_EVAL_OPS, make_config, split_config
from helpers.fashion_mnist import write_fashion_pngs, write_list
from safetensors.torch import load_file

from ssld.config.schema import ModelSpec
from ssld.data import build_loader
from ssld.engine.fixres import (
    fixres_size,
    fixres_split,
    recalibrate_bn,
    resolved,
    run_fixres,
)
from ssld.models import create_model, save_safetensors

TRAIN_OPS = [{"DecodeImage": {"to_rgb": True}},
             {"RandCropImage": {"size": 28, "scale": [0.35, 1.0]}},
             {"RandFlipImage": {"flip_code": 1}}, NORMALIZE]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("fixres")
    train = write_list(root / "train.txt", write_fashion_pngs(root, 12, split="train"))
    val = write_list(root / "val.txt", write_fashion_pngs(root, 6, split="test"))
    torch.manual_seed(0)
    model = create_model(ModelSpec(name="resnet8"), 10)
    weights = root / "start.safetensors"
    save_safetensors(model.state_dict(), weights)
    return {"root": root, "train": train, "val": val, "weights": weights}


def fixres_config(data: dict, out: Path, bn_recalibrate: bool):
    return make_config(
        out, {"name": "resnet8", "class_num": 10},
        eval_split=split_config(data["root"], data["val"], RESIZED_EVAL_OPS, batch_size=32),
        train_split=split_config(data["root"], data["train"], TRAIN_OPS, batch_size=24, shuffle=True),
        FixRes={"enabled": True, "bn_recalibrate": bn_recalibrate, "epochs": 2, "recalibrate_batches": 3},
        Optimizer={"name": "Momentum", "lr": {"name": "Cosine", "learning_rate": 0.05}},
        Global={"pretrained_model": str(data["weights"])},
    )


def test_sizes_default_to_one_point_one_five_of_the_eval_crop(data: dict, tmp_path: Path) -> None:
    assert fixres_size(224) == 258 and fixres_size(28) == 32 and fixres_size(320, 1.0) == 320
    fx = resolved(fixres_config(data, tmp_path, True))
    assert (fx.train_size, fx.test_size) == (28, 32)


def test_train_and_eval_use_the_test_preprocessing_at_the_new_size(data: dict, tmp_path: Path) -> None:
    cfg = fixres_config(data, tmp_path, True)
    split = fixres_split(cfg, cfg.DataLoader.Train)
    assert split.dataset.transform_ops == cfg.DataLoader.Eval.dataset.transform_ops
    assert split.dataset.cls_label_path == str(data["train"])
    loader, _ = build_loader(split, train=True, seed=0, image_size=32)
    batch = next(iter(loader))
    assert batch["image"].shape[1:] == (3, 32, 32)
    again = next(iter(build_loader(split, train=True, seed=0, image_size=32)[0]))
    torch.testing.assert_close(batch["image"], again["image"])  # no random augmentation left


@pytest.mark.parametrize("bn_recalibrate", [True, False])
def test_finetune_changes_only_the_classifier(data: dict, tmp_path: Path, bn_recalibrate: bool) -> None:
    cfg = fixres_config(data, tmp_path, bn_recalibrate)
    report = run_fixres(cfg)
    before = load_file(str(data["weights"]))
    after = load_file(str(tmp_path / "student.safetensors"))
    assert before.keys() == after.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    params = {n for n, _ in create_model(ModelSpec(name="resnet8"), 10).named_parameters()}
    assert {k for k in changed if k in params} == {"fc.weight", "fc.bias"}
    stats = {k for k in before if k.endswith(("running_mean", "running_var"))}
    if bn_recalibrate:
        assert stats <= changed and report["bn_batches"] == 3
    else:
        assert not (stats & changed) and "bn_batches" not in report
    assert report["trainable"] == ["fc.bias", "fc.weight"] and len(report["train_loss"]) == 2
    for key in ("before_at_train_size", "before_at_test_size", "after_finetune"):
        assert report[key]["count"] == 60
    assert (tmp_path / "fixres_report.json").is_file()


def test_recalibration_is_the_exact_batch_average() -> None:
    model = create_model(ModelSpec(name="resnet8"), 10)
    batches = [{"image": torch.randn(8, 3, 32, 32) * (i + 1)} for i in range(2)]
    recalibrate_bn(model, batches, max_batches=5)
    with torch.no_grad():
        means = [model.conv1(b["image"]).mean(dim=(0, 2, 3)) for b in batches]
    torch.testing.assert_close(model.bn1.running_mean, (means[0] + means[1]) / 2, rtol=1e-4, atol=1e-5)
    assert model.bn1.momentum == 0.1 and model.training


def test_ssld_train_runs_the_fixres_finetune_when_enabled(data: dict, tmp_path: Path) -> None:
    from ssld.engine import train

    report = train(fixres_config(data, tmp_path, bn_recalibrate=False))
    assert report["trainable"] == ["fc.bias", "fc.weight"]
    assert (tmp_path / "fixres_report.json").is_file()


def test_finetune_runs_on_the_engine_loop_and_resumes(data: dict, tmp_path: Path) -> None:
    cfg = fixres_config(data, tmp_path, bn_recalibrate=True)
    first = run_fixres(cfg)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in rows if r["kind"] == "epoch"]
    assert [r["train_loss"] for r in epochs] == first["train_loss"] and first["steps"] == 2 * 5  # 120 images / 24
    assert epochs[-1]["top1"] == first["top1"] and first["precision"] == "float32"
    latest = tmp_path / "checkpoints" / "latest.pt"
    resumed = run_fixres(cfg.model_copy(update={"Global": cfg.Global.model_copy(update={"checkpoints": str(latest)})}))
    # the finished finetune's checkpoint carries the recalibrated statistics and what they scored
    for key in ("bn_batches", "after_bn_recalibration", "after_finetune", "train_loss", "steps"):
        assert resumed[key] == first[key], key
