"""Training-stage plumbing without training: resolved configs, resume checkpoints, step budgets, lr-grid split."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.paths import FM_CONFIGS

from ssld.errors import UserError
from ssld.pipeline.baseline import split_labeled, ssld_step_budget
from ssld.pipeline.config import load_pipeline_config
from ssld.pipeline.training import (
    Lists,
    read_training_yaml,
    steps_per_epoch,
    write_stage_config,
)


def _stage_cfg(tmp: Path, resume: bool, overrides: dict | None = None):
    raw = read_training_yaml(FM_CONFIGS / "teacher.yaml", overrides or {"Global.epochs": 3}, "Pipeline.teacher")
    (tmp / "imgs").mkdir(exist_ok=True)
    return write_stage_config(raw, tmp / "teacher", Lists(str(tmp / "imgs"), "train.txt", "val.txt"), seed=7,
                              resume=resume, source="teacher.yaml")


def test_stage_config_points_at_run_lists_and_output(tmp_path: Path) -> None:
    cfg = _stage_cfg(tmp_path, resume=False)
    assert cfg.Global.output_dir == str(tmp_path / "teacher")
    assert cfg.Global.seed == 7 and cfg.Global.epochs == 3 and cfg.Global.checkpoints is None
    assert cfg.DataLoader.Train.dataset.cls_label_path == "train.txt"
    assert cfg.DataLoader.Eval.dataset.cls_label_path == "val.txt"
    assert (tmp_path / "teacher" / "config.yaml").read_text().startswith("# written by ssld pipeline")


def test_resumed_stage_continues_from_its_latest_checkpoint(tmp_path: Path) -> None:
    latest = tmp_path / "teacher" / "checkpoints" / "latest.pt"
    latest.parent.mkdir(parents=True)
    latest.write_bytes(b"x")
    assert _stage_cfg(tmp_path, resume=True).Global.checkpoints == str(latest)
    assert _stage_cfg(tmp_path, resume=False).Global.checkpoints is None


def test_bad_override_names_the_stage(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"Pipeline.teacher.overrides.Global.epochs.x"):
        read_training_yaml(FM_CONFIGS / "teacher.yaml", {"Global.epochs.x": 1}, "Pipeline.teacher")
    with pytest.raises(UserError, match="Global.epochs"):
        _stage_cfg(tmp_path, resume=False, overrides={"Global.epochs": 0})


def test_steps_and_baseline_budget(tmp_path: Path) -> None:
    cfg = _stage_cfg(tmp_path, resume=False)
    assert steps_per_epoch(cfg, 2000) == 16  # 2000 / 128, last partial batch kept
    p = load_pipeline_config(FM_CONFIGS / "ssld.yaml", profile="quick")
    budget = ssld_step_budget(p, n_labeled=2000, n_pool=20000)
    k, distill_epochs = p.pipeline.select.k, p.pipeline.distill.overrides["Global.epochs"]
    assert budget["distill"] == -(-(2000 + 10 * k) // 128) * distill_epochs
    assert budget["total"] == budget["distill"] + budget["finetune"] > budget["distill"]


def test_lr_grid_split_is_stratified_and_disjoint(tmp_path: Path) -> None:
    labeled = tmp_path / "labeled.txt"
    labeled.write_text("".join(f"img{c}_{i}.png {c}\n" for c in range(3) for i in range(10)))
    train, holdout = split_labeled(labeled, 0.2, seed=0, out_dir=tmp_path)
    tr, ho = train.read_text().splitlines(), holdout.read_text().splitlines()
    assert len(tr) == 24 and len(ho) == 6 and not set(tr) & set(ho)
    assert sorted(line.split()[1] for line in ho) == ["0", "0", "1", "1", "2", "2"]
    (tmp_path / "again").mkdir()
    assert split_labeled(labeled, 0.2, seed=0, out_dir=tmp_path / "again")[1].read_text() == holdout.read_text()
