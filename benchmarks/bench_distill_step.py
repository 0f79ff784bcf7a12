"""(a) ssld's distillation step vs a hand-written PyTorch loop and timm's ``LogitDistillationTask``; (e) peak memory.

All three run the same teacher (ResNet-20) and student (ResNet-8) weights, the same ssld DataLoader (Fashion-MNIST
PNGs, the distill recipe's augmentation, batch 128), the same precision and memory format, KL at T=4 and SGD
momentum. ssld runs through its own ``train_epoch`` (the code ``ssld train`` runs: StepContext, loss registry,
scheduler, metrics); the bare loop is the minimum a user would write. Two timings: end to end over the loader,
and step only over batches decoded once beforehand (isolates framework overhead from image decoding).

``--memory VARIANT`` runs one variant alone (a fresh process per variant) and prints its peak RSS.

Run: ``PYTHONPATH=src python benchmarks/bench_distill_step.py [--quick]``
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import common
import torch
import torch.nn.functional as F
from torch import nn

Batches = Callable[[int], Iterable[dict[str, Any]]]


class SsldStep:
    """ssld's training step as ``ssld train`` builds it (model, loss, optimizer, scheduler, precision)."""

    def __init__(self, cfg: Any, device: torch.device | None = None, offline: tuple[nn.Module, Any] | None = None):
        """``offline``: (student-only model, stand-in teacher) instead of what the config builds."""
        from ssld.engine.metrics import MetricsLog
        from ssld.engine.model_setup import build, prepare
        from ssld.engine.offline_teacher import build_offline
        from ssld.engine.optim import build_optimizer
        from ssld.engine.run_setup import build_train_loss
        from ssld.engine.scheduler import build_scheduler
        from ssld.engine.train_loop import StepContext, StopRequest
        from ssld.models.precision import resolve_precision

        device = device or torch.device("cpu")
        self.device = device
        offline = offline or build_offline(cfg)
        self.model = offline[0] if offline else build(cfg)
        optimizer = build_optimizer(self.model, cfg.Optimizer, cfg.Arch.lr_mult_list)
        tm = prepare(self.model, cfg, device)
        precision = resolve_precision(cfg.AMP, device)
        self.tmp = tempfile.TemporaryDirectory(prefix="ssld_bench_")
        self.ctx = StepContext(
            model=tm.model, student=tm.student, loss_fn=build_train_loss(cfg).to(device), optimizer=optimizer,
            scheduler=build_scheduler(optimizer, cfg.Optimizer, 10_000, 1), scaler=precision.grad_scaler(cfg.AMP),
            precision=precision, device=device, iters_per_epoch=0, accum_steps=1, clip_grad_norm=None,
            channels_last=cfg.Global.channels_last, log_interval=cfg.Global.log_interval, save_steps=None,
            metrics=MetricsLog(Path(self.tmp.name) / "metrics.jsonl", True), save=lambda _: None,
            stop=StopRequest(), offline=offline[1] if offline else None,
        )

    def run(self, batches: Iterable[dict[str, Any]], steps: int) -> float:
        from ssld.engine.train_loop import Position, train_epoch

        self.ctx.iters_per_epoch = steps
        with common.DeviceTimer(self.device) as t:
            self.last = train_epoch(self.ctx, itertools.islice(batches, steps), Position())
        return t.seconds


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, T: float = common.KD_T) -> torch.Tensor:
    """T^2 KL(softmax(t/T) || softmax(s/T)), batch mean: what the bare loop computes."""
    return F.kl_div(F.log_softmax(student.float() / T, 1), F.log_softmax(teacher.float() / T, 1),
                    reduction="batchmean", log_target=True) * T * T


class BareStep:
    """The hand-written loop: teacher forward without grad, student forward/backward, SGD step."""

    def __init__(self, teacher: nn.Module, student: nn.Module, cfg: Any, inference_mode: bool = False,
                 device: torch.device | None = None) -> None:
        self.device = device or torch.device("cpu")
        self.teacher = copy.deepcopy(teacher).to(self.device).eval()
        self.student = copy.deepcopy(student).to(self.device)
        self.channels_last = cfg.Global.channels_last
        if self.channels_last:
            self.teacher.to(memory_format=torch.channels_last)
            self.student.to(memory_format=torch.channels_last)
        self.dtype = torch.bfloat16 if cfg.AMP is not None else None
        self.inference_mode = inference_mode
        opt = cfg.Optimizer
        self.opt = torch.optim.SGD(self.student.parameters(), lr=opt.lr.learning_rate, momentum=opt.momentum,
                                   weight_decay=opt.decay)

    def _teacher(self, x: torch.Tensor) -> torch.Tensor:
        if self.inference_mode:
            with torch.inference_mode():
                out = self.teacher(x)
            return out.clone()
        with torch.no_grad():
            return self.teacher(x)

    def run(self, batches: Iterable[dict[str, Any]], steps: int) -> float:
        self.student.train()
        with common.DeviceTimer(self.device) as t:
            for batch in itertools.islice(batches, steps):
                x = batch["image"].to(self.device, non_blocking=True)
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
                    target = self._teacher(x)  # teacher first, as ssld does: ~10% faster on CPU than after
                    loss = kd_loss(self.student(x), target)  # the student, whose saved activations are then live
                loss.backward()
                self.opt.step()
                self.opt.zero_grad(set_to_none=True)
        return t.seconds


class TimmStep:
    """timm's ``LogitDistillationTask`` (KL at T=4, distillation weight 1, task weight 0) with SGD."""

    def __init__(self, teacher: nn.Module, student: nn.Module, cfg: Any) -> None:
        from timm.task import LogitDistillationTask

        student, teacher = copy.deepcopy(student), copy.deepcopy(teacher)
        for m in (student, teacher):  # timm reads in_chans off the model; ssld's small-image nets take RGB
            if not hasattr(m, "in_chans"):
                m.in_chans = 3
        self.task = LogitDistillationTask(student, teacher, criterion=nn.CrossEntropyLoss(), distill_loss_weight=1.0,
                                          task_loss_weight=0.0, temperature=common.KD_T, device=torch.device("cpu"),
                                          verbose=False)
        opt = cfg.Optimizer
        self.opt = torch.optim.SGD(self.task.trainable_module.parameters(), lr=opt.lr.learning_rate,
                                   momentum=opt.momentum, weight_decay=opt.decay)

    def run(self, batches: Iterable[dict[str, Any]], steps: int) -> float:
        self.task.train()
        with common.Timer() as t:
            for batch in itertools.islice(batches, steps):
                out = self.task(batch["image"], batch["label"])
                out["loss"].backward()
                self.opt.step()
                self.opt.zero_grad(set_to_none=True)
        return t.seconds


def loader_batches(cfg: Any) -> Batches:
    """Batches of a fresh pass (epoch ``e``) over ssld's training DataLoader for the config."""
    from ssld.data import build_loader

    loader, sampler = build_loader(cfg.DataLoader.Train, train=True, seed=0)

    def batches(epoch: int) -> Iterator[dict[str, Any]]:
        sampler.set_epoch(epoch)
        sampler.set_start_batch(0, cfg.DataLoader.Train.sampler.batch_size)
        return iter(loader)

    return batches


def cached_batches(cfg: Any, steps: int) -> Batches:
    """The first ``steps`` batches decoded once; every round replays them (no decoding in the timing)."""
    cached = list(itertools.islice(loader_batches(cfg)(0), steps))
    return lambda _epoch: iter(cached)


def make_runner(step: Any, batches: Batches, steps: int) -> Callable[[], float]:
    epoch = itertools.count()
    return lambda: step.run(batches(next(epoch)), steps)


def setup(quick: bool, per_class: int | None = None) -> tuple[Path, Any]:
    """The Fashion-MNIST data and the KD config with the trained teacher."""
    data = common.fashion_mnist(per_class or (500 if quick else 1000))
    teacher = common.teacher(data, epochs=2 if quick else 4)
    return data, common.load(common.distill_config(data, common.OUT / "step", str(teacher)))


def compare(quick: bool, rounds: int, steps: int, per_class: int | None = None) -> dict[str, Any]:
    """(a): ssld vs bare vs timm, end to end and step only, interleaved rounds."""
    _, cfg = setup(quick, per_class)
    ssld = SsldStep(cfg)
    teacher, student = ssld.model.models["Teacher"], ssld.model.models["Student"]
    steps_of = {"bare": BareStep(teacher, student, cfg), "timm": TimmStep(teacher, student, cfg), "ssld": ssld}
    out: dict[str, Any] = {"steps_per_round": steps, "rounds": rounds, "batch_size": 128, "precision": "float32",
                           "memory_format": "contiguous", "workers": 2}
    for mode, batches in (("loader", loader_batches(cfg)), ("cached", cached_batches(cfg, steps))):
        runners = {name: make_runner(s, batches, steps) for name, s in steps_of.items()}
        times = common.interleaved(runners, rounds)
        out[mode] = {
            "img_s": {n: common.summary(t, steps * 128) for n, t in times.items()},
            "ssld_over_bare": common.ratio_stats(times, "ssld", "bare"),
            "timm_over_bare": common.ratio_stats(times, "timm", "bare"),
            "seconds": times,
        }
    return out


def memory(variant: str, steps: int, quick: bool, per_class: int | None = None) -> dict[str, Any]:
    """One variant alone in this (fresh) process: peak RSS after ``steps`` steps over the loader."""
    data, cfg = setup(quick, per_class)
    before = common.max_rss_mb()
    batches = loader_batches(cfg)
    if variant == "ssld":
        step: Any = SsldStep(cfg)
    elif variant == "ssld_offline":
        from bench_offline import store_for

        offline_cfg = common.load(common.distill_config(data, common.OUT / "step", cfg.Arch.models[0]["Teacher"]
                                                        .pretrained, store=str(store_for(data, cfg))))
        step, batches = SsldStep(offline_cfg), loader_batches(offline_cfg)
    else:
        from ssld.models import build_model

        model = build_model(cfg.Arch)
        cls = {"bare": BareStep, "timm": TimmStep}[variant]
        step = cls(model.models["Teacher"], model.models["Student"], cfg)
        del model
    step.run(batches(0), steps)
    return {"variant": variant, "steps": steps, "rss_after_import_mb": before, "peak_rss_mb": common.max_rss_mb()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds and steps")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--per-class", type=int, help="training images per class (default 500 quick, 1000 full)")
    ap.add_argument("--memory", choices=("ssld", "bare", "timm", "ssld_offline"), help="peak RSS of one variant")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    if args.memory:
        print(json.dumps(memory(args.memory, args.steps or (4 if args.quick else 5), args.quick, args.per_class)))
        return
    result = compare(args.quick, args.rounds or (3 if args.quick else 5), args.steps or (4 if args.quick else 5),
                     args.per_class)
    result["machine"] = common.machine()
    common.write_result("distill_step", result)
    print(json.dumps(result, default=str))  # one line: run_all reads the last line


if __name__ == "__main__":
    main()
