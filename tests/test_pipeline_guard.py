"""The teacher guard: a teacher not clearly better than the labels-only student on the baseline's held-out labeled
images stops the pipeline with one line (how far below, what to do), unless allowed; the report states the
comparison."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers.paths import FM_CONFIGS
from helpers.pipeline import band_images

from ssld.errors import UserError
from ssld.pipeline.api import open_pipeline
from ssld.pipeline.config import GuardSection
from ssld.pipeline.guard import GUARD, check_teacher

LOADERS = "DataLoader.Train.loader.num_workers: 0, DataLoader.Eval.loader.num_workers: 0"


def _pipeline(tmp_path: Path, guard: str = "") -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    lists = {n: band_images(root, n, k, n != "pool", rng) for n, k in (("labeled", 6), ("pool", 2), ("val", 2))}
    # an undertrained teacher: one optimizer step at a tiny lr; the student gets 40 steps on the band images
    weak = (f"{{Global.epochs: 1, Global.max_steps_per_epoch: 1, Optimizer.lr.learning_rate: 0.00001, "
            f"Optimizer.lr.warmup_epoch: 0, {LOADERS}}}")
    student = f"{{Global.epochs: 10, Global.eval_interval: 10, DataLoader.Train.sampler.batch_size: 8, {LOADERS}}}"
    text = f"""\
Pipeline:
  name: guard
  num_classes: 10
  data: {{source: lists, image_root: {root}, labeled: {lists['labeled']}, unlabeled: {lists['pool']},
          val: {lists['val']}}}
  teacher: {{config: {FM_CONFIGS}/teacher.yaml, overrides: {weak}}}
  baseline: {{config: {FM_CONFIGS}/baseline.yaml, lr_grid: [0.1], holdout_fraction: 0.5, grid_steps_fraction: 1.0,
             overrides: {student}}}
  dedup: {{enabled: false}}
  label: {{batch_size: 16, topk: 3}}
  select: {{k: 1}}
  distill: {{config: {FM_CONFIGS}/distill.yaml, overrides: {student}}}
  finetune: {{config: {FM_CONFIGS}/finetune.yaml, overrides: {{Global.epochs: 1, {LOADERS}}}}}
  export: {{enabled: false}}
{guard}"""
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return path


def test_undertrained_teacher_trips_the_guard_and_the_flag_goes_on(tmp_path: Path) -> None:
    config, run = _pipeline(tmp_path), tmp_path / "run"
    pipe = open_pipeline(config, run_dir=run)
    pipe.out = lambda s: None
    with pytest.raises(UserError) as err:
        pipe.run()
    msg = str(err.value)
    assert "\n" not in msg and "teacher guard" in msg and "labels-only student" in msg
    assert "train the teacher longer" in msg and "--allow-weak-teacher" in msg
    result = json.loads((run / GUARD).read_text())
    assert result["margin"] < 1.0 and result["holdout_images"] == 30 and f"{result['margin']:+.2f} points" in msg
    assert result["teacher_trained_on_holdout"] == 30 and "the teacher trained on 30 of them" in msg
    assert (run / "baseline" / "done.json").is_file() and not (run / "label").exists()  # stopped before mining
    pipe = open_pipeline(config, run_dir=run, allow_weak_teacher=True)  # same run folder: no --force needed
    pipe.out = lambda s: None
    pipe.run()
    assert (run / "eval" / "done.json").is_file() and json.loads((run / GUARD).read_text())["allowed"] is True
    pipe = open_pipeline(config, run_dir=run)  # allowed once in this folder: a rerun needs no flag
    pipe.out = lambda s: None
    pipe.run(start="eval")
    report = (run / "report.md").read_text()
    assert "Teacher guard: the teacher scored" in report and f"{result['margin']:+.2f} points" in report


def test_hold_out_from_teacher_scores_the_teacher_on_images_it_never_saw(tmp_path: Path) -> None:
    config, run = _pipeline(tmp_path, "  guard: {hold_out_from_teacher: true}\n"), tmp_path / "run"
    pipe = open_pipeline(config, run_dir=run)
    pipe.out = lambda s: None
    with pytest.raises(UserError) as err:  # the undertrained teacher still stops the run
        pipe.run()
    holdout = (run / "baseline" / "lr_grid" / "grid_holdout.txt").read_text().splitlines()
    teacher_list = yaml.safe_load((run / "teacher" / "config.yaml").read_text())["DataLoader"]["Train"]["dataset"]
    taught = Path(teacher_list["cls_label_path"]).read_text().splitlines()
    assert len(holdout) == 30 and len(taught) == 30 and not set(holdout) & set(taught)  # the baseline's grid split
    assert json.loads((run / "teacher" / "done.json").read_text())["metrics"]["train_images"] == 30
    result = json.loads((run / GUARD).read_text())
    assert result["teacher_trained_on_holdout"] == 0 and "optimistic" not in str(err.value)


def _records(run: Path, teacher: float, student: float) -> None:
    for stage, metrics in (("teacher", {}), ("baseline", {"lr": 0.1, "lr_grid_holdout_top1": {"0.1": student}})):
        (run / stage).mkdir(parents=True)
        (run / stage / "done.json").write_text(json.dumps({"fingerprint": f"f-{stage}", "metrics": metrics}))
    (run / GUARD).write_text(json.dumps({
        "fingerprints": {"teacher": "f-teacher", "baseline": "f-baseline"}, "holdout_images": 200,
        "teacher_holdout_top1": teacher, "student_holdout_top1": student, "margin": round(teacher - student, 2),
        "holdout": "baseline/lr_grid/grid_holdout.txt"}))


@pytest.mark.parametrize(("teacher", "student", "margin", "allow", "stops"), [
    (90.0, 83.0, 1.0, False, False),   # the demo's setting: 7 points above
    (83.5, 83.0, 1.0, False, True),    # above, but not clearly
    (77.25, 82.35, 1.0, False, True),  # below
    (77.25, 82.35, 1.0, True, False),  # below, allowed
    (83.5, 83.0, 0.0, False, False),   # the margin is the user's
])
def test_guard_margin(tmp_path: Path, teacher: float, student: float, margin: float, allow: bool,
                      stops: bool) -> None:
    _records(tmp_path, teacher, student)
    guard = GuardSection(min_margin=margin, allow_weak_teacher=allow)
    if stops:
        with pytest.raises(UserError, match=re.escape(f"{teacher - student:+.2f} points, the guard asks for at least")):
            check_teacher(tmp_path, guard)
    else:
        assert check_teacher(tmp_path, guard)["margin"] == round(teacher - student, 2)
    assert check_teacher(tmp_path, GuardSection(enabled=False)) is None
