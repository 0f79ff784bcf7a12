"""The same distillation job in PaddleClas and in ssld, side by side on this machine (the same YAML, paths apart).

1. Data: Fashion-MNIST as RGB PNGs at 32 px in PaddleClas's list format (``train_list.txt``, ``val_list.txt``),
   written into the work folder.
2. Teacher: ResNet18_vd trained once by ``ssld train`` (a single-model config, a few epochs), moved to PaddleClas
   with ``ssld convert --to-paddle``; ``paddle.load`` in the PaddleClas venv reads it, and PaddleClas's ResNet18_vd
   gives ssld's logits on one val batch (the max difference is reported).
3. One PaddleClas-format YAML (DistillationModel: the frozen teacher and a MobileNetV3_small_x1_0 student;
   DistillationDMLLoss + DistillationGTCELoss; Momentum, Cosine; RandCropImage/RandFlipImage/NormalizeImage at
   32 px; batch 64). ``tools/train.py`` of the PaddleClas checkout and ``ssld train`` run that file with the same
   ``-o`` overrides (output folder, seed), interleaved per seed (ssld, PaddleClas, ssld, ...), both with 2 threads
   (OMP_NUM_THREADS=MKL_NUM_THREADS=2) and 2 loader workers.

Measured per run: training throughput (ssld: images / seconds of each whole epoch, from ``metrics.jsonl``;
PaddleClas: its own ``ips``, the mean over each epoch's steps after its first 5, taken at the epoch's last step;
the median over epochs; PaddleClas's number leaves out its warm-up steps, which favours it), the wall time of the
whole command, the peak RSS of the largest process of the run (``wait4``; loader workers are separate processes),
the student's top-1 on the val list after the last epoch, and the 1-minute load average before the run.

Run: ``.venv/bin/python benchmarks/paddleclas_side_by_side.py --paddleclas-src DIR [--paddle-python PY]
[--seeds 3] [--quick]``; results in ``bench_out/paddleclas_side_by_side.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
OUT = ROOT / "bench_out"

TEACHER, STUDENT, SIZE, BATCH = "ResNet18_vd", "MobileNetV3_small_x1_0", 32, 64
MEAN, STD = [0.286] * 3, [0.353] * 3
NORMALIZE = {"NormalizeImage": {"scale": "1.0/255.0", "mean": MEAN, "std": STD, "order": ""}}
DECODE = {"DecodeImage": {"to_rgb": True, "channel_first": False}}
THREADS = {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}


def write_data(work: Path, train_images: int, val_images: int) -> Path:
    """Balanced Fashion-MNIST subsets as 32 px RGB PNGs plus PaddleClas list files (kept if already there)."""
    from PIL import Image

    from ssld.data.fashion_mnist import find_idx_files, read_idx

    data = work / f"data_{train_images}_{val_images}"
    if (data / "val_list.txt").is_file():
        return data
    files = find_idx_files()
    rng = np.random.default_rng(0)
    for split, x_key, y_key, n in (("train", "train_x", "train_y", train_images),
                                   ("val", "test_x", "test_y", val_images)):
        x, y = read_idx(files[x_key]), read_idx(files[y_key])
        idx = np.concatenate([rng.permutation(np.flatnonzero(y == c))[: n // 10] for c in range(10)])
        rng.shuffle(idx)
        (data / split).mkdir(parents=True, exist_ok=True)
        lines = []
        for j, i in enumerate(idx):
            rel = f"{split}/{j:05d}.png"
            Image.fromarray(x[i]).resize((SIZE, SIZE), Image.BILINEAR).convert("RGB").save(data / rel)
            lines.append(f"{rel} {int(y[i])}")
        (data / f"{split}_list.txt").write_text("\n".join(lines) + "\n")
    return data


def loader(data: Path, split: str, ops: list[Any], shuffle: bool) -> dict[str, Any]:
    return {"dataset": {"name": "ImageNetDataset", "image_root": str(data), "cls_label_path": str(data / split),
                        "transform_ops": ops},
            "sampler": {"name": "DistributedBatchSampler", "batch_size": BATCH, "drop_last": False,
                        "shuffle": shuffle},
            "loader": {"num_workers": 2, "use_shared_memory": False}}


def optimizer(lr: float, warmup: int) -> dict[str, Any]:
    return {"name": "Momentum", "momentum": 0.9,
            "lr": {"name": "Cosine", "learning_rate": lr, "warmup_epoch": warmup},
            "regularizer": {"name": "L2", "coeff": 0.0001}}


def eval_loader(data: Path) -> dict[str, Any]:
    return loader(data, "val_list.txt", [DECODE, NORMALIZE], False)


def global_section(epochs: int, print_step: int) -> dict[str, Any]:
    return {"checkpoints": None, "pretrained_model": None, "output_dir": "./output/", "device": "cpu",
            "save_interval": epochs, "eval_during_train": True, "eval_interval": epochs, "epochs": epochs,
            "print_batch_step": print_step, "use_visualdl": False, "image_shape": [3, SIZE, SIZE],
            "save_inference_dir": "./inference"}


def teacher_config(data: Path, epochs: int, print_step: int) -> dict[str, Any]:
    """ssld's single-model config for the teacher (Pad + RandomCrop keeps the 32 px digits whole)."""
    train_ops = [DECODE, {"Pad": {"padding": 2}}, {"RandomCrop": {"size": SIZE}}, {"RandFlipImage": {"flip_code": 1}},
                 NORMALIZE]
    return {"Global": global_section(epochs, print_step),
            "Arch": {"name": TEACHER, "class_num": 10},
            "Loss": {"Train": [{"CELoss": {"weight": 1.0}}], "Eval": [{"CELoss": {"weight": 1.0}}]},
            "Optimizer": optimizer(0.1, 1),
            "DataLoader": {"Train": loader(data, "train_list.txt", train_ops, True), "Eval": eval_loader(data)},
            "Metric": {"Train": [{"TopkAcc": {"topk": [1, 5]}}], "Eval": [{"TopkAcc": {"topk": [1, 5]}}]}}


def distill_config(data: Path, teacher: Path, epochs: int, print_step: int) -> dict[str, Any]:
    """The PaddleClas-format distillation config both frameworks run (``teacher``: weights path, no suffix)."""
    train_ops = [DECODE, {"RandCropImage": {"size": SIZE}}, {"RandFlipImage": {"flip_code": 1}}, NORMALIZE]
    acc = [{"DistillationTopkAcc": {"model_key": "Student", "topk": [1, 5]}}]
    return {"Global": global_section(epochs, print_step),
            "Arch": {"name": "DistillationModel", "freeze_params_list": [True, False],
                     "models": [{"Teacher": {"name": TEACHER, "class_num": 10, "pretrained": str(teacher)}},
                                {"Student": {"name": STUDENT, "class_num": 10}}],
                     "infer_model_name": "Student"},
            "Loss": {"Train": [{"DistillationDMLLoss": {"weight": 1.0, "model_name_pairs": [["Student", "Teacher"]]}},
                               {"DistillationGTCELoss": {"weight": 1.0, "model_names": ["Student"]}}],
                     "Eval": [{"CELoss": {"weight": 1.0}}]},  # PaddleClas evaluates the Student alone
            "Optimizer": optimizer(0.1, 0),
            "DataLoader": {"Train": loader(data, "train_list.txt", train_ops, True), "Eval": eval_loader(data)},
            "Metric": {"Train": acc, "Eval": acc}}


def run(cmd: list[str], cwd: Path, log: Path) -> dict[str, Any]:
    """Run ``cmd`` with 2 threads; wall seconds, peak RSS (MB) of its largest process, the load before it."""
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, **THREADS})
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (log {log}):\n" + log.read_text()[-3000:])
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024, "load_1m": load}


def ssld_result(out: Path) -> dict[str, Any]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    epochs = [r for r in rows if r.get("kind") == "epoch"]
    return {"epoch_img_s": [r["img_s"] for r in epochs], "top1": float(epochs[-1]["top1"])}


_IPS = re.compile(r"\[Train\]\[Epoch (\d+)/\d+\]\[Iter: (\d+)/(\d+)\].*?ips: ([\d.]+) samples/s")
_TOP1 = re.compile(r"\[Eval\]\[Epoch \d+\]\[Avg\].*?top1: ([\d.]+)")


def paddle_result(log: str) -> dict[str, Any]:
    last: dict[int, float] = {}
    for epoch, it, iters, ips in _IPS.findall(log):
        if int(it) == int(iters) - 1:
            last[int(epoch)] = float(ips)
    top1 = _TOP1.findall(log)
    if not last or not top1:
        raise RuntimeError("PaddleClas log has no per-epoch ips or eval top1 lines")
    return {"epoch_img_s": [last[e] for e in sorted(last)], "top1": float(top1[-1])}


def check_teacher(paddle_python: str, src: Path, pdparams: Path, safetensors: Path, data: Path, work: Path) -> float:
    """Max |logit difference| of PaddleClas's and ssld's teacher on 16 val images (same weights file pair)."""
    import timm
    import torch
    from PIL import Image

    from ssld.models import load_weights, resolve_model_name

    lines = (data / "val_list.txt").read_text().split()[:32:2]
    x = np.stack([np.asarray(Image.open(data / p).convert("RGB"), np.float32) / 255.0 for p in lines])
    x = ((x - np.array(MEAN, np.float32)) / np.array(STD, np.float32)).transpose(0, 3, 1, 2).copy()
    np.save(work / "batch.npy", x)
    model = timm.create_model(resolve_model_name(TEACHER), num_classes=10)
    load_weights(model, str(safetensors))
    with torch.no_grad():
        ours = model.eval()(torch.from_numpy(x)).numpy()
    code = ("import sys, numpy as np, paddle; sys.path.insert(0, sys.argv[1]); paddle.set_device('cpu');"
            "from ppcls.utils import logger; logger.init_logger();"
            "from ppcls.arch.backbone.legendary_models.resnet import ResNet18_vd as M;"
            "m = M(class_num=10); s = paddle.load(sys.argv[2]); assert set(s) == set(m.state_dict()), 'keys';"
            "m.set_state_dict(s); m.eval();"
            "np.save(sys.argv[4], m(paddle.to_tensor(np.load(sys.argv[3]))).numpy())")
    done = subprocess.run([paddle_python, "-c", code, str(src), str(pdparams), str(work / "batch.npy"),
                           str(work / "paddle_logits.npy")], capture_output=True, text=True,
                          env={**os.environ, **THREADS}, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"PaddleClas could not load {pdparams}:\n{done.stderr[-3000:]}")
    return float(np.abs(np.load(work / "paddle_logits.npy") - ours).max())


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def table(res: dict[str, Any]) -> str:
    lines = [(f"Teacher {TEACHER} ({res['teacher_top1']:.2f} % top-1 after {res['teacher_epochs']} ssld epochs), "
             f"student {STUDENT}, {res['train_images']} train / {res['val_images']} val images at {SIZE} px, "
             f"batch {BATCH}, {res['epochs']} epochs, {len(res['seeds'])} seed(s); teacher logits PaddleClas vs "
             f"ssld: max |diff| {res['teacher_logit_max_diff']:.2e}."), "",
             ("| seed | framework | train img/s (median over epochs) | wall s (whole command) | peak RSS MB | "
             "student top-1 % | load 1m before |"), "|---|---|---|---|---|---|---|"]
    for r in res["runs"]:
        lines.append(f"| {r['seed']} | {r['framework']} | {statistics.median(r['epoch_img_s']):.1f} | "
                     f"{r['wall_s']:.0f} | {r['peak_rss_mb']:.0f} | {r['top1']:.2f} | {r['load_1m']:.1f} |")
    s = res["summary"]
    lines += ["", (f"ssld / PaddleClas throughput: {s['img_s_ratio']['median']:.2f}x "
              f"({s['img_s_ratio']['min']:.2f}-{s['img_s_ratio']['max']:.2f}) over {len(res['seeds'])} seed pair(s); "
              f"wall time PaddleClas / ssld {s['wall_ratio']['median']:.2f}x "
              f"({s['wall_ratio']['min']:.2f}-{s['wall_ratio']['max']:.2f}); student top-1 ssld "
              f"{s['top1']['ssld'][0]:.2f} ± {s['top1']['ssld'][1]:.2f}, PaddleClas "
              f"{s['top1']['paddleclas'][0]:.2f} ± {s['top1']['paddleclas'][1]:.2f} (mean ± std).")]
    return "\n".join(lines)


def report(runs: list[dict[str, Any]], base: dict[str, Any]) -> None:
    """Write bench_out/paddleclas_side_by_side.{json,md} for the runs so far and print the table."""
    by = {n: [r for r in runs if r["framework"] == n] for n in ("ssld", "paddleclas")}
    med = {n: [statistics.median(r["epoch_img_s"]) for r in rs] for n, rs in by.items()}
    top1 = {n: [r["top1"] for r in rs] for n, rs in by.items()}
    res = {**base, "seeds": sorted({r["seed"] for r in runs}), "runs": runs,
           "summary": {"img_s_ratio": spread([a / b for a, b in zip(med["ssld"], med["paddleclas"], strict=True)]),
                       "wall_ratio": spread([b["wall_s"] / a["wall_s"]
                                             for a, b in zip(by["ssld"], by["paddleclas"], strict=True)]),
                       "top1": {n: (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0)
                                for n, v in top1.items()}}}
    text = table(res)
    OUT.mkdir(exist_ok=True)
    (OUT / "paddleclas_side_by_side.json").write_text(json.dumps(res, indent=1))
    (OUT / "paddleclas_side_by_side.md").write_text(text + "\n")
    print(text, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paddleclas-src", required=True, type=Path, help="a PaddleClas checkout (tools/, ppcls/)")
    ap.add_argument("--paddle-python", default="/work/paddle-venv/bin/python",
                    help="python of a venv with paddlepaddle and PaddleClas's requirements")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="1 seed, 1,280 images, 1 epoch (a few minutes)")
    ap.add_argument("--epochs", type=int, default=None, help="distillation epochs (default 2, quick 1)")
    ap.add_argument("--teacher-epochs", type=int, default=None, help="teacher epochs in ssld (default 4, quick 2)")
    ap.add_argument("--work", type=Path, default=OUT / "paddleclas_side_by_side")
    args = ap.parse_args(argv)
    src = args.paddleclas_src.resolve()
    if not (src / "tools" / "train.py").is_file():
        raise SystemExit(f"--paddleclas-src: {src} has no tools/train.py (give a PaddleClas checkout)")
    if not Path(args.paddle_python).is_file():
        raise SystemExit(f"--paddle-python: {args.paddle_python} not found")
    seeds = [0] if args.quick else list(range(args.seeds))
    train_n, val_n = (1280, 500) if args.quick else (2560, 1000)
    epochs = args.epochs or (1 if args.quick else 2)
    t_epochs = args.teacher_epochs or (2 if args.quick else 4)
    print_step = train_n // BATCH - 1  # PaddleClas logs steps 0 and the last of each epoch
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    data = write_data(work, train_n, val_n)
    ssld = [sys.executable, "-m", "ssld"]

    tdir = work / f"teacher_{train_n}_{t_epochs}"
    if not (tdir / "student.safetensors").is_file():
        (work / "teacher.yaml").write_text(yaml.safe_dump(teacher_config(data, t_epochs, print_step), sort_keys=False))
        run([*ssld, "train", "-c", str(work / "teacher.yaml"), "-o", f"Global.output_dir={tdir}", "-o",
             "Global.seed=0"], ROOT, work / "teacher.log")
    teacher_top1 = float(json.loads((tdir / "train_report.json").read_text())["top1"])  # a fraction
    pdparams = work / "teacher.pdparams"
    subprocess.run([*ssld, "convert", str(tdir / "student.safetensors"), "--to-paddle", "--arch", TEACHER,
                    "--out", str(pdparams)], check=True, cwd=ROOT)
    diff = check_teacher(args.paddle_python, src, pdparams, tdir / "student.safetensors", data, work)
    cfg = work / "distill.yaml"
    cfg.write_text(yaml.safe_dump(distill_config(data, work / "teacher", epochs, print_step), sort_keys=False))

    base = {"command": " ".join(sys.argv), "cpu": _cpu(), "threads": 2, "epochs": epochs, "teacher_epochs": t_epochs,
            "teacher_top1": 100 * teacher_top1, "train_images": train_n, "val_images": val_n,
            "teacher_logit_max_diff": diff, "config": yaml.safe_load(cfg.read_text())}
    runs: list[dict[str, Any]] = []
    for seed in seeds:
        for name in ("ssld", "paddleclas"):
            out = work / f"{name}_seed{seed}"
            overrides = ["-o", f"Global.output_dir={out}", "-o", f"Global.seed={seed + 1}"]
            log = work / f"{name}_seed{seed}.log"
            shutil.rmtree(out, ignore_errors=True)  # a fresh run, never a resume of an earlier one
            if name == "ssld":
                r = run([*ssld, "train", "-c", str(cfg), *overrides], ROOT, log)
                r.update(ssld_result(out))
                r["top1"] *= 100
            else:
                r = run([args.paddle_python, "tools/train.py", "-c", str(cfg), *overrides], src, log)
                r.update(paddle_result(log.read_text()))
                r["top1"] *= 100
            r.update(framework=name, seed=seed)
            runs.append(r)
            print(f"[side-by-side] seed {seed} {name}: {statistics.median(r['epoch_img_s']):.1f} img/s, "
                  f"{r['wall_s']:.0f} s, {r['peak_rss_mb']:.0f} MB, top-1 {r['top1']:.2f}", file=sys.stderr,
                  flush=True)
        report(runs, base)  # after every seed pair: a cut-short run still leaves its table

    return 0


def _cpu() -> str:
    for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
