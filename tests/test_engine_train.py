"""Training runs on real Fashion-MNIST subsets: it learns, distillation leaves the teacher untouched, bad images
are skipped and reported, finetune starts from a distilled student, and ``ssld eval``/``ssld check`` work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers.configs import distill_config, supervised_config, write_config
from helpers.fashion_mnist import export_fashion_mnist

from ssld.cli import main
from ssld.config import load_config
from ssld.engine import evaluate, train


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_fashion_mnist(tmp_path_factory.mktemp("fm"), labeled_per_class=100, val_size=300, pool_size=200)


@pytest.fixture(scope="module")
def teacher(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A supervised run that must clearly learn: ~190 SGD steps on 1,000 labeled images."""
    out = tmp_path_factory.mktemp("teacher")
    cfg = supervised_config(data, out, epochs=6, eval_interval=3)
    cfg["Optimizer"]["lr"] = {"name": "Cosine", "learning_rate": 0.1, "warmup_epoch": 0.5}
    report = train(load_config(write_config(out / "teacher.yaml", cfg)))
    assert report["count"] == 300 and report["steps"] == 6 * 32
    return out


def test_supervised_run_clearly_learns(teacher: Path) -> None:
    report = json.loads((teacher / "train_report.json").read_text())
    assert report["top1"] > 0.6, report  # chance is 0.10
    assert report["top5"] > report["top1"]
    rows = [json.loads(line) for line in (teacher / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["kind"] == "train"]
    assert train_rows[-1]["loss"] < train_rows[0]["loss"]
    assert {"epoch", "step", "lr", "loss", "CELoss", "img_s", "time"} <= set(train_rows[0])
    epoch_rows = [r for r in rows if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epoch_rows] == list(range(1, 7))
    assert [r["epoch"] for r in epoch_rows if "top1" in r] == [3, 6]
    assert {"lr", "img_s", "time", "train_loss", "train_CELoss"} <= set(epoch_rows[0])
    for name in ("checkpoints/latest.pt", "checkpoints/best.pt", "student.safetensors"):
        assert (teacher / name).is_file(), name


def _teacher_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.models["Teacher"].state_dict().items() if "num_batches" not in k}


@pytest.mark.parametrize("bn_mode", ["train", "eval"])
def test_distillation_keeps_the_teacher_bit_identical(data: Path, teacher: Path, tmp_path: Path, bn_mode: str) -> None:
    cfg = distill_config(data, tmp_path / "out", str(teacher / "student.safetensors"), bn_mode=bn_mode)
    unlabeled = data / "mixed.txt"  # labeled + unlabeled rows: the unlabeled ones train through the KL term
    unlabeled.write_text((data / "train_labeled.txt").read_text()[:4000] + (data / "unlabeled.txt").read_text())
    cfg["DataLoader"]["Train"]["dataset"]["cls_label_path"] = str(unlabeled)
    cfg["Global"]["max_steps_per_epoch"] = 6
    loaded = load_config(write_config(tmp_path / "d.yaml", cfg))
    from ssld.engine.model_setup import build

    before = _teacher_state(build(loaded))
    train(loaded)
    ckpt = torch.load(tmp_path / "out" / "checkpoints" / "latest.pt", weights_only=True)
    after = {k.removeprefix("models.Teacher."): v for k, v in ckpt["model"].items() if k.startswith("models.Teacher.")}
    assert before.keys() <= after.keys()
    for k, v in before.items():
        assert torch.equal(v, after[k]), f"teacher {k} changed ({bn_mode} BN mode)"
    student_changed = any(not torch.equal(ckpt["model"][f"models.Student.{k}"], v)
                          for k, v in build(loaded).models["Student"].state_dict().items() if "num_batches" not in k)
    assert student_changed

    # the saved student alone evaluates through `ssld eval` on the distillation config
    out_json = tmp_path / "eval.json"
    args = ["eval", "-c", str(tmp_path / "d.yaml"), "--weights", str(tmp_path / "out" / "student.safetensors")]
    assert main([*args, "--out", str(out_json)]) == 0
    assert json.loads(out_json.read_text())["count"] == 300


def test_finetune_starts_from_the_distilled_student(data: Path, teacher: Path, tmp_path: Path) -> None:
    cfg = supervised_config(data, tmp_path / "ft", epochs=1, max_steps_per_epoch=1, pretrained_model=str(
        teacher / "student.safetensors"), eval_during_train=False)
    cfg["Optimizer"]["lr"] = {"name": "Constant", "learning_rate": 1e-12}
    cfg["Optimizer"]["momentum"] = 0.0
    train(load_config(write_config(tmp_path / "ft.yaml", cfg)))
    from safetensors.torch import load_file

    start, end = load_file(teacher / "student.safetensors"), load_file(tmp_path / "ft" / "student.safetensors")
    for k, v in start.items():
        if "running" not in k and "num_batches" not in k:
            assert torch.allclose(v, end[k], atol=1e-9), k


def test_unreadable_images_are_skipped_and_reported(data: Path, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "empty.png").write_bytes(b"")
    (broken / "junk.png").write_bytes(b"not a png at all")
    lines = (data / "train_labeled.txt").read_text().splitlines()[:62]
    lst = tmp_path / "with_bad.txt"
    unlabeled = (data / "unlabeled.txt").read_text().splitlines()[:2]
    lst.write_text("\n".join(lines + unlabeled + [f"{broken}/empty.png 1", f"{broken}/junk.png 2"]) + "\n")
    cfg = supervised_config(data, tmp_path / "out", epochs=1, eval_during_train=False)
    cfg["DataLoader"]["Train"]["dataset"]["cls_label_path"] = str(lst)
    report = train(load_config(write_config(tmp_path / "b.yaml", cfg)))
    assert report["skipped_images"] == 2
    assert "2 of 66 training images are unlabeled" in caplog.text  # single model: CE skips them, with a warning
    assert "skipped 2 unreadable images" in caplog.text
    saved = json.loads((tmp_path / "out" / "train_report.json").read_text())
    assert saved["skipped"] == sorted([f"{broken}/empty.png", f"{broken}/junk.png"])


def test_eval_counts_each_sample_once() -> None:
    net = torch.nn.Linear(4, 3)
    x = torch.randn(5, 4)
    labels = net(x).argmax(1)
    labels[0] = (labels[0] + 1) % 3  # one wrong prediction out of 5 distinct samples
    batch = {"image": x, "label": labels, "index": torch.arange(5), "bad": []}
    padded = {"image": x[:2], "label": labels[:2], "index": torch.arange(2), "bad": []}  # sampler padding repeats
    out = evaluate(net, [batch, padded])
    assert out["count"] == 5 and out["top1"] == pytest.approx(0.8) and out["top5"] == 1.0


def test_check_command_builds_and_steps(data: Path, teacher: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture) -> None:
    cfg = distill_config(data, tmp_path / "never", str(teacher / "student.safetensors"))
    cfg["DataLoader"]["Eval"]["dataset"]["cls_label_path"] = str(tmp_path / "missing_val.txt")
    cfg["Arch"]["models"][1]["Student"]["pretrained"] = True  # timm weights: unavailable offline -> warning
    cfg["DataLoader"]["Train"]["dataset"]["soft_labels"] = str(tmp_path / "no_store")
    cfg["Global"]["pretrained_model"] = str(tmp_path / "no_weights.safetensors")
    assert main(["check", "-c", str(write_config(tmp_path / "c.yaml", cfg))]) == 0
    stdout = capsys.readouterr().out
    assert "DistillationModel" in stdout and stdout.strip().splitlines()[-1].startswith("ok:")
    assert "DataLoader.Eval.dataset.cls_label_path: not found" in caplog.text
    assert "random weights" in caplog.text
    assert "soft_labels: soft-label store not found" in caplog.text
    assert "Global.pretrained_model: not found" in caplog.text
    assert not (tmp_path / "never").exists()
