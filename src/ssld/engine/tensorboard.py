"""TensorBoard scalars beside ``metrics.jsonl`` (``Global.tensorboard: true``), written by rank 0.

Every row the run logs also becomes scalars at its ``step``: ``train/<part>`` (each loss term and the weighted
``loss``), ``train/lr`` and ``train/img_s`` every ``log_interval`` iterations; per epoch ``epoch/train_<part>``,
``epoch/lr``, ``epoch/img_s`` and, when it evaluated, ``val/top1``, ``val/top5``, ``val/loss`` (``val_ema/...``
for the EMA weights). The event files live in ``<output_dir>/tensorboard``; a resumed run hides the killed run's
events after the checkpoint's step (``purge_step``), as ``metrics.jsonl`` drops its rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ssld.engine.metrics import MetricsLog
from ssld.errors import UserError
from ssld.utils import distributed as dist

KEY = "Global.tensorboard"
_NOT_SCALARS = {"kind", "epoch", "step", "time", "count", "bad", "ema_count", "ema_bad"}


def scalars(row: dict[str, Any]) -> Iterator[tuple[str, float]]:
    """``(tag, value)`` for each numeric field of a ``metrics.jsonl`` row."""
    epoch_row = row.get("kind") == "epoch"
    for key, value in row.items():
        if key in _NOT_SCALARS or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not epoch_row:
            yield f"train/{key}", float(value)
        elif key.startswith("train_") or key in ("lr", "img_s"):
            yield f"epoch/{key}", float(value)
        elif key.startswith("ema_"):
            yield f"val_ema/{key.removeprefix('ema_')}", float(value)
        else:
            yield f"val/{key}", float(value)


class TensorBoardLog(MetricsLog):
    """``metrics.jsonl`` rows, and the same rows as TensorBoard scalars (see module docstring)."""

    def __init__(self, path: Path, enabled: bool, log_dir: Path, purge_step: int) -> None:
        super().__init__(path, enabled)
        self.writer: Any = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise UserError(f"{KEY}: needs the tensorboard package (pip install tensorboard)") from None
            self.writer = SummaryWriter(str(log_dir), purge_step=purge_step)

    def write(self, row: dict[str, Any]) -> None:
        super().write(row)
        if self.writer is None:
            return
        step = int(row.get("step", 0))
        for tag, value in scalars(row):
            self.writer.add_scalar(tag, value, step, walltime=row.get("time"))
        if row.get("kind") == "epoch":
            self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file (the end of the run)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def metrics_log(out: Path, tensorboard: bool, resume_step: int) -> MetricsLog:
    """The run's log under ``out``: rows after ``resume_step`` (-1: a fresh run, none kept) are dropped."""
    main = dist.is_main()
    if tensorboard:
        log: MetricsLog = TensorBoardLog(out / "metrics.jsonl", main, out / "tensorboard", resume_step + 1)
    else:
        log = MetricsLog(out / "metrics.jsonl", main)
    log.truncate_after(resume_step)
    return log


def close(log: MetricsLog) -> None:
    """Close the TensorBoard event file of ``log``, if it writes one."""
    if isinstance(log, TensorBoardLog):
        log.close()
