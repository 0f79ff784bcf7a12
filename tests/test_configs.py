"""The shipped configs: every YAML validates, and the ImageNet recipes carry the reference's numbers.

The reference tables (../shared/reference/distillation_en.md) are transcribed below, so a typo in a config
(an epoch count, an L2 coefficient, a per-GPU batch, a learning rate) fails here. The heavier test runs
``ssld check`` (build every model, one forward/backward) on the Fashion-MNIST recipes.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest
import yaml
from helpers.configs import REFERENCE_ARCH
from helpers.paths import CONFIGS, ROOT

from ssld.config import SSLDConfig, load_config
from ssld.data.transforms import build_transform

ALL_CONFIGS = sorted(CONFIGS.rglob("*.yaml"))


def _kind(path: Path) -> str:
    """Training config (``Arch``), ``ssld pipeline`` file (``Pipeline``) or ``ssld ablate`` file (``Ablation``)."""
    sections = yaml.safe_load(path.read_text()) or {}
    for kind in ("Ablation", "Pipeline"):
        if kind in sections:
            return kind
    return "Arch"


PIPELINE_CONFIGS = [p for p in ALL_CONFIGS if _kind(p) == "Pipeline"]
ABLATION_CONFIGS = [p for p in ALL_CONFIGS if _kind(p) == "Ablation"]
TRAINING_CONFIGS = [p for p in ALL_CONFIGS if _kind(p) == "Arch"]
IMAGENET = CONFIGS / "imagenet"
FMNIST = CONFIGS / "fashion_mnist"


class Row(NamedTuple):
    """One row of the reference's training tables."""

    epochs: int
    l2: float
    global_batch: int
    cards: int
    lr: float
    top1: str


# "Distillation using large-scale dataset" (5M images) and "finetuning using ImageNet1k", as printed.
DISTILL_5M: dict[str, Row] = {
    "MobileNetV1": Row(360, 3e-5, 4096, 8, 1.6, "77.65%"),
    "MobileNetV2": Row(360, 1e-5, 3072, 8, 0.54, "76.34%"),
    "MobileNetV3_large_x1_0": Row(360, 1e-5, 5760, 24, 3.65625, "78.54%"),
    "MobileNetV3_small_x1_0": Row(360, 1e-5, 5760, 24, 3.65625, "70.11%"),
    "ResNet50_vd": Row(360, 7e-5, 1024, 32, 0.4, "82.07%"),
    "ResNet101_vd": Row(360, 7e-5, 1024, 32, 0.4, "83.41%"),
    "Res2Net200_vd_26w_4s": Row(360, 4e-5, 1024, 32, 0.4, "84.82%"),
}
FINETUNE_1K: dict[str, Row] = {
    "MobileNetV1": Row(30, 3e-5, 4096, 8, 0.016, "77.89%"),
    "MobileNetV2": Row(30, 1e-5, 3072, 8, 0.0054, "76.73%"),
    "MobileNetV3_large_x1_0": Row(30, 1e-5, 2048, 8, 0.008, "78.96%"),
    "MobileNetV3_small_x1_0": Row(30, 1e-5, 6400, 32, 0.025, "71.28%"),
    "ResNet50_vd": Row(60, 7e-5, 1024, 32, 0.004, "82.39%"),
    "ResNet101_vd": Row(30, 7e-5, 1024, 32, 0.004, "83.73%"),
    "Res2Net200_vd_26w_4s": Row(360, 4e-5, 1024, 32, 0.004, "85.13%"),
}
# The reference: ResNeXt101_32x16d_wsl teaches ResNet-series students, ResNet50_vd SSLD the MobileNet series.
TEACHER_OF = {s: ("ResNeXt101_32x16d_wsl", False) if "Res" in s else ("ResNet50_vd", True) for s in DISTILL_5M}
# Teacher choice: cosine_decay_warmup, lr 1.3, 120 epochs, batch 2048 (4 GPUs x 512), student MobileNetV3_large.
TEACHER_CHOICE = {  # file stem -> (teacher, use_ssld, student top-1)
    "ResNeXt101_32x16d_wsl_to_MobileNetV3_large_x1_0": ("ResNeXt101_32x16d_wsl", False, "75.78%"),
    "ResNet50_vd_to_MobileNetV3_large_x1_0": ("ResNet50_vd", False, "75.60%"),
    "ResNet50_vd_ssld_to_MobileNetV3_large_x1_0": ("ResNet50_vd", True, "76.00%"),
}


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _load(path: Path) -> SSLDConfig:
    return load_config(path)


def _student_spec(cfg: SSLDConfig):
    return cfg.Arch.model_specs()[cfg.Arch.infer_model_name]


def _global_batch(cfg: SSLDConfig, cards: int) -> int:
    return cfg.DataLoader.Train.sampler.batch_size * cards * cfg.Global.accum_steps


def test_config_tree_is_complete() -> None:
    names = {_rel(p) for p in ALL_CONFIGS}
    expected = (
        {f"configs/fashion_mnist/{n}.yaml" for n in ("teacher", "baseline", "distill", "finetune")}
        | {"configs/imagenet/mv3_large_x1_0_distill_mv3_small_x1_0.yaml"}
        | {f"configs/imagenet/ssld_distill/{s}.yaml" for s in DISTILL_5M}
        | {f"configs/imagenet/ssld_finetune/{s}.yaml" for s in FINETUNE_1K}
        | {f"configs/imagenet/teacher_choice/{s}.yaml" for s in TEACHER_CHOICE}
        | {f"configs/imagenet/supervised/{s}.yaml"
           for s in ("ResNet50_vd", "ResNeXt101_32x16d_wsl", "MobileNetV3_large_x1_0")}
    )
    assert expected <= names, f"missing configs: {sorted(expected - names)}"


@pytest.mark.parametrize("path", TRAINING_CONFIGS, ids=_rel)
def test_config_validates(path: Path) -> None:
    """Schema, model names, loss entries and both transform pipelines: the same checks `ssld check` starts with."""
    cfg = _load(path)
    for split in (cfg.DataLoader.Train, cfg.DataLoader.Eval):
        assert split is not None, "a recipe needs DataLoader.Train and DataLoader.Eval"
        build_transform(split.dataset.transform_ops)
    assert cfg.Global.image_shape[0] == 3


@pytest.mark.parametrize("path", [p for p in TRAINING_CONFIGS if "DistillationModel" in p.read_text()], ids=_rel)
def test_distillation_configs_freeze_exactly_the_teacher(path: Path) -> None:
    arch = _load(path).Arch
    assert arch.is_distillation
    assert arch.frozen_names() == ["Teacher"]
    assert arch.infer_model_name == "Student"
    assert arch.teacher_bn_mode == "train"
    teacher = arch.model_specs()["Teacher"]
    assert teacher.pretrained, "a frozen teacher without weights teaches nothing"


@pytest.mark.parametrize("path", PIPELINE_CONFIGS, ids=_rel)
def test_pipeline_config_validates(path: Path) -> None:
    from ssld.pipeline.config import load_pipeline_config

    load_pipeline_config(path)


@pytest.mark.parametrize("path", ABLATION_CONFIGS, ids=_rel)
def test_ablation_config_validates(path: Path) -> None:
    from ssld.pipeline.ablate import load_ablation

    load_ablation(path)


@pytest.mark.parametrize("student", DISTILL_5M)
def test_5m_distillation_rows_match_the_reference(student: str) -> None:
    row = DISTILL_5M[student]
    path = IMAGENET / "ssld_distill" / f"{student}.yaml"
    cfg = _load(path)
    opt = cfg.Optimizer
    assert cfg.Global.epochs == row.epochs
    assert opt.decay == pytest.approx(row.l2)
    assert opt.lr.learning_rate == pytest.approx(row.lr)
    assert opt.lr.name == "Cosine" and opt.lr.warmup_epoch > 0
    assert _global_batch(cfg, row.cards) == row.global_batch
    teacher = cfg.Arch.model_specs()["Teacher"]
    assert (teacher.name, teacher.use_ssld) == TEACHER_OF[student]
    assert _student_spec(cfg).name == student and _student_spec(cfg).pretrained is False
    assert [next(iter(e)) for e in cfg.Loss.Train] == ["DistillationDMLLoss"]
    assert row.top1 in path.read_text(), "the header must state the reference's top-1"


@pytest.mark.parametrize("student", FINETUNE_1K)
def test_finetune_rows_match_the_reference(student: str) -> None:
    row = FINETUNE_1K[student]
    path = IMAGENET / "ssld_finetune" / f"{student}.yaml"
    cfg = _load(path)
    distilled = _load(IMAGENET / "ssld_distill" / f"{student}.yaml")
    opt = cfg.Optimizer
    assert cfg.Arch.name == student and not cfg.Arch.is_distillation
    assert cfg.Global.epochs == row.epochs
    assert opt.decay == pytest.approx(row.l2)
    assert opt.lr.learning_rate == pytest.approx(row.lr)
    assert opt.lr.name == "Cosine" and opt.lr.warmup_epoch > 0
    assert _global_batch(cfg, row.cards) == row.global_batch
    assert cfg.Global.pretrained_model == f"{distilled.Global.output_dir}/student.safetensors"
    assert cfg.DataLoader.Train.dataset.cls_label_path.endswith("ILSVRC2012/train_list.txt")
    assert row.top1 in path.read_text()


@pytest.mark.parametrize("stem", TEACHER_CHOICE)
def test_teacher_choice_rows_match_the_reference(stem: str) -> None:
    teacher_name, use_ssld, top1 = TEACHER_CHOICE[stem]
    path = IMAGENET / "teacher_choice" / f"{stem}.yaml"
    cfg = _load(path)
    teacher = cfg.Arch.model_specs()["Teacher"]
    assert (teacher.name, teacher.use_ssld) == (teacher_name, use_ssld)
    assert _student_spec(cfg).name == "MobileNetV3_large_x1_0"
    assert cfg.Global.epochs == 120
    assert cfg.Optimizer.lr.learning_rate == pytest.approx(1.3)
    assert cfg.Optimizer.lr.name == "Cosine" and cfg.Optimizer.lr.warmup_epoch > 0
    assert _global_batch(cfg, 4) == 2048
    assert top1 in path.read_text()


def test_reference_example_keeps_the_documents_arch_block() -> None:
    path = IMAGENET / "mv3_large_x1_0_distill_mv3_small_x1_0.yaml"
    raw = yaml.safe_load(path.read_text())
    assert raw["Arch"] == REFERENCE_ARCH
    cfg = load_config(path, ["Arch.models.0.Teacher.pretrained=/weights/mv3_large_ssld.safetensors"])
    assert cfg.Arch.model_specs()["Teacher"].pretrained == "/weights/mv3_large_ssld.safetensors"


def test_fashion_mnist_recipes_chain_together() -> None:
    """teacher -> distill (teacher weights in, smaller student) -> finetune (distilled student in, lr/100)."""
    import timm

    import ssld.models.cifar  # noqa: F401  (registers the small-image nets)
    from ssld.models.names import resolve_model_name

    teacher, baseline, distill, finetune = (_load(FMNIST / f"{n}.yaml")
                                            for n in ("teacher", "baseline", "distill", "finetune"))
    specs = distill.Arch.model_specs()
    assert specs["Teacher"].name == teacher.Arch.name
    assert specs["Teacher"].pretrained == f"{teacher.Global.output_dir}/student.safetensors"
    assert specs["Student"].name == baseline.Arch.name == finetune.Arch.name
    assert finetune.Global.pretrained_model == f"{distill.Global.output_dir}/student.safetensors"
    assert finetune.Optimizer.lr.learning_rate == pytest.approx(distill.Optimizer.lr.learning_rate / 100)
    assert distill.Optimizer.decay < teacher.Optimizer.decay, "the reference: lower L2 when distilling"
    assert [next(iter(e)) for e in distill.Loss.Train] == ["DistillationDMLLoss"]
    for cfg in (teacher, baseline, finetune):
        assert cfg.DataLoader.Train.dataset.cls_label_path.endswith("train_labeled.txt")
    assert baseline.Optimizer == teacher.Optimizer and baseline.Global.epochs == teacher.Global.epochs
    assert len({c.Global.output_dir for c in (teacher, baseline, distill, finetune)}) == 4
    assert all(c.Global.image_shape == [3, 28, 28] for c in (teacher, baseline, distill, finetune))

    def params(name: str) -> int:
        net = timm.create_model(resolve_model_name(name), num_classes=10)
        return sum(p.numel() for p in net.parameters())

    assert params(specs["Student"].name) * 3 < params(specs["Teacher"].name), "the student must be clearly smaller"


@pytest.mark.parametrize("name", ["teacher", "baseline", "distill", "finetune"])
def test_fashion_mnist_recipes_pass_ssld_check(name: str, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Builds the models and runs one forward/backward step; missing data and weights are only warnings."""
    from ssld.cli import main

    monkeypatch.chdir(ROOT)
    rc = main(["check", "-c", str(FMNIST / f"{name}.yaml")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "ok: " in out and "one step at 3x28x28" in out
