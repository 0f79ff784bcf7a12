"""``ssld init`` on data of another size and colour (32 px RGB PNGs): the pipeline file it writes runs end to end
(at a tiny budget), its stages train at the measured size with the measured statistics, and the teacher's
data-driven budget is no smaller than the baseline's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from ssld.cli import main
from ssld.errors import UserError
from ssld.pipeline.api import open_pipeline
from ssld.pipeline.init import init_pipeline

FAST = {"DataLoader.Train.loader.num_workers": 0, "DataLoader.Eval.loader.num_workers": 0,
        "DataLoader.Train.sampler.batch_size": 16}


def _images(root: Path, name: str, n_per_class: int, labeled: bool, rng: np.random.Generator) -> Path:
    lines = []
    (root / name).mkdir(parents=True, exist_ok=True)
    for c in range(4):
        for i in range(n_per_class):
            img = rng.integers(0, 60, (32, 32, 3), dtype=np.uint8)
            img[c * 8:c * 8 + 8, :, c % 3] += 180  # a class-specific coloured band
            rel = f"{name}/{c}_{i}.png"
            Image.fromarray(img).save(root / rel)
            lines.append(f"{rel} {c}" if labeled else rel)
    path = root / f"{name}.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "mine"
    for list_name, n, labeled in (("train_labeled", 5, True), ("unlabeled", 6, False), ("val", 3, True)):
        _images(root, list_name, n, labeled, rng)
    return root


def test_init_writes_a_pipeline_that_runs_on_32px_rgb_lists(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "my_ssld.yaml"
    assert main(["init", "--data", str(data), "--out", str(out)]) == 0
    text = out.read_text()
    assert "20 labeled images (5 per class), 24 unlabeled, 12 val, 4 classes" in text and "32x32 RGB" in text
    pl = yaml.safe_load(text)["Pipeline"]
    assert pl["num_classes"] == 4 and pl["select"]["k"] == 5 and pl["guard"]["min_margin"] == 1.0
    assert "Global.epochs" not in pl["teacher"]["overrides"] and "Global.epochs" not in pl["distill"]["overrides"]
    tiny = {"budget": {"distill_min_steps": 4, "distill_min_epochs": 1},
            **{s: {"overrides": FAST} for s in ("teacher", "baseline", "distill", "finetune")},
            "finetune": {"overrides": {**FAST, "Global.epochs": 1}}, "baseline": {"lr_grid": [0.1], "overrides": FAST},
            "export": {"enabled": False}}
    run = tmp_path / "run"
    pipe = open_pipeline(out, run_dir=run, extra=tiny, allow_weak_teacher=True)
    pipe.out = lambda s: None
    pipe.run()
    image = json.loads((run / "data" / "done.json").read_text())["metrics"]["image"]
    assert (image["height"], image["width"], image["channels"]) == (32, 32, 3)
    for stage in ("teacher", "baseline", "distill", "finetune"):
        cfg = yaml.safe_load((run / stage / "config.yaml").read_text())
        assert cfg["Global"]["image_shape"] == [3, 32, 32]
        ops = cfg["DataLoader"]["Train"]["dataset"]["transform_ops"]
        assert {"RandomCrop": {"size": 32}} in ops and {"Pad": {"padding": 4}} in ops
        assert ops[-1]["NormalizeImage"]["mean"] == image["mean"]
    done = {s: json.loads((run / s / "done.json").read_text())["metrics"] for s in ("teacher", "baseline", "eval")}
    assert done["teacher"]["steps"] >= done["baseline"]["ssld_steps"]["total"]  # the teacher's budget follows
    assert done["eval"]["finetune_top1"] is not None and (run / "guard.json").is_file()
    # the teacher left the guard's 4 held-out images (1 per class) out: the guard scores it on images it never saw
    assert pl["guard"]["hold_out_from_teacher"] is True and done["teacher"]["train_images"] == 16
    assert json.loads((run / "guard.json").read_text())["teacher_trained_on_holdout"] == 0


def test_init_from_class_folders_and_refusals(tmp_path: Path) -> None:
    for split, n in (("train", 3), ("val", 2)):
        for cls in ("cat", "dog"):
            (tmp_path / "photos" / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(np.full((20, 24, 3), 100 * (cls == "dog"), np.uint8)).save(
                    tmp_path / "photos" / split / cls / f"{i}.jpg")
    (tmp_path / "photos" / "unlabeled").mkdir()
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(tmp_path / "photos" / "unlabeled" / "u.png")
    out = init_pipeline(str(tmp_path / "photos"), tmp_path / "p.yaml")
    pl = yaml.safe_load(out.read_text())["Pipeline"]
    assert pl["num_classes"] == 2 and (tmp_path / "p" / "lists" / "classes.txt").read_text() == "0 cat\n1 dog\n"
    assert len(Path(pl["data"]["labeled"]).read_text().splitlines()) == 6
    assert Path(pl["data"]["unlabeled"]).read_text() == "unlabeled/u.png\n"
    lists = ",".join(str(tmp_path / "p" / "lists" / n) for n in ("train_labeled.txt", "unlabeled.txt", "val.txt"))
    three = init_pipeline(lists, tmp_path / "three.yaml", root=str(tmp_path / "photos"))
    assert yaml.safe_load(three.read_text())["Pipeline"]["data"]["image_root"] == str(tmp_path / "photos")
    with pytest.raises(UserError, match="exists; pass --force"):
        init_pipeline(str(tmp_path / "photos"), tmp_path / "p.yaml")
    with pytest.raises(UserError, match="expected list files"):
        init_pipeline(str(tmp_path), tmp_path / "q.yaml")
