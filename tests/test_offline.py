"""Offline teacher: targets read from a soft-label store equal the teacher's eval-mode outputs on the un-augmented
image, distillation trains from them without building the teacher, and bad stores stop training before it starts.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers.configs import EVAL_OPS, PAD_CROP_OPS, write_config

from ssld.cli import main as ssld_main
from ssld.config import load_config
from ssld.config.schema import ModelSpec
from ssld.data import ImageListDataset, build_loader, build_transform, read_list
from ssld.data.soft_targets import dense_probs
from ssld.engine.offline_teacher import OfflineTeacher
from ssld.errors import UserError
from ssld.losses import build_loss
from ssld.models import create_model, load_weights, save_safetensors

LOSS = [{"DistillationKLDivLoss": {"weight": 1.0, "T": 4, "model_name_pairs": [["Student", "Teacher"]]}}]


def _teacher(seed: int) -> torch.nn.Module:
    """A random CIFAR ResNet-8 with non-trivial BN statistics (so eval mode differs from train mode)."""
    torch.manual_seed(seed)
    model = create_model(ModelSpec(name="cifar_resnet8"), 10)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _config(root: Path, teacher: Path, store: Path | None, out: Path, epochs: int = 1) -> dict[str, Any]:
    def split(lst: str, ops: list[Any], train: bool) -> dict[str, Any]:
        return {"dataset": {"name": "ImageNetDataset", "image_root": str(root), "cls_label_path": str(root / lst),
                            "transform_ops": ops, "soft_labels": str(store) if (store and train) else None},
                "sampler": {"batch_size": 32, "shuffle": train}, "loader": {"num_workers": 0}}

    return {
        "Global": {"output_dir": str(out), "epochs": epochs, "image_shape": [3, 28, 28], "seed": 0, "device": "cpu",
                   "log_interval": 1},
        "Arch": {"name": "DistillationModel", "class_num": 10, "teacher_bn_mode": "train",
                 "models": [{"Teacher": {"name": "cifar_resnet8", "pretrained": str(teacher)}},
                            {"Student": {"name": "cifar_resnet8"}}],
                 "freeze_params_list": [True, False], "infer_model_name": "Student"},
        "Loss": {"Train": LOSS},
        "Optimizer": {"name": "Momentum", "momentum": 0.9, "lr": {"name": "Cosine", "learning_rate": 0.05}},
        "DataLoader": {"Train": split("train.txt", PAD_CROP_OPS, True), "Eval": split("val.txt", EVAL_OPS, False)},
    }


def _label(root: Path, cfg_path: Path, teacher: Path, out: Path, lst: str = "train.txt", topk: int = 10) -> Path:
    code = ssld_main(["label", "--list", str(root / lst), "--root", str(root), "-c", str(cfg_path), "--weights",
                      str(teacher), "--out", str(out), "--topk", str(topk), "--workers", "0", "--batch-size", "32"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from ssld.data.fashion_mnist import export

    base = tmp_path_factory.mktemp("offline")
    root = base / "data"
    export(root, labeled_per_class=6, seed=0, val_size=40, pool_size=40)
    lines = (root / "train_labeled.txt").read_text() + (root / "unlabeled.txt").read_text()
    (root / "train.txt").write_text(lines)
    (root / "half.txt").write_text("".join(lines.splitlines(keepends=True)[::2]))
    teacher = base / "teacher.safetensors"
    save_safetensors(_teacher(1).state_dict(), teacher)
    cfg_path = write_config(base / "label.yaml", _config(root, teacher, None, base / "unused"))
    return {"base": base, "root": root, "teacher": teacher, "cfg": cfg_path,
            "store": _label(root, cfg_path, teacher, base / "store"),
            "store_top3": _label(root, cfg_path, teacher, base / "store_top3", topk=3),
            "store_half": _label(root, cfg_path, teacher, base / "store_half", lst="half.txt")}


def _offline_cfg(setup: dict[str, Path], store: Path, name: str, epochs: int = 1) -> Path:
    cfg = _config(setup["root"], setup["teacher"], store, setup["base"] / f"run_{name}", epochs)
    return write_config(setup["base"] / f"{name}.yaml", cfg)


def _teacher_probs(setup: dict[str, Path], indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's eval-mode logits and probabilities on the un-augmented (eval-transformed) images."""
    root = setup["root"]
    ds = ImageListDataset(read_list(root / "train.txt", root), build_transform(EVAL_OPS))
    images = torch.stack([ds[int(i)]["image"] for i in indices])
    model = create_model(ModelSpec(name="cifar_resnet8"), 10)
    load_weights(model, str(setup["teacher"]))
    with torch.inference_mode():
        logits = model.eval()(images)
    return logits, logits.softmax(-1)


@pytest.mark.parametrize("cached", [False, True])  # per-sample loading, and whole batches (ssld.data.batched)
def test_store_targets_equal_teacher_eval_outputs(setup: dict[str, Path], cached: bool) -> None:
    cfg = load_config(_offline_cfg(setup, setup["store"], "equiv"))
    cfg.DataLoader.Train.dataset.cache_images = cached
    loader, _ = build_loader(cfg.DataLoader.Train, train=True, seed=0)
    if cached:  # LoaderView -> SoftTargetDataset -> ImageListDataset
        assert loader.dataset.dataset.dataset.batched is not None
    batch = next(iter(loader))
    logits, probs = _teacher_probs(setup, batch["index"])
    assert batch["soft_target"].shape == (len(batch["index"]), 10)
    torch.testing.assert_close(batch["soft_target"], probs, atol=1e-3, rtol=2e-3)  # float16 storage
    # the configured loss sees the same numbers as with the online eval-mode teacher
    student = torch.randn_like(logits)
    loss_fn = build_loss(LOSS)
    offline = OfflineTeacher("Teacher", "store").add_targets({"Student": student}, batch, torch.device("cpu"))
    online = loss_fn({"Student": student, "Teacher": logits}, batch["label"])["loss"]
    torch.testing.assert_close(loss_fn(offline, batch["label"])["loss"], online, atol=2e-3, rtol=2e-3)


def test_topk_store_spreads_remaining_mass(setup: dict[str, Path]) -> None:
    cfg = load_config(_offline_cfg(setup, setup["store_top3"], "top3"))
    loader, _ = build_loader(cfg.DataLoader.Train, train=True, seed=0)
    batch = next(iter(loader))
    _, probs = _teacher_probs(setup, batch["index"])
    target = batch["soft_target"]
    torch.testing.assert_close(target.sum(-1), torch.ones(len(target)), atol=2e-3, rtol=0)
    top_p, top_i = probs.topk(3, dim=-1)
    torch.testing.assert_close(target.gather(1, top_i), top_p, atol=1e-3, rtol=2e-3)
    rest = target.scatter(1, top_i, float("nan"))
    expected = (1 - top_p.sum(-1, keepdim=True)) / 7
    torch.testing.assert_close(rest[~rest.isnan()].view(-1, 7), expected.expand(-1, 7), atol=1e-3, rtol=0)
    assert np.allclose(dense_probs(np.array([2, 0]), np.array([0.5, 0.3]), 4), [0.3, 0.1, 0.5, 0.1])


def test_offline_distillation_trains_without_teacher(setup: dict[str, Path]) -> None:
    from ssld.engine import train

    cfg = load_config(_offline_cfg(setup, setup["store"], "train", epochs=3))
    report = train(cfg)
    out = Path(cfg.Global.output_dir)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["train_loss"] for r in rows if "train_loss" in r]
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert losses[-1] < losses[0]  # the student moves towards the stored targets
    assert report["steps"] == 3 * 4 and report["count"] == 40
    state = torch.load(out / "checkpoints" / "latest.pt", weights_only=True)["model"]
    assert state and not any(k.startswith("models.Teacher.") for k in state)  # the teacher was never built


def _bad_store(setup: dict[str, Path], name: str, **manifest: Any) -> Path:
    store = setup["base"] / name
    shutil.copytree(setup["store"], store)
    data = json.loads((store / "manifest.json").read_text())
    (store / "manifest.json").write_text(json.dumps({**data, **manifest}))
    return store


@pytest.mark.parametrize(("case", "message"), [
    ("half", r"does not cover the training list: 50 of 100 images have no soft label \(first: /.*/data/images/train/\d+\.png\)"),
    ("classes", r"has 100 classes but the teacher 'Teacher' in Arch has 10"),
    ("arch", r"was labeled by 'cifar_resnet20' but the config's teacher 'Teacher' is 'cifar_resnet8'"),
    ("weights", r"labeled with other weights than the teacher's"),
    ("missing", r"soft-label store not found"),
    ("incomplete", r"incomplete"),
])
def test_bad_store_is_one_error_before_training(setup: dict[str, Path], case: str, message: str) -> None:
    from ssld.engine import train

    edits: dict[str, dict[str, Any]] = {"classes": {"num_classes": 100}, "arch": {"teacher": "cifar_resnet20"},
                                        "weights": {"weights_sha256": "0" * 64}, "incomplete": {"complete": False}}
    if case in edits:
        store = _bad_store(setup, f"bad_{case}", **edits[case])
    else:
        store = setup["store_half"] if case == "half" else setup["base"] / "no_such_store"
    cfg = load_config(_offline_cfg(setup, store, f"bad_{case}"))
    with pytest.raises(UserError, match=message) as err:
        train(cfg)
    assert str(err.value).startswith("DataLoader.Train.dataset.soft_labels: ")
    assert not Path(cfg.Global.output_dir).exists()


def test_gpu_check_smoke_runs_without_mining_extras(tmp_path: Path) -> None:
    """benchmarks/gpu_check.py --smoke on the CPU, with faiss/cv2/imagehash/onnx/torchdistill made unimportable
    (the lent GPU machine has only torch, timm and ssld's core dependencies)."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    code = ("import sys, runpy\n"
            "for m in ('faiss', 'cv2', 'imagehash', 'onnx', 'onnxruntime', 'skimage', 'matplotlib', 'torchdistill'):\n"
            "    sys.modules[m] = None\n"
            f"sys.path.insert(0, {str(root / 'benchmarks')!r})\n"
            "sys.argv = ['gpu_check.py', '--smoke']\n"
            f"runpy.run_path({str(root / 'benchmarks' / 'gpu_check.py')!r}, run_name='__main__')\n")
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "OUT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "gpu_bench.json").read_text())
    assert result["distill"][0]["checks"] == {"loss_finite": True, "teacher_unchanged": True, "student_changed": True}
    assert result["label"]["img_s"]["label"]["median_img_s"] > 0
    assert json.loads(proc.stdout.strip().splitlines()[-1])["device"] == "cpu"
