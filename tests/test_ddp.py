"""Two CPU processes under torchrun (gloo): distillation training with DDP on the student only, eval gathered
without padding duplicates, and resume across world sizes (1 -> 2 mid-epoch, 2 -> 1 at an epoch boundary)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.configs import distill_config, write_config
from helpers.fashion_mnist import export_fashion_mnist
from helpers.paths import ROOT

from ssld.config import load_config
from ssld.engine import train

VAL_COUNT = 101  # odd: the 2-rank eval sampler pads one duplicate that must not be counted


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = export_fashion_mnist(tmp_path_factory.mktemp("fm"), labeled_per_class=10, val_size=110, pool_size=20)
    lines = (root / "val.txt").read_text().splitlines()[:VAL_COUNT]
    (root / "val101.txt").write_text("\n".join(lines) + "\n")
    return root


def _config(data: Path, out: Path, **overrides: object) -> dict:
    cfg = distill_config(data, out, teacher_weights=None)
    cfg["Global"].update({"epochs": 2, "log_interval": 1, "deterministic": True, **overrides})
    cfg["DataLoader"]["Train"]["sampler"]["batch_size"] = 16
    cfg["DataLoader"]["Eval"]["dataset"]["cls_label_path"] = str(data / "val101.txt")
    return cfg


def _torchrun(cfg_path: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "ssld", "train", "-c", str(cfg_path), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=150, check=False)


def test_two_process_train_eval_and_resume_across_world_sizes(data: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # 1 process, keeping a copy of the mid-epoch checkpoint written at step 3
    from ssld.engine import trainer

    real_save = trainer.save_checkpoint

    def keep_copies(path: Path, ckpt: dict) -> None:
        real_save(path, ckpt)
        real_save(Path(f"{path}.step{ckpt['step']}"), ckpt)

    monkeypatch.setattr(trainer, "save_checkpoint", keep_copies)
    single = tmp_path / "single"
    train(load_config(write_config(tmp_path / "single.yaml", _config(data, single, save_steps=3, epochs=1))))
    mid = single / "checkpoints" / "latest.pt.step3"
    assert torch.load(mid, weights_only=True)["batch"] == 3

    # 2 processes resume it: 3 batches x 16 images = 48 seen -> batch 1 of 2 x 16 per step
    ddp_out = tmp_path / "ddp"
    cfg_path = write_config(tmp_path / "ddp.yaml", _config(data, ddp_out))
    res = _torchrun(cfg_path, "-o", f"Global.checkpoints={mid}")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "continuing at epoch 1, batch 1" in res.stderr
    assert res.stderr.count("frozen model 'Teacher' has no weights") == 1  # a random teacher: warned, by rank 0
    report = json.loads((ddp_out / "train_report.json").read_text())
    assert report["world_size"] == 2 and report["count"] == VAL_COUNT
    ckpt = torch.load(ddp_out / "checkpoints" / "latest.pt", weights_only=True)
    assert ckpt["world_size"] == 2 and ckpt["epoch"] == 2 and len(ckpt["rng"]) == 2
    assert not any(".module." in k or "_orig_mod" in k for k in ckpt["model"]), "wrapper names leaked"
    start = torch.load(mid, weights_only=True)["model"]
    for k, v in start.items():  # the frozen, never-wrapped teacher is untouched by 2-process training
        if k.startswith("models.Teacher.") and "num_batches" not in k:
            assert torch.equal(v, ckpt["model"][k]), k
    rows = [json.loads(line) for line in (ddp_out / "metrics.jsonl").read_text().splitlines()]
    assert [r["count"] for r in rows if "count" in r] == [VAL_COUNT, VAL_COUNT]
    # 50 images per rank, batch 16 -> 4 iterations per epoch; from batch 1 of epoch 1: 3 + 4 more
    assert ckpt["step"] == 8

    # back to 1 process for a third epoch, from the 2-process epoch-end checkpoint
    back = _config(data, tmp_path / "back", epochs=3, checkpoints=str(ddp_out / "checkpoints" / "latest.pt"))
    final = train(load_config(write_config(tmp_path / "back.yaml", back)))
    assert final["count"] == VAL_COUNT and final["world_size"] == 1
    assert torch.load(tmp_path / "back" / "checkpoints" / "latest.pt", weights_only=True)["epoch"] == 3
