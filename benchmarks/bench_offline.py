"""(b) Offline teacher (targets from a soft-label store) vs the online teacher: step time and student accuracy.

Step time: ssld's ``train_epoch`` with the teacher running (BN eval mode) vs with ``soft_labels: STORE`` (no
teacher built), interleaved rounds, end to end over the loader and step only. Accuracy: the same student
initialisation distilled for the same epochs with KL (T=4) three ways: online with teacher BN in eval mode,
online with teacher BN in train mode (batch statistics, as the reference), offline (eval-mode targets of the
un-augmented image). Top-1 on the val split.

Run: ``PYTHONPATH=src python benchmarks/bench_offline.py [--quick] [--no-accuracy]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import common
import torch
from bench_distill_step import SsldStep, cached_batches, loader_batches, make_runner


def store_for(data: Path, cfg: Any) -> Path:
    """Soft-label store of ``data/train_labeled.txt`` by the config's teacher (``ssld label``; written once)."""
    from ssld.cli import main as ssld_main
    from ssld.data.store import read_manifest

    weights = str(cfg.Arch.model_specs()["Teacher"].pretrained)
    out = common.OUT / f"store_{data.name}_{Path(weights).parent.name}"
    manifest = read_manifest(out) if out.is_dir() else None
    if manifest is None or not manifest.get("complete"):
        cfg_path = common.config_file(common.distill_config(data, common.OUT / "unused", weights))
        code = ssld_main(["label", "--list", str(data / "train_labeled.txt"), "--root", str(data), "-c",
                          str(cfg_path), "--weights", weights, "--out", str(out), "--topk", "10",
                          "--batch-size", "256", "--workers", "2"])
        if code != 0:
            raise RuntimeError(f"ssld label failed with exit code {code}")
    return out


def step_time(data: Path, teacher: str, rounds: int, steps: int) -> dict[str, Any]:
    online = common.load(common.distill_config(data, common.OUT / "offline_step", teacher))
    store = store_for(data, online)
    offline = common.load(common.distill_config(data, common.OUT / "offline_step", teacher, store=str(store)))
    out: dict[str, Any] = {"steps_per_round": steps, "rounds": rounds}
    steps_of = {"online": SsldStep(online), "offline": SsldStep(offline)}
    for mode in ("loader", "cached"):
        runners = {}
        for name, cfg in (("online", online), ("offline", offline)):
            batches = loader_batches(cfg) if mode == "loader" else cached_batches(cfg, steps)
            runners[name] = make_runner(steps_of[name], batches, steps)
        times = common.interleaved(runners, rounds)
        out[mode] = {"img_s": {n: common.summary(t, steps * 128) for n, t in times.items()},
                     "offline_over_online": common.ratio_stats(times, "offline", "online"), "seconds": times}
    return out


def accuracy(data: Path, teacher: str, epochs: int) -> dict[str, Any]:
    """Top-1 of the student after ``epochs`` of KD: online (BN eval / train) and offline, same init."""
    from ssld.engine import train

    init = str(common.student_init())
    online = common.load(common.distill_config(data, common.OUT / "unused", teacher))
    store = str(store_for(data, online))
    runs = {"online_bn_eval": {"bn_mode": "eval"}, "online_bn_train": {"bn_mode": "train"},
            "offline": {"bn_mode": "eval", "store": store}}
    out: dict[str, Any] = {"epochs": epochs}
    for name, kw in runs.items():
        cfg = common.load(common.distill_config(data, common.OUT / f"offline_acc_{name}", teacher, epochs=epochs,
                                                student_init=init, **kw))
        report = train(cfg)
        out[name] = {"top1": report["top1"], "train_img_s": report["img_s"], "train_seconds": report["train_seconds"]}
        print(name, out[name], file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--epochs", type=int, help="distillation epochs of the accuracy runs")
    ap.add_argument("--no-accuracy", action="store_true")
    ap.add_argument("--per-class", type=int, help="training images per class (default 500 quick, 1000 full)")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    data = common.fashion_mnist(args.per_class or (500 if args.quick else 1000))
    teacher = str(common.teacher(data, epochs=2 if args.quick else 4))
    result: dict[str, Any] = {"step": step_time(data, teacher, args.rounds or (3 if args.quick else 5),
                                                args.steps or (4 if args.quick else 5))}
    if not args.no_accuracy:
        result["accuracy"] = accuracy(data, teacher, args.epochs or (1 if args.quick else 2))
    result["machine"] = common.machine()
    common.write_result("offline", result)
    print(json.dumps(result, default=str))  # one line: run_all reads the last line


if __name__ == "__main__":
    main()
