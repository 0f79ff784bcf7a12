"""The Python API (``ssld.distill``, ``ssld.train``) on real Fashion-MNIST tensors: the docs' example runs as written
and learns, a run stopped by SIGTERM resumes at the exact step (bit-identical weights), DataLoaders and offline
soft-label stores are accepted, and mistakes are one line naming the argument."""

from __future__ import annotations

import copy
import json
import os
import runpy
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.fashion_mnist import fmnist
from helpers.paths import ROOT
from torch import nn
from torch.utils.data import DataLoader, Dataset

import ssld
from ssld.errors import UserError

DOC = ROOT / "docs" / "python_api.md"


def _epoch_losses(metrics: Path) -> list[float]:
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    return [r["train_loss"] for r in rows if r["kind"] == "epoch"]


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The first python block of docs/python_api.md, run as written in a fresh folder."""
    code = DOC.read_text().split("```python\n", 1)[1].split("```", 1)[0]
    cwd = tmp_path_factory.mktemp("api")
    (cwd / "example.py").write_text(code)
    old = os.getcwd()
    os.chdir(cwd)
    try:
        namespace = runpy.run_path(str(cwd / "example.py"), run_name="__main__")
    finally:
        os.chdir(old)
    return cwd, namespace


def test_docs_example_learns_and_returns_its_result(example: tuple[Path, dict]) -> None:
    cwd, ns = example
    result = ns["result"]
    assert isinstance(result, ssld.TrainResult)
    assert result.model is ns["student"] and result.epochs == 3 and result.steps == 3 * 16  # 800 images / 50
    assert result.report["count"] == 200 and 0.0 <= result.top1 <= result.top5 <= 1.0
    assert result.best_top1 >= result.top1 and result.img_s > 0
    for path in (result.weights, result.checkpoint, result.metrics, result.out_dir / "train_report.json"):
        assert (cwd / path).is_file(), path
    for run in ("teacher", "student"):  # each run's mean training loss falls epoch after epoch
        losses = _epoch_losses(cwd / "runs" / run / "metrics.jsonl")
        assert len(losses) == 3 and losses[2] < losses[0], (run, losses)
    teacher = json.loads((cwd / "runs" / "teacher" / "train_report.json").read_text())
    assert teacher["top1"] > 0.3  # chance is 0.1
    from safetensors.torch import load_file

    saved = load_file(str(cwd / "runs" / "teacher" / "student.safetensors"))
    for key, value in ns["teacher"].state_dict().items():  # distillation left the teacher as trained
        if "num_batches_tracked" not in key:
            assert torch.equal(value, saved[key]), key


def _cnn(width: int = 4) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4 * width, 10))


class RandomFlips(Dataset):
    """Fashion-MNIST tensors with a random horizontal flip drawn from torch's global RNG, optionally sending this
    process SIGTERM when the ``stop_at``-th item is fetched (a preempted job)."""

    def __init__(self, n: int, stop_at: int | None = None) -> None:
        images, labels = fmnist(n, split="train")
        self.images = torch.from_numpy(images).float().div(255).unsqueeze(1)
        self.labels = torch.from_numpy(labels)
        self.stop_at, self.fetched = stop_at, 0

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.fetched += 1
        if self.fetched == self.stop_at:
            signal.raise_signal(signal.SIGTERM)
        image = self.images[i]
        return (image.flip(-1) if torch.rand(()) < 0.5 else image), self.labels[i]


@pytest.fixture(scope="module")
def models() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    return _cnn(8), _cnn(4)


def _distill(models: tuple[nn.Module, nn.Module], data: Dataset, out: Path, **kw: object) -> ssld.TrainResult:
    teacher, student = (copy.deepcopy(m) for m in models)
    return ssld.distill(teacher, student, train=data, loss="jsd", ce_weight=0.5, epochs=2, lr=0.05,
                        batch_size=40, warmup_epochs=0.5, log_interval=1, out_dir=out, device="cpu", **kw)


def test_a_stopped_run_resumes_at_the_exact_step(models: tuple[nn.Module, nn.Module], tmp_path: Path) -> None:
    whole = _distill(models, RandomFlips(240), tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):  # SIGTERM while fetching batch 4: checkpoint after step 4, stop
        _distill(models, RandomFlips(240, stop_at=130), tmp_path / "cut")
    assert torch.load(tmp_path / "cut" / "checkpoints" / "latest.pt", weights_only=True)["step"] == 4
    resumed = _distill(models, RandomFlips(240), tmp_path / "cut", resume=True)
    assert resumed.steps == whole.steps == 12
    for (key, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), key
    steps = [json.loads(line)["step"] for line in resumed.metrics.read_text().splitlines()
             if json.loads(line)["kind"] == "train"]
    assert steps == list(range(1, 13))


def test_a_dataloader_gives_its_batch_size_and_a_loss_module_is_called_with_logits(tmp_path: Path) -> None:
    torch.manual_seed(0)
    data = RandomFlips(120)
    seen: list[tuple[int, ...]] = []

    def ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(logits.shape))
        return nn.functional.cross_entropy(logits, labels)

    class CE(nn.Module):
        def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return ce(logits, labels)

    result = ssld.train(_cnn(), train=DataLoader(data, batch_size=30, shuffle=True), val=data, loss=CE(),
                        epochs=1, out_dir=tmp_path, device="cpu", tensorboard=True)
    assert result.steps == 4 and seen == [(30, 10)] * 4 and result.report["count"] == 120
    assert any((tmp_path / "tensorboard").iterdir())


def test_offline_store_targets_stand_in_for_the_teacher(models: tuple[nn.Module, nn.Module], tmp_path: Path) -> None:
    from ssld.data.store import merge_shards, write_shard

    data = RandomFlips(80)
    names = [f"img/{i}.png" for i in range(len(data))]
    probs = torch.softmax(torch.randn(len(data), 10), dim=1).numpy()
    order = np.argsort(-probs, axis=1)
    store = tmp_path / "store"
    write_shard(store, 0, {"index": np.arange(len(data)), "topk_idx": order.astype(np.int32),
                           "topk_prob": np.take_along_axis(probs, order, 1).astype(np.float16),
                           "bad": np.zeros(0, np.int64), "missing": np.zeros(0, bool)})
    merge_shards(store, 1, {"k": 10, "num_classes": 10, "full": False}, names)
    targets: list[torch.Tensor] = []

    class Recording(nn.Module):
        def forward(self, student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            targets.append(teacher.detach().softmax(dim=1))
            return nn.functional.kl_div(student.log_softmax(1), teacher.log_softmax(1), log_target=True,
                                        reduction="batchmean")

    result = ssld.distill(None, copy.deepcopy(models[1]), train=DataLoader(data, batch_size=40), loss=Recording(),
                          soft_labels=store, paths=names, epochs=1, out_dir=tmp_path / "run", device="cpu")
    assert result.steps == 2
    torch.testing.assert_close(torch.cat(targets), torch.from_numpy(probs), atol=2e-3, rtol=0)  # float16 store


def test_mistakes_are_one_line_naming_the_argument(models: tuple[nn.Module, nn.Module], tmp_path: Path) -> None:
    data = RandomFlips(40)
    teacher, student = models
    cases = [
        ({"epochs": 0}, "ssld.distill: epochs: Input should be greater than or equal to 1"),
        ({"loss": "nope"}, "ssld.distill: loss: unknown 'nope'"),
        ({"loss": "kl", "loss_options": {"T": -1}}, "ssld.distill: loss[0].DistillationKLDivLoss.T"),
        ({"optimizer": "lbfgs"}, "ssld.distill: optimizer: unknown 'lbfgs'"),
        ({"options": {"Global": {"emaa": True}}}, "ssld.distill: Global.emaa: unknown key 'emaa'; did you mean"),
        ({"out_dir": tmp_path / "file.txt"}, "ssld.distill: out_dir: "),
    ]
    (tmp_path / "file.txt").write_text("")
    for kwargs, message in cases:
        with pytest.raises(UserError, match="^" + message.replace("[", r"\[").replace(".", r"\.")):
            ssld.distill(teacher, student, train=data, **{"out_dir": tmp_path / "x", **kwargs})
    with pytest.raises(UserError, match="^ssld.distill: teacher: None needs soft_labels"):
        ssld.distill(None, student, train=data, out_dir=tmp_path / "x")
    with pytest.raises(UserError, match="^ssld.train: train: items must be"):
        ssld.train(student, train=[("a.png", 1)] * 4, out_dir=tmp_path / "x", device="cpu")


DDP_SCRIPT = """
import json, sys
import torch
from torch import nn
from torch.utils.data import TensorDataset
import ssld
from ssld.data.fashion_mnist import find_idx_files, read_idx

idx = find_idx_files()
x = torch.from_numpy(read_idx(idx["train_x"])[:261].copy()).float().div(255).unsqueeze(1)
y = torch.from_numpy(read_idx(idx["train_y"])[:261].astype("int64"))
torch.manual_seed(0)
def cnn(w):
    return nn.Sequential(nn.Conv2d(1, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(4 * w, 10))
result = ssld.distill(cnn(8), cnn(4), train=TensorDataset(x[:160], y[:160]), val=TensorDataset(x[160:], y[160:]),
                      epochs=2, batch_size=16, lr=0.05, out_dir=sys.argv[1], device="cpu")
digest = float(sum(p.double().sum() for p in result.model.parameters()))
print(json.dumps({"rank": torch.distributed.get_rank(), "count": result.report["count"], "steps": result.steps,
                  "world": result.report["world_size"], "digest": digest}))
"""


@pytest.mark.slow
def test_torchrun_two_processes_shard_the_data_and_agree(tmp_path: Path) -> None:
    script = tmp_path / "ddp_api.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
           str(tmp_path / "out")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=150, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = sorted((json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")),
                  key=lambda r: r["rank"])
    assert [r["rank"] for r in rows] == [0, 1]
    for r in rows:  # 160 images / (2 ranks x 16) = 5 steps per epoch; 101 val images counted once
        assert (r["world"], r["steps"], r["count"]) == (2, 10, 101)
    assert rows[0]["digest"] == rows[1]["digest"]  # DDP kept the students identical
    assert (tmp_path / "out" / "student.safetensors").is_file()


def test_mining_steps_on_lists_of_paths(tmp_path: Path) -> None:
    """label -> dedup (with the store's embeddings) -> select, from Python lists of paths."""
    import shutil

    from helpers.configs import make_config
    from helpers.fashion_mnist import write_fashion_pngs

    from ssld.config.schema import ModelSpec
    from ssld.models import create_model, save_safetensors

    images = tmp_path / "img"
    pool = [str(images / name) for name, _ in write_fashion_pngs(images, 3, split="train")]
    copies = []
    for i, path in enumerate(pool[:3]):  # the references hold exact copies of three pool images
        copies.append(str(images / f"val_copy_{i}.png"))
        shutil.copy(path, copies[-1])
    reference = copies + [str(images / name) for name, _ in write_fashion_pngs(images, 1, split="test")]
    torch.manual_seed(0)
    weights = tmp_path / "teacher.safetensors"
    save_safetensors(create_model(ModelSpec(name="resnet8"), 10).state_dict(), weights)
    cfg = make_config(tmp_path, {"name": "resnet8", "class_num": 10})

    labeled = ssld.label(pool, cfg, tmp_path / "store", root=images, weights=str(weights))
    assert labeled.count == 30 and labeled.skipped == []
    cleaned = ssld.dedup(pool, reference, cfg, tmp_path / "dedup", root=images, weights=str(weights),
                         store=labeled.store)
    kept = cleaned.kept_list.read_text()
    assert cleaned.removed >= 3 and not any(Path(p).name in kept for p in pool[:3])
    bare = ssld.dedup(pool, reference, None, tmp_path / "dedup_bare", root=images)  # no teacher: hashes catch them
    assert bare.removed >= 3 and bare.report["teacher"] is None
    assert not any(Path(p).name in bare.kept_list.read_text() for p in pool[:3])
    chosen = ssld.select(labeled.store, 2, tmp_path / "selected.txt", keep=cleaned.kept_list)
    lines = chosen.out.read_text().splitlines()
    assert 0 < len(lines) <= 2 * 10 and all(line.split()[0] in kept for line in lines)
    with pytest.raises(UserError, match="^ssld.label: weights: required"):
        ssld.label(pool, cfg, tmp_path / "store2", root=images)
