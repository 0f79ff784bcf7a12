"""The pipeline file and the checks made before any stage runs: one-line errors for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.paths import FM_CONFIGS
from helpers.pipeline import minimal_pipeline

from ssld.errors import UserError
from ssld.pipeline.api import open_pipeline
from ssld.pipeline.config import load_pipeline_config


def test_shipped_config_and_profiles_load() -> None:
    for profile in (None, "quick", "same_labels", "full"):
        pipe = open_pipeline(FM_CONFIGS / "ssld.yaml", profile=profile)
        names = [s.name for s in pipe.stages]
        assert names == ["data", "teacher", "baseline", "label", "dedup", "select", "distill", "finetune", "eval",
                         "export", "report"]


@pytest.mark.parametrize(("profile", "student"), [("quick", "cifar_resnet8x0_5"), ("same_labels", "cifar_resnet8x0_25")])
def test_every_student_stage_of_a_profile_trains_its_student(profile: str, student: str) -> None:
    from ssld.pipeline.training import read_training_yaml

    p = load_pipeline_config(FM_CONFIGS / "ssld.yaml", profile=profile)
    sec = {name: getattr(p.pipeline, name) for name in ("baseline", "distill", "finetune")}
    raw = {name: read_training_yaml(p.config_path(s.config), s.overrides, name) for name, s in sec.items()}
    assert raw["baseline"]["Arch"]["name"] == raw["finetune"]["Arch"]["name"] == student
    assert raw["distill"]["Arch"]["models"][1]["Student"]["name"] == student


def test_profile_and_seed_change_the_stage_hashes(tmp_path: Path) -> None:
    a = load_pipeline_config(FM_CONFIGS / "ssld.yaml", profile="quick")
    b = load_pipeline_config(FM_CONFIGS / "ssld.yaml", profile="quick", seed=3)
    assert a.pipeline.seed == 0 and b.pipeline.seed == 3
    assert a.pipeline.select.k != load_pipeline_config(FM_CONFIGS / "ssld.yaml").pipeline.select.k


def test_unknown_key_names_line_and_path(tmp_path: Path) -> None:
    path = minimal_pipeline(tmp_path / "p.yaml", data="{labeled_per_class: 5, labled: 3}")
    with pytest.raises(UserError, match=r"p.yaml:4: data.labled: unknown key"):
        load_pipeline_config(path)


def test_unknown_profile(tmp_path: Path) -> None:
    path = minimal_pipeline(tmp_path / "p.yaml")
    with pytest.raises(UserError, match=r"--profile fast: not defined .*Profiles: quick"):
        load_pipeline_config(path, profile="fast")


def test_wrong_class_count_is_one_error_before_any_work(tmp_path: Path) -> None:
    path = minimal_pipeline(tmp_path / "p.yaml", classes=100)
    with pytest.raises(UserError, match=r"teacher.yaml: Arch.class_num is 10 but Pipeline.num_classes is 100"):
        open_pipeline(path, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_baseline_must_train_the_distilled_student(tmp_path: Path) -> None:
    path = minimal_pipeline(tmp_path / "p.yaml")
    text = path.read_text().replace("baseline.yaml}", "baseline.yaml, overrides: {Arch.name: resnet14}}")
    path.write_text(text)
    with pytest.raises(UserError, match="baseline.yaml: Arch.name is 'resnet14' but the distilled student is"):
        open_pipeline(path)


def test_empty_labeled_set_fails_in_data_stage(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    root.mkdir()
    (root / "a.png").write_bytes(b"")
    (tmp_path / "labeled.txt").write_text("")
    (tmp_path / "pool.txt").write_text("a.png\n")
    (tmp_path / "val.txt").write_text("a.png 0\n")
    data = (f"{{source: lists, image_root: {root}, labeled: {tmp_path}/labeled.txt, "
            f"unlabeled: {tmp_path}/pool.txt, val: {tmp_path}/val.txt}}")
    pipe = open_pipeline(minimal_pipeline(tmp_path / "p.yaml", data=data), run_dir=tmp_path / "run")
    pipe.out = lambda s: None
    with pytest.raises(UserError, match="labeled.txt: the labeled set is empty"):
        pipe.run(only="data")


def test_label_out_of_range_names_file_and_line(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    root.mkdir()
    (tmp_path / "labeled.txt").write_text("a.png 0\nb.png 12\n")
    (tmp_path / "pool.txt").write_text("c.png\n")
    (tmp_path / "val.txt").write_text("a.png 0\n")
    data = (f"{{source: lists, image_root: {root}, labeled: {tmp_path}/labeled.txt, "
            f"unlabeled: {tmp_path}/pool.txt, val: {tmp_path}/val.txt}}")
    pipe = open_pipeline(minimal_pipeline(tmp_path / "p.yaml", data=data), run_dir=tmp_path / "run")
    pipe.out = lambda s: None
    with pytest.raises(UserError, match=r"train_labeled.txt:2: label 12 but Pipeline.num_classes is 10"):
        pipe.run(only="data")
