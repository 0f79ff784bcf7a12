"""A real (tiny) pipeline run with ``distill.offline_teacher`` and a teacher list of its own: the teacher trains on
more labeled images than the student, the distill stage labels its own list and trains on the store, and the run
finishes with every stage's record."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from helpers.paths import FM_CONFIGS
from helpers.pipeline import band_images

from ssld.pipeline.api import open_pipeline

FAST = ("{Global.epochs: 1, Global.eval_interval: 1, DataLoader.Train.loader.num_workers: 0, "
        "DataLoader.Eval.loader.num_workers: 0, DataLoader.Train.sampler.batch_size: 8}")


def test_offline_teacher_pipeline_runs_end_to_end(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    lists = {n: band_images(root, n, k, n != "pool", rng) for n, k in (("labeled", 3), ("pool", 4), ("val", 2),
                                                                     ("more", 2))}
    teacher_list = tmp_path / "teacher.txt"  # a teacher that sees more labeled data than the student
    teacher_list.write_text(lists["labeled"].read_text() + lists["more"].read_text())
    text = f"""\
Pipeline:
  name: offline
  num_classes: 10
  data: {{source: lists, image_root: {root}, labeled: {lists['labeled']}, unlabeled: {lists['pool']},
          val: {lists['val']}, teacher_labeled: {teacher_list}}}
  teacher: {{config: {FM_CONFIGS}/teacher.yaml, overrides: {FAST}}}
  label: {{batch_size: 16, topk: 3}}
  select: {{k: 2}}
  distill: {{config: {FM_CONFIGS}/distill.yaml, overrides: {FAST}, offline_teacher: true}}
  export: {{enabled: false}}
"""
    (tmp_path / "p.yaml").write_text(text)
    pipe = open_pipeline(tmp_path / "p.yaml", run_dir=tmp_path / "run")
    pipe.out = lambda s: None
    pipe.run()
    run = tmp_path / "run"
    store = json.loads((run / "distill" / "store" / "manifest.json").read_text())
    train = (run / "distill" / "train.txt").read_text().splitlines()
    assert store["count"] == len(train) == 30 + len((run / "select" / "selected.txt").read_text().splitlines())
    cfg = (run / "distill" / "config.yaml").read_text()
    assert f"soft_labels: {run / 'distill' / 'store'}" in cfg
    done = json.loads((run / "distill" / "done.json").read_text())
    assert done["settings"]["offline_teacher"] is True and done["metrics"]["steps"] >= 1
    assert json.loads((run / "eval" / "done.json").read_text())["metrics"]["distill_top1"] is not None
    assert json.loads((run / "teacher" / "done.json").read_text())["metrics"]["train_images"] == 50
    assert json.loads((run / "data" / "done.json").read_text())["metrics"]["teacher_labeled"] == 50
