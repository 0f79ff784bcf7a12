"""Budgets and sizes that follow the data: the data stage's image measurement, ``auto`` values filled from it,
one notice line when a config does not fit the images, and epochs that scale with the dataset where the pipeline
file sets none."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from helpers.paths import FM_CONFIGS
from PIL import Image

from ssld.errors import UserError
from ssld.pipeline.budget import (
    distill_epochs,
    ssld_step_budget,
    stage_cfg,
    teacher_epochs,
)
from ssld.pipeline.config import load_pipeline_config
from ssld.pipeline.fit import fill_auto, fit_config, measure_images, mismatch
from ssld.pipeline.training import read_training_yaml, steps_per_epoch


def _rgb_list(tmp_path: Path, n: int = 12, size: int = 32) -> Path:
    rng = np.random.default_rng(0)
    lines = []
    for i in range(n):
        img = np.zeros((size, size, 3), np.uint8)
        img[..., 0] = 200  # red: mean ~0.78 / 0.0 / ~0.2 plus noise
        img[..., 2] = rng.integers(0, 100, (size, size))
        Image.fromarray(img).save(tmp_path / f"{i}.png")
        lines.append(f"{i}.png {i % 2}")
    path = tmp_path / "list.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_measure_images_size_colour_and_statistics(tmp_path: Path) -> None:
    image = measure_images(_rgb_list(tmp_path), tmp_path)
    assert (image["height"], image["width"], image["channels"]) == (32, 32, 3) and not image["sizes_vary"]
    assert image["mean"][0] == pytest.approx(200 / 255, abs=1e-3) and image["mean"][1] == 0.0
    assert image["mean"][2] == pytest.approx(49.5 / 255, abs=0.01) and image["std"][0] == pytest.approx(0, abs=1e-3)
    gray = tmp_path / "g"
    gray.mkdir()
    Image.fromarray(np.full((28, 20), 51, np.uint8)).save(gray / "a.png")
    (gray / "l.txt").write_text("a.png 0\n")
    g = measure_images(gray / "l.txt", gray)
    assert (g["height"], g["width"], g["channels"], g["mean"]) == (28, 20, 1, [0.2, 0.2, 0.2])


IMAGE = {"height": 32, "width": 32, "channels": 3, "mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3],
         "sizes_vary": False, "measured_images": 10}


def test_auto_values_are_filled_and_set_values_kept() -> None:
    raw = read_training_yaml(FM_CONFIGS / "teacher.yaml", {"Global.image_shape": "auto"}, "t")
    ops = raw["DataLoader"]["Train"]["dataset"]["transform_ops"]
    ops[2]["RandomCrop"]["size"] = "auto"
    ops[-1]["NormalizeImage"].update(mean="auto", std="auto")
    filled = fill_auto(raw, IMAGE, "Pipeline.teacher")
    assert filled["Global"]["image_shape"] == [3, 32, 32] and ops[2]["RandomCrop"]["size"] == 32
    assert ops[-1]["NormalizeImage"]["mean"] == [0.4, 0.5, 0.6] and ops[-1]["NormalizeImage"]["std"] == [0.2, 0.25, 0.3]
    assert raw["DataLoader"]["Eval"]["dataset"]["transform_ops"][-1]["NormalizeImage"]["mean"] == [0.286] * 3  # set
    with pytest.raises(UserError, match="no image measurement"):
        fill_auto(read_training_yaml(FM_CONFIGS / "teacher.yaml", {"Global.image_shape": "auto"}, "t"), None, "x")


def test_fashion_mnist_config_on_32px_rgb_images_is_one_notice(caplog: pytest.LogCaptureFixture) -> None:
    raw = read_training_yaml(FM_CONFIGS / "teacher.yaml", {}, "t")
    fm = {**IMAGE, "height": 28, "width": 28, "channels": 1, "mean": [0.29] * 3, "std": [0.35] * 3}
    assert mismatch(raw, fm) is None  # Fashion-MNIST's own images fit
    what = mismatch(raw, IMAGE)
    assert what is not None and "image_shape [3, 28, 28]" in what and "RandomCrop size 28" in what
    assert "mean [0.286, 0.286, 0.286]" in what
    with caplog.at_level(logging.WARNING, logger="ssld.pipeline"):
        fit_config(raw, IMAGE, "Pipeline.teacher", "teacher.yaml")
        fit_config(raw, IMAGE, "Pipeline.teacher", "teacher.yaml")  # said once
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "\n" not in lines[0] and "the images are 32x32 RGB" in lines[0]


def _pipeline(tmp_path: Path, teacher: str = "{}", distill: str = "{}") -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(f"""\
Pipeline:
  num_classes: 10
  teacher: {{config: {FM_CONFIGS}/teacher.yaml, overrides: {teacher}}}
  baseline: {{config: {FM_CONFIGS}/baseline.yaml}}
  select: {{k: 700}}
  distill: {{config: {FM_CONFIGS}/distill.yaml, overrides: {distill}}}
  finetune: {{config: {FM_CONFIGS}/finetune.yaml, overrides: {{Global.epochs: 5}}}}
""")
    return path


def test_budgets_follow_the_data_where_the_pipeline_sets_no_epochs(tmp_path: Path) -> None:
    p = load_pipeline_config(_pipeline(tmp_path))
    d = stage_cfg(p, "distill", None)
    # the digits: 200 labels, 7,800 pool images, top-700: 7,200 distill images = 57 steps an epoch
    small, large = distill_epochs(p, d, 200, 7800), distill_epochs(p, d, 20000, 58000)
    assert small == 27 and steps_per_epoch(d, 7200) * small >= 1500  # 1,500 steps
    assert large == 10  # a large list (27,000 images, 211 steps an epoch): the 10-epoch floor
    t = stage_cfg(p, "teacher", None)
    budget = ssld_step_budget(p, 200, 7800)
    epochs = teacher_epochs(p, t, 200, 200, 7800, None)
    assert steps_per_epoch(t, 200) * epochs >= budget["total"] > steps_per_epoch(t, 200) * (epochs - 1)
    fixed = load_pipeline_config(_pipeline(tmp_path, teacher="{Global.epochs: 40}", distill="{Global.epochs: 15}"))
    assert distill_epochs(fixed, stage_cfg(fixed, "distill", None), 200, 7800) == 15
    assert teacher_epochs(fixed, stage_cfg(fixed, "teacher", None), 200, 200, 7800, None) == 40
    off = load_pipeline_config(_pipeline(tmp_path), extra={"budget": {"auto": False}})
    assert distill_epochs(off, d, 200, 7800) == d.Global.epochs
