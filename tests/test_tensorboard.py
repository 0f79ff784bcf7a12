"""TensorBoard scalars (``Global.tensorboard``): the logged rows read back from the event files, and a resumed run
that hides the killed run's events after its checkpoint instead of showing them twice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers.configs import supervised_config, write_config
from helpers.fashion_mnist import export_fashion_mnist

from ssld.config import load_config
from ssld.engine import train

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_fashion_mnist(tmp_path_factory.mktemp("fm"), labeled_per_class=10, val_size=40, pool_size=10)


def _run(data: Path, out: Path, epochs: int, **global_overrides: object) -> dict:
    cfg = supervised_config(data, out, epochs=epochs, log_interval=1, tensorboard=True, **global_overrides)
    return train(load_config(write_config(out.parent / f"{out.name}.yaml", cfg)))


def _scalars(out: Path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_every_logged_number_is_a_scalar_at_its_step(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    report = _run(data, out, epochs=2)
    tb = _scalars(out)
    rows = _rows(out)
    train_rows = [r for r in rows if r["kind"] == "train"]
    assert len(train_rows) == report["steps"] == 8  # 100 images, batch 32, 2 epochs
    for key in ("loss", "CELoss", "lr", "img_s"):
        assert [s for s, _ in tb[f"train/{key}"]] == [r["step"] for r in train_rows], key
        assert [v for _, v in tb[f"train/{key}"]] == pytest.approx([r[key] for r in train_rows], rel=1e-6), key
    epoch_rows = [r for r in rows if r["kind"] == "epoch"]
    assert [s for s, _ in tb["val/top1"]] == [r["step"] for r in epoch_rows] == [4, 8]
    assert [v for _, v in tb["val/top1"]] == pytest.approx([r["top1"] for r in epoch_rows])
    assert [v for _, v in tb["val/top5"]] == pytest.approx([r["top5"] for r in epoch_rows])
    assert {"epoch/train_loss", "epoch/lr", "epoch/img_s", "val/loss"} <= set(tb)
    assert not any(tag.endswith(("/count", "/bad", "/time", "/step", "/epoch")) for tag in tb)


def test_resume_replaces_the_events_after_the_checkpoint(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    _run(data, out, epochs=1)  # checkpoint at step 4
    first = tmp_path / "after_epoch_1.pt"
    shutil.copy(out / "checkpoints" / "latest.pt", first)
    _run(data, out, epochs=2, checkpoints=str(out / "checkpoints" / "latest.pt"))  # steps 5-8
    _run(data, out, epochs=2, checkpoints=str(first))  # again from step 4: steps 5-8 written a second time
    steps = [s for s, _ in _scalars(out)["train/loss"]]
    assert steps == [r["step"] for r in _rows(out) if r["kind"] == "train"] == list(range(1, 9))


def test_off_by_default(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = supervised_config(data, out, epochs=1)
    train(load_config(write_config(tmp_path / "c.yaml", cfg)))
    assert (out / "metrics.jsonl").is_file() and not (out / "tensorboard").exists()
