"""Exact resume: a run killed with SIGKILL mid-epoch and resumed ends with the same weights as an uninterrupted one.

CPU, deterministic settings, two data-loader workers and random crop + flip augmentation: the resumed run must
see the same batches, the same crops, the same learning rates and the same optimizer state.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
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
    return export_fashion_mnist(tmp_path_factory.mktemp("fm"), labeled_per_class=30, val_size=100, pool_size=10)


def _config(data: Path, out: Path) -> dict:
    cfg = supervised_config(data, out, epochs=2, deterministic=True, save_steps=3, log_interval=1,
                            eval_during_train=False)
    cfg["DataLoader"]["Train"]["loader"] = {"num_workers": 2, "persistent_workers": True}
    return cfg


def _kill_mid_epoch(cfg_path: Path, out: Path) -> dict:
    """Start training, SIGKILL it (workers included) right after its first mid-epoch checkpoint appears."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ssld", "train", "-c", str(cfg_path)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    latest = out / "checkpoints" / "latest.pt"
    deadline = time.time() + 90
    while not latest.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert latest.exists(), "the run ended or timed out before writing a mid-epoch checkpoint"
    return torch.load(latest, weights_only=True)


@pytest.fixture()
def one_thread() -> Iterator[None]:
    """In-process runs use one intra-op thread, like the subprocess (same kernels, same reduction order)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_sigkill_mid_epoch_then_resume_is_bit_identical(data: Path, tmp_path: Path, one_thread: None) -> None:
    full_out, killed_out = tmp_path / "full", tmp_path / "killed"
    train(load_config(write_config(tmp_path / "full.yaml", _config(data, full_out))))

    cfg_path = write_config(tmp_path / "killed.yaml", _config(data, killed_out))
    ckpt = _kill_mid_epoch(cfg_path, killed_out)
    assert 0 < ckpt["batch"] < 10 and ckpt["epoch"] == 0, "the kill must land in the middle of the first epoch"
    assert not (killed_out / "train_report.json").exists()

    train(load_config(cfg_path, [f"Global.checkpoints={killed_out}/checkpoints/latest.pt"]))

    a = torch.load(full_out / "checkpoints" / "latest.pt", weights_only=True)
    b = torch.load(killed_out / "checkpoints" / "latest.pt", weights_only=True)
    assert a["step"] == b["step"] == 20
    assert a["model"].keys() == b["model"].keys()
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), f"{key} differs after resume"
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])
    # the resumed run's log reads as one run: each step once, in order
    rows = [json.loads(line) for line in (killed_out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == list(range(1, 21))
