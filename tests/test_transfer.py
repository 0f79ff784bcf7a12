"""ssld transfer: the validation split comes from the new task's training list only, the grid parses and checks
lr_mult lengths, every run starts from the backbone plus a fresh classifier, and the search writes its table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers.configs import RESIZED_EVAL_OPS, make_config, split_config, write_config
from helpers.fashion_mnist import write_fashion_pngs, write_list
from safetensors.torch import load_file

from ssld.cli import main
from ssld.config.schema import ModelSpec
from ssld.data import Sample, read_list
from ssld.deploy.export import export_model
from ssld.errors import UserError
from ssld.models import create_model, save_safetensors
from ssld.transfer.grid import carve_val, init_weights, parse_grid, ramp, settings


def test_carve_val_is_stratified_and_disjoint() -> None:
    samples = [Sample(f"{c}_{i}.png", c) for c in range(3) for i in range(10)] + [Sample("u.png", -1)]
    train, val = carve_val(samples, 0.2, seed=0)
    assert sorted(s.label for s in val) == [0, 0, 1, 1, 2, 2]
    assert {s.path for s in train} | {s.path for s in val} == {s.path for s in samples}
    assert not {s.path for s in train} & {s.path for s in val}
    assert Sample("u.png", -1) in train
    assert carve_val(samples, 0.2, seed=0) == (train, val)
    with pytest.raises(UserError, match="--val-fraction"):
        carve_val(samples, 1.5, seed=0)


def test_grid_parsing_and_lr_mult_length() -> None:
    base = {"lr": [0.1], "lr_mult": [None], "l2": [1e-4]}
    grid = parse_grid(["lr=0.03,0.01", "lr_mult=1,0.1:0.2:0.3:0.5 l2=5e-5"], base, 4)
    assert grid == {"lr": [0.03, 0.01], "lr_mult": [None, (0.1, 0.2, 0.3, 0.5)], "l2": [5e-5]}
    assert len(settings(grid)) == 4
    assert ramp(0.1, 0.3, 5) == (0.1, 0.15, 0.2, 0.25, 0.3)
    with pytest.raises(UserError, match="needs 4"):
        parse_grid(["lr_mult=0.1:0.1:0.2:0.2:0.3"], base, 4)
    with pytest.raises(UserError, match="--grid: 'momentum=0.8'"):
        parse_grid(["momentum=0.8"], base, 4)


def _new_task_config(tmp_path: Path, root: Path, train: Path, test: Path, epochs: int = 1):
    return make_config(
        tmp_path / "run", {"name": "resnet8", "class_num": 5},
        eval_split=split_config(root, test, RESIZED_EVAL_OPS, batch_size=64),
        train_split=split_config(root, train, RESIZED_EVAL_OPS, batch_size=16, shuffle=True),
        Optimizer={"name": "Momentum", "lr": {"name": "Cosine", "learning_rate": 0.05},
                   "regularizer": {"name": "L2", "coeff": 1e-4}},
        Global={"epochs": epochs, "log_interval": 100},
    )


def test_init_weights_keep_backbone_and_start_a_fresh_classifier(tmp_path: Path) -> None:
    torch.manual_seed(3)
    source = create_model(ModelSpec(name="resnet8"), 10)
    full = tmp_path / "student.safetensors"
    save_safetensors(source.state_dict(), full)
    cfg = _new_task_config(tmp_path, tmp_path, tmp_path / "a.txt", tmp_path / "b.txt")
    export_model(make_config(tmp_path, {"name": "resnet8", "class_num": 10}), full, tmp_path / "exp", ["onnx"],
                 backbone=True)
    for weights in (full, tmp_path / "exp" / "backbone.safetensors"):
        path, groups = init_weights(cfg, weights, tmp_path / weights.stem)
        state = load_file(str(path))
        assert groups == 4 and state["fc.weight"].shape == (5, source.num_features)
        for k, v in source.state_dict().items():
            if not k.startswith("fc."):
                assert torch.equal(state[k], v), k
    other = tmp_path / "resnet14.safetensors"
    save_safetensors(create_model(ModelSpec(name="resnet14"), 10).state_dict(), other)
    with pytest.raises(UserError, match="do not fit"):
        init_weights(cfg, other, tmp_path / "x")


def test_search_chooses_on_val_and_reports_test(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "data"
    train = write_list(root / "train.txt", write_fashion_pngs(root, 8, [5, 6, 7, 8, 9], "train", relabel=True))
    test = write_list(root / "test.txt", write_fashion_pngs(root, 4, [5, 6, 7, 8, 9], "test", relabel=True))
    backbone = tmp_path / "backbone.safetensors"
    save_safetensors(create_model(ModelSpec(name="resnet8"), 5).state_dict(), backbone)
    cfg_path = write_config(tmp_path / "transfer.yaml", _new_task_config(tmp_path, root, train, test))
    args = ["transfer", "-c", str(cfg_path), "--backbone", str(backbone), "--grid", "lr=0.05",
            "--grid", "lr_mult=1,0.1:0.2:0.3:0.5", "--grid", "l2=1e-4"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    out = tmp_path / "run"
    results = json.loads((out / "transfer_results.json").read_text())
    assert len(results["grid"]) == 2 and results["n_val"] == 10 and results["n_train"] == 30
    assert results["test_count"] == 20 and 0.0 <= results["test_top1"] <= 1.0
    best = max(results["grid"], key=lambda r: r["val_top1"])
    assert results["grid"][results["chosen"]]["val_top1"] == best["val_top1"]
    val_paths = {s.path for s in read_list(out / "splits" / "val_part.txt", root)}
    assert val_paths <= {s.path for s in read_list(train, root)}
    assert not val_paths & {s.path for s in read_list(test, root)}
    assert "**chosen**" in printed and "test top-1" in (out / "transfer_results.md").read_text()

    stamp = (out / "grid" / "00" / "transfer_point.json").stat().st_mtime_ns
    assert main(args) == 0  # finished grid points are reused
    assert (out / "grid" / "00" / "transfer_point.json").stat().st_mtime_ns == stamp
