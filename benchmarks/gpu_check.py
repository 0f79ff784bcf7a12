"""GPU check: ResNet50_vd -> MobileNetV3_large distillation step and teacher labeling, ssld vs bare PyTorch.

One prepared script for a lent GPU (about 2-3 minutes on an H100). Synthetic data already on the GPU, 224 px,
AMP bfloat16 + channels_last, KL at T=4, SGD momentum, teacher BN in eval mode. Per batch size (128, and 256 when
it fits): ssld's ``train_epoch`` (the ``ssld train`` step) vs a hand-written loop, and ssld's offline-teacher
step (targets from the batch, no teacher), timed with CUDA events over interleaved rounds after a warm-up round;
peak ``torch.cuda.max_memory_allocated`` of each alone. Labeling: ``ssld.mining.label`` (the ``ssld label`` path:
loader, top-k, shards, merge) vs a bare ``inference_mode`` loop over the same model and DataLoader. Checks: loss
finite, teacher weights and BN buffers bit-identical after training, student weights changed.

Needs only torch, timm, numpy, safetensors, pyyaml, pydantic (+ timm's own dependencies).
Run: ``PYTHONPATH=src python benchmarks/gpu_check.py`` (``--smoke``: tiny models on the CPU, 32 px, 2 steps).
Prints a table and one JSON line; writes ``$OUT/gpu_bench.json`` when OUT is set.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import common
import torch
from bench_distill_step import BareStep, SsldStep, make_runner

FULL = {"teacher": "ResNet50_vd", "student": "MobileNetV3_large_x1_0", "size": 224, "batches": [128, 256],
        "steps": 20, "rounds": 5, "label_images": 10240, "label_batch": 256, "workers": 8, "classes": 1000}
# what fits a nearly spent device budget (about 90 s of work on an H100/H200)
FAST = {**FULL, "batches": [128], "steps": 10, "rounds": 3, "label_images": 5120}
SMOKE = {"teacher": "resnet18d", "student": "mobilenetv3_small_050", "size": 32, "batches": [8], "steps": 2,
         "rounds": 1, "label_images": 64, "label_batch": 16, "workers": 0, "classes": 10}


def config(p: dict[str, Any], device: torch.device) -> Any:
    """KD (KL, T=4) from the teacher to the student, bf16 autocast, channels_last, SGD momentum."""
    from ssld.config.schema import SSLDConfig

    return SSLDConfig.model_validate({
        "Global": {"device": device.type, "channels_last": True, "log_interval": 20,
                   "image_shape": [3, p["size"], p["size"]]},
        "AMP": {"enabled": True, "dtype": "bfloat16"},
        "Arch": {"name": "DistillationModel", "class_num": p["classes"], "teacher_bn_mode": "eval",
                 "models": [{"Teacher": {"name": p["teacher"]}}, {"Student": {"name": p["student"]}}],
                 "freeze_params_list": [True, False], "infer_model_name": "Student"},
        "Loss": {"Train": [{"DistillationKLDivLoss": {"T": common.KD_T, "model_name_pairs": [["Student", "Teacher"]]}}]},
        "Optimizer": {"name": "Momentum", "momentum": 0.9, "lr": {"name": "Cosine", "learning_rate": 0.01},
                      "regularizer": {"name": "L2", "coeff": 1e-5}},
    })


def offline_step(cfg: Any, device: torch.device) -> SsldStep:
    """ssld's step in offline mode: the student-only model, the teacher's logits from ``soft_target``."""
    from ssld.engine.offline_teacher import OfflineTeacher
    from ssld.models import build_model

    return SsldStep(cfg, device, offline=(build_model(cfg.Arch, skip_frozen=True), OfflineTeacher("Teacher", "synthetic")))


def batches(p: dict[str, Any], batch: int, device: torch.device, teacher: torch.nn.Module) -> list[dict[str, Any]]:
    """Four random batches on the device, with the teacher's eval-mode probabilities as ``soft_target``."""
    out = []
    g = torch.Generator(device="cpu").manual_seed(0)
    for _ in range(4):
        x = torch.randn(batch, 3, p["size"], p["size"], generator=g).to(device)
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16):
            probs = teacher(x.contiguous(memory_format=torch.channels_last)).float().softmax(-1)
        out.append({"image": x, "label": torch.randint(0, p["classes"], (batch,), generator=g).to(device),
                    "soft_target": probs.clone(), "bad": []})
    return out


def peak_mb(make: Any, data: list[dict[str, Any]], device: torch.device) -> float | None:
    """Peak CUDA memory of building ``make()`` and running 3 steps, above what was allocated before."""
    if device.type != "cuda":
        return None
    gc.collect()
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step = make()
    step.run(iter(data * 2), 3)
    peak = torch.cuda.max_memory_allocated() - base
    del step
    gc.collect()
    torch.cuda.empty_cache()
    return peak / 2**20


def distill(p: dict[str, Any], batch: int, device: torch.device) -> dict[str, Any]:
    cfg = config(p, device)
    ssld = SsldStep(cfg, device)
    teacher, student = ssld.model.models["Teacher"], ssld.model.models["Student"]
    data = batches(p, batch, device, teacher)
    t_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    s_before = {k: v.clone() for k, v in student.state_dict().items()}
    steps_of = {"bare": BareStep(teacher, student, cfg, device=device), "ssld": ssld,
                "ssld_offline": offline_step(cfg, device)}
    n = p["steps"]
    feed = lambda _e: iter(data * (n // len(data) + 1))
    times = common.interleaved({k: make_runner(s, feed, n) for k, s in steps_of.items()}, p["rounds"])
    losses = ssld.last.losses
    checks = {
        "loss_finite": all(torch.isfinite(torch.tensor(v)).item() for v in losses.values()),
        "teacher_unchanged": all(torch.equal(t_before[k], v) for k, v in teacher.state_dict().items()),
        "student_changed": any(not torch.equal(s_before[k], v) for k, v in student.state_dict().items()
                               if v.is_floating_point()),
    }
    del steps_of
    memory = {"bare": peak_mb(lambda: BareStep(teacher, student, cfg, device=device), data, device),
              "ssld": peak_mb(lambda: SsldStep(cfg, device), data, device),
              "ssld_offline": peak_mb(lambda: offline_step(cfg, device), data, device)}
    return {"batch": batch, "img_s": {k: common.summary(v, n * batch) for k, v in times.items()},
            "ssld_over_bare": common.ratio_stats(times, "ssld", "bare"),
            "offline_over_online": common.ratio_stats(times, "ssld_offline", "ssld"),
            "peak_mb": memory, "loss": losses, "checks": checks}


class Synthetic(torch.utils.data.Dataset):
    """``n`` items cycling over 16 fixed random bfloat16 images (cheap to load: the model is what is timed)."""

    def __init__(self, n: int, size: int) -> None:
        self.n = n
        self.images = torch.randn(16, 3, size, size, generator=torch.Generator().manual_seed(1)).bfloat16()

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"image": self.images[i % 16], "label": -1, "index": i}


def labeling(p: dict[str, Any], device: torch.device) -> dict[str, Any]:
    from ssld.config.schema import ModelSpec
    from ssld.data import collate
    from ssld.mining.label import label
    from ssld.models import create_model

    model = create_model(ModelSpec(name=p["teacher"]), p["classes"]).to(device, memory_format=torch.channels_last)
    model.eval()
    n, bs, workers = p["label_images"], p["label_batch"], p["workers"]
    ds = Synthetic(n, p["size"])
    paths = [f"img/{i:06d}.png" for i in range(n)]

    def bare() -> float:
        loader = torch.utils.data.DataLoader(ds, batch_size=bs, num_workers=workers, collate_fn=collate,
                                             pin_memory=device.type == "cuda")
        with common.DeviceTimer(device) as t, torch.inference_mode():
            for batch in loader:
                with torch.autocast(device.type, dtype=torch.bfloat16):
                    model(batch["image"].to(device, non_blocking=True)).float().softmax(-1).topk(10, -1)
        return t.seconds

    def ours() -> float:
        with tempfile.TemporaryDirectory() as tmp, common.DeviceTimer(device) as t:
            label(ds, model, Path(tmp) / "store", paths=paths, files=paths, meta={"teacher": p["teacher"]},
                  num_classes=p["classes"], topk=10, batch_size=bs, workers=workers, shard_size=4096, device=device,
                  amp_dtype=torch.bfloat16)
        return t.seconds

    times = common.interleaved({"bare": bare, "label": ours}, max(p["rounds"] // 2, 1))
    ratios = [b / lab for b, lab in zip(times["bare"], times["label"], strict=True)]  # throughput label / bare
    return {"images": n, "batch": bs, "workers": workers, "img_s": {k: common.summary(v, n) for k, v in times.items()},
            "label_over_bare_throughput": {"median": statistics.median(ratios), "min": min(ratios),
                                           "max": max(ratios)}}


def table(res: dict[str, Any]) -> str:
    rows = [("| batch | bare img/s | ssld img/s | ssld offline img/s | ssld/bare time | offline/online time | "
            "peak MB bare / ssld / offline | checks |"), "|---|---|---|---|---|---|---|---|"]
    for d in res["distill"]:
        i, m = d["img_s"], d["peak_mb"]
        mem = " / ".join("-" if m[k] is None else f"{m[k]:.0f}" for k in ("bare", "ssld", "ssld_offline"))
        rows.append(f"| {d['batch']} | {i['bare']['median_img_s']:.0f} | {i['ssld']['median_img_s']:.0f} | "
                    f"{i['ssld_offline']['median_img_s']:.0f} | {d['ssld_over_bare']['median']:.3f} "
                    f"({d['ssld_over_bare']['min']:.3f}-{d['ssld_over_bare']['max']:.3f}) | "
                    f"{d['offline_over_online']['median']:.3f} | {mem} | "
                    f"{'ok' if all(d['checks'].values()) else d['checks']} |")
    lab = res["label"]
    rows.append(f"\nlabel: bare {lab['img_s']['bare']['median_img_s']:.0f} img/s, ssld label "
                f"{lab['img_s']['label']['median_img_s']:.0f} img/s, ratio "
                f"{lab['label_over_bare_throughput']['median']:.3f}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny models on the CPU, 32 px, 2 steps (checks the script)")
    ap.add_argument("--fast", action="store_true", help="batch 128 only, fewer steps and rounds (about 90 s)")
    args = ap.parse_args(argv)
    p = SMOKE if args.smoke else FAST if args.fast else FULL
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    torch.backends.cudnn.benchmark = True
    t0 = time.perf_counter()
    res: dict[str, Any] = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                           "torch": torch.__version__, "params": p, "distill": []}
    import timm

    res["timm"] = timm.__version__
    for batch in p["batches"]:
        try:
            res["distill"].append(distill(p, batch, device))
        except torch.OutOfMemoryError:
            res["skipped"] = f"batch {batch}: out of memory"
            break
    res["label"] = labeling(p, device)
    res["seconds"] = time.perf_counter() - t0
    print(table(res))
    print(json.dumps(res, default=str))
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_bench.json").write_text(json.dumps(res, indent=2, default=str))


if __name__ == "__main__":
    main()
