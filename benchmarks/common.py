"""Shared pieces of the benchmark suite: machine facts, the Fashion-MNIST data, configs, interleaved timing.

Every comparison runs its variants in the same process, alternating them round by round (A, B, C, A, B, C, ...)
after one warm-up round, and reports the median and the min-max spread of the per-round ratios, so that a
machine that gets busier or quieter during the run shifts all variants alike.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench_out"
NORMALIZE = {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.286] * 3, "std": [0.353] * 3, "order": ""}}
TRAIN_OPS: list[Any] = [{"DecodeImage": {"to_rgb": True}}, {"Pad": {"padding": 2}}, {"RandomCrop": {"size": 28}},
                        {"RandFlipImage": {"flip_code": 1}}, NORMALIZE]
EVAL_OPS: list[Any] = [{"DecodeImage": {"to_rgb": True}}, NORMALIZE]
TEACHER, STUDENT = "cifar_resnet20", "cifar_resnet8"  # configs/fashion_mnist/distill.yaml
KD_T = 4.0


def machine() -> dict[str, Any]:
    """CPU model, core count and library versions (what docs/benchmarks.md records)."""
    import timm
    import torch

    model = platform.processor()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    info: dict[str, Any] = {"cpu": model, "cores": os.cpu_count(), "torch": torch.__version__,
                            "timm": timm.__version__, "python": platform.python_version(),
                            "torch_threads": torch.get_num_threads()}
    try:
        import torchdistill

        info["torchdistill"] = torchdistill.__version__
    except ImportError:
        info["torchdistill"] = None
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    info["load_avg_1m"] = os.getloadavg()[0]
    return info


def fashion_mnist(labeled_per_class: int = 1000, val_size: int = 2000) -> Path:
    """Real Fashion-MNIST PNGs and lists under bench_out/fmnist (written once): ``train_labeled.txt`` has
    ``labeled_per_class`` images per class, ``val.txt`` a class-balanced ``val_size`` of the test set."""
    from ssld.data.fashion_mnist import export

    out = OUT / f"fmnist_{labeled_per_class}"
    export(out, labeled_per_class=labeled_per_class, seed=0, val_size=val_size, pool_size=0)
    return out


def split(data: Path, list_name: str, batch_size: int, train: bool, workers: int = 2,
          store: str | None = None, **loader: Any) -> dict[str, Any]:
    """A ``DataLoader.Train``/``Eval`` section over ``data/list_name`` (the distill recipe's transforms)."""
    return {
        "dataset": {"name": "ImageNetDataset", "image_root": str(data), "cls_label_path": str(data / list_name),
                    "transform_ops": TRAIN_OPS if train else EVAL_OPS, "soft_labels": store},
        "sampler": {"batch_size": batch_size, "drop_last": train, "shuffle": train},
        "loader": {"num_workers": workers, "persistent_workers": workers > 0, **loader},
    }


def distill_config(data: Path, out: Path, teacher_weights: str | None, *, epochs: int = 1, batch_size: int = 128,
                   workers: int = 2, bn_mode: str = "eval", lr: float = 0.1, store: str | None = None,
                   amp: str | None = None, channels_last: bool = False, compile: bool = False,
                   student_init: str | None = None, loader: dict[str, Any] | None = None,
                   seed: int = 0) -> dict[str, Any]:
    """KD (KL, T=4) from the ResNet-20 teacher to the ResNet-8 student; SGD momentum, cosine per iteration."""
    cfg: dict[str, Any] = {
        "Global": {"output_dir": str(out), "epochs": epochs, "image_shape": [3, 28, 28], "seed": seed, "device": "cpu",
                   "log_interval": 20, "eval_interval": max(epochs, 1), "channels_last": channels_last,
                   "compile": compile, "pretrained_model": student_init},
        "Arch": {"name": "DistillationModel", "class_num": 10, "teacher_bn_mode": bn_mode,
                 "models": [{"Teacher": {"name": TEACHER, "pretrained": teacher_weights or False}},
                            {"Student": {"name": STUDENT}}],
                 "freeze_params_list": [True, False], "infer_model_name": "Student"},
        "Loss": {"Train": [{"DistillationKLDivLoss": {"weight": 1.0, "T": KD_T,
                                                      "model_name_pairs": [["Student", "Teacher"]]}}],
                 "Eval": [{"DistillationGTCELoss": {"weight": 1.0, "model_names": ["Student"]}}]},
        "Optimizer": {"name": "Momentum", "momentum": 0.9, "lr": {"name": "Cosine", "learning_rate": lr},
                      "regularizer": {"name": "L2", "coeff": 5e-4}},
        "DataLoader": {"Train": split(data, "train_labeled.txt", batch_size, True, workers, store, **(loader or {})),
                       "Eval": split(data, "val.txt", 512, False, workers)},
    }
    if amp:
        cfg["AMP"] = {"enabled": True, "dtype": amp}
    return cfg


def config_file(cfg: dict[str, Any]) -> Path:
    """The config dict as a YAML file under bench_out/configs (named by its content)."""
    import hashlib

    import yaml

    text = yaml.safe_dump(cfg, sort_keys=False)
    path = OUT / "configs" / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def load(cfg: dict[str, Any]) -> Any:
    """Validate a config dict the way ``ssld train -c`` does."""
    from ssld.config import load_config

    return load_config(config_file(cfg))


def student_init(seed: int = 0) -> Path:
    """One random initialisation of the student per seed, shared by every run that compares accuracy."""
    import torch

    from ssld.config.schema import ModelSpec
    from ssld.models import create_model, save_safetensors

    path = OUT / ("student_init.safetensors" if seed == 0 else f"student_init_s{seed}.safetensors")
    if not path.is_file():
        torch.manual_seed(seed)
        save_safetensors(create_model(ModelSpec(name=STUDENT), 10).state_dict(), path)
    return path


def interleaved(variants: dict[str, Callable[[], float]], rounds: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds of every variant per round: ``warmup`` discarded rounds, then ``rounds`` alternating rounds
    (the order rotates each round so no variant always runs first)."""
    names = list(variants)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(warmup + rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            seconds = variants[name]()
            if r >= warmup:
                times[name].append(seconds)
    return times


def ratio_stats(times: dict[str, list[float]], num: str, den: str) -> dict[str, float]:
    """Median and min-max of the per-round ratio ``num / den`` (time ratios: < 1 means ``num`` is faster)."""
    ratios = [a / b for a, b in zip(times[num], times[den], strict=True)]
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


def summary(times: list[float], per: int) -> dict[str, float]:
    """Median / min / max of ``times`` (seconds for ``per`` images) as images per second."""
    rates = sorted(per / t for t in times)
    return {"median_img_s": statistics.median(rates), "min_img_s": rates[0], "max_img_s": rates[-1]}


def max_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_subprocess(script: str, *args: str, timeout: float = 900) -> str:
    """Run ``benchmarks/<script> ARGS`` in a fresh interpreter; returns its stdout."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT / 'benchmarks'}"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def write_result(name: str, result: dict[str, Any]) -> Path:
    """bench_out/<name>.json (the suite's raw numbers)."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    return path


class Timer:
    """``with Timer() as t: ...; t.seconds``."""

    def __enter__(self) -> Timer:  # noqa: PYI034
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def teacher(data: Path, epochs: int) -> Path:
    """The ResNet-20 teacher trained with ``ssld train`` on ``data/train_labeled.txt`` (cached in bench_out)."""
    from ssld.engine import train

    out = OUT / f"teacher_{data.name}_{epochs}ep"
    weights = out / "student.safetensors"
    if not weights.is_file():
        cfg = distill_config(data, out, None, epochs=epochs)
        cfg["Arch"] = {"name": TEACHER, "class_num": 10}
        cfg["Loss"] = {"Train": [{"CELoss": {"weight": 1.0}}], "Eval": [{"CELoss": {"weight": 1.0}}]}
        cfg["Optimizer"]["lr"]["warmup_epoch"] = 1 if epochs > 1 else 0
        report = train(load(cfg))
        print(f"teacher: {epochs} epochs, top-1 {report.get('top1')}", file=sys.stderr)
    return weights


class DeviceTimer(Timer):
    """Wall time of a block on ``device``: CUDA events around it on a GPU (the GPU's own clock, waited for at
    the end), ``perf_counter`` on the CPU."""

    def __init__(self, device: Any) -> None:
        self.cuda = getattr(device, "type", "cpu") == "cuda"

    def __enter__(self) -> DeviceTimer:  # noqa: PYI034
        if self.cuda:
            import torch

            self.events = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
            self.events[0].record()
            return self
        return super().__enter__()  # type: ignore[return-value]

    def __exit__(self, *exc: object) -> None:
        if not self.cuda:
            super().__exit__(*exc)
            return
        import torch

        self.events[1].record()
        torch.cuda.synchronize()
        self.seconds = self.events[0].elapsed_time(self.events[1]) / 1000
