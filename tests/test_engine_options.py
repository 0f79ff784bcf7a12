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
from helpers.configs import supervised_config, write_config
from helpers.fashion_mnist import export_fashion_mnist
from helpers.paths import ROOT

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


def test_channels_last_defaults_to_contiguous_on_the_cpu(data: Path, tmp_path: Path) -> None:
    """``auto`` (the default) trains contiguous on the CPU, where torch's channels_last backward can crash."""
    from ssld.engine.model_setup import build, prepare, use_channels_last

    cfg = load_config(write_config(tmp_path / "c.yaml", supervised_config(data, tmp_path / "o")))
    assert cfg.Global.channels_last == "auto"
    assert use_channels_last("auto", torch.device("cpu")) is False
    assert use_channels_last("auto", torch.device("cuda", 0)) is True
    tm = prepare(build(cfg), cfg, torch.device("cpu"))
    convs = [m.weight for m in tm.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous() for w in convs)


def test_explicit_channels_last_on_the_cpu_is_honoured_with_one_warning(
    data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No training step here: a channels_last backward on the CPU is the crash being warned about."""
    from ssld.engine import model_setup

    monkeypatch.setattr(model_setup, "_warned_cpu_channels_last", False)
    cfg = load_config(write_config(tmp_path / "c.yaml", supervised_config(data, tmp_path / "o", channels_last=True)))
    with caplog.at_level("WARNING", logger="ssld.engine"):
        tm = model_setup.prepare(model_setup.build(cfg), cfg, torch.device("cpu"))
        assert model_setup.use_channels_last(True, torch.device("cpu")) is True
    convs = [m.weight for m in tm.model.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-1] > 1]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    warnings = [r.getMessage() for r in caplog.records if "channels_last" in r.getMessage()]
    assert len(warnings) == 1 and "abort" in warnings[0] and "auto" in warnings[0]
