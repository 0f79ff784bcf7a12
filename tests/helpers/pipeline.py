"""Pipeline and report test helpers: a hand-built finished run, a minimal pipeline file and learnable band images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.paths import FM_CONFIGS

RESULTS = {
    "teacher": (86.1, "cifar_resnet20", 2000, 480),
    "baseline": (81.5, "cifar_resnet8", 2000, 2600),
    "distill": (84.0, "cifar_resnet8", 12000, 2400),
    "finetune": (85.2, "cifar_resnet8", 2000, 160),
}


def _done(run: Path, stage: str, metrics: dict, wall: float, order: int) -> None:
    d = run / stage
    d.mkdir(parents=True, exist_ok=True)
    record = {"stage": stage, "hash": f"h-{stage}", "fingerprint": f"f-{stage}", "metrics": metrics,
              "wall_time_s": wall, "finished_at": 1000.0 + order, "outputs": {}}
    (d / "done.json").write_text(json.dumps(record))


def build_fixture_run(run: Path) -> Path:
    """A finished run as the pipeline leaves it: done.json per stage, metrics.jsonl, eval/results.json."""
    run.mkdir(parents=True, exist_ok=True)
    (run / "pipeline.json").write_text(json.dumps(
        {"hash": "x", "identity": {"source": "configs/fashion_mnist/ssld.yaml", "profile": "quick",
                                   "pipeline": {"seed": 0}}}))
    _done(run, "data", {"labeled": 2000, "pool": 20000, "val": 10000}, 20.0, 0)
    for i, (stage, (top1, _, n, steps)) in enumerate(RESULTS.items(), start=1):
        metrics = {"val_top1_last_epoch": top1, "train_images": n, "steps": steps, "epochs": 3}
        if stage == "baseline":
            metrics.update(lr=0.1, lr_grid_holdout_top1={"0.05": 79.0, "0.1": 80.5}, holdout_images=400,
                           ssld_steps={"distill": 2400, "finetune": 160, "total": 2560})
        _done(run, stage, metrics, 60.0 * i, i)
        rows = [{"epoch": e, "step": e * 10, "train_loss": 2.0 / e, "top1": (top1 - 10 + 3 * e) / 100}
                for e in (1, 2, 3)]
        (run / stage / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"epoch": 4, "tr')
    _done(run, "select", {"selected": 10000, "k": 1000, "teacher_precision_on_selected": 96.5}, 5.0, 10)
    results = {
        stage: {"top1": top1, "top5": 99.0, "val_images": 10000, "model": model, "train_images": n, "steps": steps,
                "loss": ["DistillationDMLLoss"] if stage == "distill" else ["CELoss"],
                "weights": f"{stage}/student.safetensors", "wall_time_s": 60.0}
        for stage, (top1, model, n, steps) in RESULTS.items()
    }
    (run / "eval").mkdir()
    (run / "eval" / "results.json").write_text(json.dumps(results))
    _done(run, "eval", {"gain_vs_baseline": 3.7}, 12.0, 11)
    return run


MINIMAL = """\
Pipeline:
  name: t
  num_classes: @CLASSES@
  data: @DATA@
  teacher: {config: @FM@/teacher.yaml}
  baseline: {config: @FM@/baseline.yaml}
  distill: {config: @FM@/distill.yaml}
  finetune: {config: @FM@/finetune.yaml}
Profiles:
  quick: {select: {k: 10}}
"""


def minimal_pipeline(path: Path, classes: int = 10, data: str = "{labeled_per_class: 5}") -> Path:
    """A valid pipeline file over the repo's Fashion-MNIST training configs (referenced by absolute path)."""
    text = MINIMAL.replace("@CLASSES@", str(classes)).replace("@DATA@", data).replace("@FM@", str(FM_CONFIGS))
    path.write_text(text)
    return path


def band_images(root: Path, name: str, n_per_class: int, labeled: bool, rng: np.random.Generator) -> Path:
    """Labeled (or unlabeled) 28 px PNGs whose class is a bright band at its own height: learnable in a few
    steps. Writes ``root/name/*.png`` and returns the list file ``root.parent/name.txt``."""
    lines = []
    for c in range(10):
        for i in range(n_per_class):
            img = rng.integers(0, 40, (28, 28), dtype=np.uint8)
            img[c * 2:c * 2 + 6, :] += 200  # a class-specific bright band
            rel = f"{name}/{c}_{i}.png"
            (root / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(root / rel)
            lines.append(f"{rel} {c}" if labeled else rel)
    path = root.parent / f"{name}.txt"
    path.write_text("\n".join(lines) + "\n")
    return path
