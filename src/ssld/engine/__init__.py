"""Training engine: the train/eval loop, optimizer and lr groups, schedules, precision, checkpoints, DDP helpers."""

from ssld.engine.evaluate import evaluate
from ssld.engine.jobs import train
from ssld.engine.optim import build_optimizer
from ssld.engine.scheduler import build_scheduler

__all__ = ["build_optimizer", "build_scheduler", "evaluate", "train"]
