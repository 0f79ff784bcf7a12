"""Engine options on a tiny real run: EMA, gradient accumulation, bf16 autocast, Adam + lr_mult_list,
and SIGTERM -> checkpoint at the next step -> resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest_engine import (
    ROOT,
    export_fashion_mnist,
    run_cli,
    split,
    supervised_config,
    write_config,
)

from ssld.config import load_config
from ssld.engine import train


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_fashion_mnist(tmp_path_factory.mktemp("fm"), labeled_per_class=10, val_size=50, pool_size=10)


def _train(cfg: dict, path: Path) -> dict:
    return train(load_config(write_config(path, cfg)))


def test_ema_is_tracked_evaluated_and_checkpointed(data: Path, tmp_path: Path) -> None:
    cfg = supervised_config(data, tmp_path / "o", epochs=1, ema=True, ema_decay=0.5)
    _train(cfg, tmp_path / "c.yaml")
    ckpt = torch.load(tmp_path / "o" / "checkpoints" / "latest.pt", weights_only=True)
    assert ckpt["ema"] is not None and ckpt["ema"].keys() == ckpt["model"].keys()
    assert any(not torch.equal(ckpt["ema"][k], ckpt["model"][k]) for k in ckpt["ema"] if k.endswith("weight"))
    row = [json.loads(x) for x in (tmp_path / "o" / "metrics.jsonl").read_text().splitlines()][-1]
    assert row["ema_count"] == 50 and 0 <= row["ema_top1"] <= 1


def test_gradient_accumulation_counts_updates(data: Path, tmp_path: Path) -> None:
    cfg = supervised_config(data, tmp_path / "o", epochs=2, accum_steps=2, eval_during_train=False)
    cfg["DataLoader"]["Train"]["sampler"]["batch_size"] = 16  # 100 images -> 7 iterations -> 4 updates
    _train(cfg, tmp_path / "c.yaml")
    ckpt = torch.load(tmp_path / "o" / "checkpoints" / "latest.pt", weights_only=True)
    assert ckpt["step"] == 14 and ckpt["updates"] == 8
    assert len(ckpt["optimizer"]["state"]) > 0


def test_bf16_autocast_and_adam_with_lr_mult(data: Path, tmp_path: Path) -> None:
    cfg = supervised_config(data, tmp_path / "o", epochs=1)
    cfg["AMP"] = {"enabled": True}
    cfg["Optimizer"] = {"name": "AdamW", "weight_decay": 0.05, "one_dim_param_no_weight_decay": True,
                        "lr_mult_list": [0.1, 0.3, 0.6, 1.0], "clip_grad_norm": 1.0,
                        "lr": {"name": "Cosine", "learning_rate": 0.003, "warmup_epoch": 0.5}}
    report = _train(cfg, tmp_path / "c.yaml")
    assert report["precision"] == "bfloat16" and 0 <= report["top1"] <= 1
    rows = [r for r in map(json.loads, (tmp_path / "o" / "metrics.jsonl").read_text().splitlines())
            if r["kind"] == "train"]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in rows)


def test_sigterm_saves_the_step_then_resume_finishes(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    # 10 epochs x 13 iterations: enough steps that a late SIGTERM (a loaded machine) still lands mid-run
    cfg = supervised_config(data, out, epochs=10, log_interval=1, eval_during_train=False)
    cfg["DataLoader"]["Train"]["sampler"]["batch_size"] = 8
    path = write_config(tmp_path / "c.yaml", cfg)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ssld", "train", "-c", str(path)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = out / "metrics.jsonl"
    deadline = time.time() + 90
    while not (log.exists() and log.read_text().count("\n") >= 2) and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    ckpt = torch.load(out / "checkpoints" / "latest.pt", weights_only=True)
    assert 2 <= ckpt["step"] < 130
    assert not (out / "train_report.json").exists()
    cfg["Global"]["checkpoints"] = str(out / "checkpoints" / "latest.pt")
    report = _train(cfg, path)
    assert report["steps"] == 130
    steps = [r["step"] for r in map(json.loads, log.read_text().splitlines()) if r["kind"] == "train"]
    assert steps == list(range(1, 131))


def test_resuming_a_finished_run_trains_nothing_and_reports(data: Path, tmp_path: Path) -> None:
    cfg = supervised_config(data, tmp_path / "o", epochs=1)
    first = _train(cfg, tmp_path / "c.yaml")
    cfg["Global"]["checkpoints"] = str(tmp_path / "o" / "checkpoints" / "latest.pt")
    again = _train(cfg, tmp_path / "c.yaml")
    assert again["steps"] == first["steps"] and again["top1"] == first["top1"] and again["train_seconds"] == 0


def test_channels_last_on_cpu_drops_an_odd_last_batch(data: Path, tmp_path: Path) -> None:
    """torch 2.14.1 aborts channels_last CPU training of the 5k student on odd batches; the loader skips them."""
    cfg = supervised_config(data, tmp_path / "o", epochs=1, channels_last=True, eval_during_train=False)
    cfg["Arch"]["name"] = "cifar_resnet8x0_25"
    cfg["DataLoader"]["Train"]["sampler"]["batch_size"] = 31  # 100 images -> 3 x 31 and a 7-image tail (aborts)
    path = write_config(tmp_path / "c.yaml", cfg)
    proc = run_cli("train", "-c", str(path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "an odd number" in proc.stderr + proc.stdout
    assert torch.load(tmp_path / "o" / "checkpoints" / "latest.pt", weights_only=True)["step"] == 3
    from ssld.pipeline.training import steps_per_epoch

    assert steps_per_epoch(load_config(path), 100) == 3  # the pipeline's step budgets count the same batches


def test_even_batches_only_drops_an_odd_tail(data: Path) -> None:
    from ssld.config.schema import DataSplitConfig
    from ssld.data import build_loader

    for bs, dropped in [(31, True), (32, False), (50, False)]:  # tails 7, 4, 0
        split_cfg = DataSplitConfig.model_validate(split(data, "train_labeled.txt", bs, True))
        loader, _ = build_loader(split_cfg, train=True, seed=0, even_batches=True)
        assert loader.drop_last is dropped
        sizes = [len(b["image"]) for b in loader]
        assert sizes == [bs] * (100 // bs) + ([] if dropped or 100 % bs == 0 else [100 % bs])
