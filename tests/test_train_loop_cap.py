"""A capped epoch (``Global.max_steps_per_epoch``) takes exactly as many batches from the loader as it runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ssld.engine.metrics import MetricsLog
from ssld.engine.train_loop import Position, StepContext, StopRequest, train_epoch
from ssld.models.precision import Precision


class _Scheduler:
    def step_update(self, num_updates: int) -> None:
        pass


class _CE(nn.Module):
    def forward(self, outputs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        loss = nn.functional.cross_entropy(outputs, labels)
        return {"loss": loss, "CELoss": loss}


def _context(tmp_path: Path, iters: int, accum: int) -> StepContext:
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    precision = Precision("cpu", None)
    return StepContext(
        model=model, student=model, loss_fn=_CE(), optimizer=optimizer, scheduler=_Scheduler(),
        scaler=torch.amp.GradScaler("cpu", enabled=False), precision=precision, device=torch.device("cpu"),
        iters_per_epoch=iters, accum_steps=accum, clip_grad_norm=None, channels_last=False, log_interval=1,
        save_steps=None, metrics=MetricsLog(tmp_path / "metrics.jsonl", True), save=lambda _: None,
        stop=StopRequest(),
    )


def _batches(fetched: list[int]) -> Iterator[dict[str, Any]]:
    generator = torch.Generator().manual_seed(0)
    for i in range(100):
        fetched.append(i)
        yield {"image": torch.randn(4, 3, 2, 2, generator=generator), "label": torch.arange(4) % 3,
               "bad": [-1] * 4}


def test_capped_epoch_fetches_no_extra_batch(tmp_path: Path) -> None:
    for accum in (1, 2):
        fetched: list[int] = []
        pos = Position()
        result = train_epoch(_context(tmp_path, iters=5, accum=accum), _batches(fetched), pos)
        assert fetched == [0, 1, 2, 3, 4], accum
        assert (pos.batch, pos.step, result.images) == (5, 5, 20)
        assert pos.updates == (5 if accum == 1 else 3)


def test_a_finished_epoch_fetches_nothing(tmp_path: Path) -> None:
    fetched: list[int] = []
    pos = Position(batch=5)
    train_epoch(_context(tmp_path, iters=5, accum=1), _batches(fetched), pos)
    assert fetched == []
