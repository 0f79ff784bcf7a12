"""Distilled vs scratch: the same student, data and number of optimizer steps, trained (a) from the labels and
(b) from the frozen teacher's soft labels alone (label-free DML loss); prints both top-1s and the teacher's.

Optionally (c): the same number of steps distilled on the labeled images plus an unlabeled pool subset, which is
what SSLD adds on top of (b). All runs use the shipped recipes (configs/fashion_mnist/*.yaml) with ``-o``-style
overrides only, evaluate the last weights on the 10k val set, and never choose anything on val.

    python benchmarks/distill_vs_scratch.py                       # teacher 30 ep, students 30 ep on 2k labels
    python benchmarks/distill_vs_scratch.py --epochs 10 --teacher-epochs 15 --pool 20000
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "fashion_mnist"


def run(config: str, out: Path, overrides: list[str]) -> dict:
    """Train one config with overrides into ``out``; returns its train_report (last-epoch val metrics)."""
    from ssld.config import load_config
    from ssld.engine import train

    report = out / "train_report.json"
    if report.is_file():  # finished earlier: reuse (delete bench_out/distill_vs_scratch to rerun)
        return json.loads(report.read_text())
    latest = out / "checkpoints" / "latest.pt"
    resume = [f"Global.checkpoints={latest}"] if latest.is_file() else []
    cfg = load_config(CONFIGS / config, [f"Global.output_dir={out}", *overrides, *resume])
    return train(cfg)


def teacher_confidence(teacher_config: str, weights: Path, data: Path, lists: dict[str, Path]) -> dict[str, float]:
    """The teacher's mean top-1 probability on each list's un-augmented images: how close its soft labels are
    to one-hot there (on its own training images they are close to its training labels, so (b) ~ (a))."""
    import torch

    from ssld.config import load_config
    from ssld.config.schema import ModelSpec
    from ssld.data import build_loader
    from ssld.models import create_model, load_weights

    cfg = load_config(CONFIGS / teacher_config)
    model = create_model(ModelSpec(name=cfg.Arch.name), cfg.Arch.class_num)
    load_weights(model, str(weights))
    model.eval()
    out = {}
    for name, path in lists.items():
        cfg = load_config(CONFIGS / teacher_config, [f"DataLoader.Eval.dataset.image_root={data}",
                                                      f"DataLoader.Eval.dataset.cls_label_path={path}"])
        loader, _ = build_loader(cfg.DataLoader.Eval, train=False, seed=0)
        probs = []
        with torch.inference_mode():
            for batch in loader:
                probs.append(model(batch["image"]).softmax(1).max(1).values)
        out[name] = float(torch.cat(probs).mean())
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=ROOT / "data" / "fashion_mnist")
    p.add_argument("--out", type=Path, default=ROOT / "bench_out" / "distill_vs_scratch")
    p.add_argument("--labeled-per-class", type=int, default=200)
    p.add_argument("--teacher-epochs", type=int, default=30)
    p.add_argument("--epochs", type=int, default=30, help="student epochs over the labeled set (a) and (b)")
    p.add_argument("--pool", type=int, default=0, help="also run (c) with this many unlabeled pool images")
    p.add_argument("--student", default="cifar_resnet8", help="student network (default: distill.yaml's)")
    p.add_argument("--skip-same-images", action="store_true", help="skip (b) (distilled on the labeled images only)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    from ssld.data.fashion_mnist import export

    export(args.data, labeled_per_class=args.labeled_per_class, seed=args.seed)
    data = args.data
    common = [f"DataLoader.Train.dataset.image_root={data}", f"DataLoader.Eval.dataset.image_root={data}",
              f"DataLoader.Eval.dataset.cls_label_path={data / 'val.txt'}", f"Global.seed={args.seed}"]
    labeled = [f"DataLoader.Train.dataset.cls_label_path={data / 'train_labeled.txt'}"]
    t0 = time.time()
    teacher_dir = args.out / f"teacher_e{args.teacher_epochs}_s{args.seed}"
    teacher = run("teacher.yaml", teacher_dir, [*common, *labeled, f"Global.epochs={args.teacher_epochs}"])
    weights = teacher_dir / "student.safetensors"
    student = [f"Global.epochs={args.epochs}", f"Global.eval_interval={args.epochs}"]
    runs = args.out / f"{args.student}_e{args.epochs}_t{args.teacher_epochs}_s{args.seed}"
    scratch = run("baseline.yaml", runs / "scratch", [*common, *labeled, *student, f"Arch.name={args.student}"])
    distill_common = [*common, f"Arch.models.0.Teacher.pretrained={weights}",
                      f"Arch.models.1.Student.name={args.student}"]
    rows = [(f"teacher (cifar_resnet20, {args.teacher_epochs} ep)", teacher),
            (f"(a) {args.student} from labels", scratch)]
    if not args.skip_same_images:
        rows.append(("(b) distilled, same images", run("distill.yaml", runs / "distill",
                                                        [*distill_common, *labeled, *student])))
    if args.pool:
        pool_list = runs / "labeled_plus_pool.txt"
        lines = (data / "train_labeled.txt").read_text().splitlines()
        lines += (data / "unlabeled.txt").read_text().splitlines()[: args.pool]
        pool_list.write_text("\n".join(lines) + "\n")
        steps = scratch["steps"]
        per_epoch = math.ceil(len(lines) / 128)
        epochs = max(1, math.ceil(steps / per_epoch))
        pooled = run("distill.yaml", runs / "distill_pool", [
            *distill_common, f"DataLoader.Train.dataset.cls_label_path={pool_list}", f"Global.epochs={epochs}",
            f"Global.eval_interval={epochs}", f"Global.max_steps_per_epoch={math.ceil(steps / epochs)}"])
        rows.append((f"(c) distilled, labeled + {args.pool} unlabeled", pooled))
    print(f"\n{'run':45s} {'steps':>6s} {'top-1':>7s} {'train s':>8s}")
    for name, r in rows:
        print(f"{name:45s} {r['steps']:6d} {100 * r['top1']:6.2f}% {r['train_seconds']:8.0f}")
    for name, r in rows[2:]:
        print(f"{name[:3]} - (a): {100 * (r['top1'] - scratch['top1']):+.2f} points (same student, steps)")
    confidence = teacher_confidence("teacher.yaml", weights, data, {
        "labeled (its training images)": data / "train_labeled.txt", "val": data / "val.txt"})
    for name, p in confidence.items():
        print(f"teacher's mean top-1 probability, un-augmented {name}: {p:.3f}")
    print(f"total {time.time() - t0:.0f} s")
    summary = {name: {k: r.get(k) for k in ("top1", "top5", "steps", "train_seconds", "img_s")} for name, r in rows}
    summary["teacher_mean_top1_probability"] = confidence
    (runs / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
