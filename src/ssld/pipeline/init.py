"""``ssld init``: a pipeline file for your own images, with sizes, budgets and the teacher guard filled in.

``--data`` is a folder holding PaddleClas list files (``train_labeled.txt``, ``unlabeled.txt``, ``val.txt`` and
optionally ``train_teacher.txt``, paths relative to the folder), a folder of class folders (``train/<class>/``,
``val/<class>/`` and optionally ``unlabeled/``; the lists are written beside the output), or three list files
``LABELED,UNLABELED,VAL`` (paths relative to the labeled list's folder, or ``--root``).

The written pipeline trains the shipped recipe: a ResNet-20 teacher, the half-width ResNet-8 student (20k
parameters), label-free DML distillation on labeled + top-k pool images per class, a short
finetune, with sizes and normalisation left to the data (``auto``: measured by the data stage), data-driven
budgets (no ``Global.epochs`` for teacher and distill: ``Pipeline.budget``) and the teacher guard. The training
configs go in a folder next to the pipeline file, so every stage can be edited and rerun by hand.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from ssld.errors import UserError
from ssld.utils.io import atomic_write_text

LISTS = ("train_labeled.txt", "unlabeled.txt", "val.txt")
TEACHER_NET, STUDENT_NET = "cifar_resnet20", "cifar_resnet8x0_5"
SELECT_SHARE = 0.8  # top-k per class keeps about this share of the pool (the demo: 1,000 of 12,000 per 10 classes)


def _find_data(data: str, root: str | None, out_dir: Path) -> dict[str, str | None]:
    """``{image_root, labeled, unlabeled, val, teacher_labeled}`` from ``--data``; class folders become lists."""
    from ssld.data import read_image_folder, write_list

    if "," in data:
        parts = [p.strip() for p in data.split(",")]
        if len(parts) != 3:
            raise UserError(f"--data {data}: give a folder or three list files LABELED,UNLABELED,VAL")
        for p in parts:
            if not Path(p).is_file():
                raise UserError(f"--data: list file {p} not found")
        base = root or str(Path(parts[0]).resolve().parent)
        return {"image_root": str(Path(base).resolve()), "labeled": str(Path(parts[0]).resolve()),
                "unlabeled": str(Path(parts[1]).resolve()), "val": str(Path(parts[2]).resolve()),
                "teacher_labeled": None}
    d = Path(data)
    if not d.is_dir():
        raise UserError(f"--data {data}: not a folder (give a folder or three list files LABELED,UNLABELED,VAL)")
    d = d.resolve()
    if all((d / n).is_file() for n in LISTS):
        teacher = d / "train_teacher.txt"
        return {"image_root": str(Path(root).resolve()) if root else str(d), "labeled": str(d / LISTS[0]),
                "unlabeled": str(d / LISTS[1]), "val": str(d / LISTS[2]),
                "teacher_labeled": str(teacher) if teacher.is_file() else None}
    if (d / "train").is_dir() and (d / "val").is_dir():
        train, val = read_image_folder(d / "train"), read_image_folder(d / "val")
        names = sorted(x.name for x in (d / "train").iterdir() if x.is_dir() and not x.name.startswith("."))
        val_names = sorted(x.name for x in (d / "val").iterdir() if x.is_dir() and not x.name.startswith("."))
        if val_names != names:
            raise UserError(f"{d / 'val'}: class folders {val_names} differ from train's {names}")
        pool: list[str] = []
        if (d / "unlabeled").is_dir():
            from ssld.data.lists import IMAGE_EXTENSIONS

            pool = sorted(str(p) for p in (d / "unlabeled").rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_list(out_dir / LISTS[0], train, root=d)
        write_list(out_dir / LISTS[1], pool, root=d)
        write_list(out_dir / LISTS[2], val, root=d)
        atomic_write_text(out_dir / "classes.txt", "".join(f"{i} {n}\n" for i, n in enumerate(names)))
        return {"image_root": str(d), "labeled": str(out_dir / LISTS[0]), "unlabeled": str(out_dir / LISTS[1]),
                "val": str(out_dir / LISTS[2]), "teacher_labeled": None}
    raise UserError(f"--data {data}: expected list files {', '.join(LISTS)} or class folders train/ and val/ in it")


def _transforms(size: int, train: bool, resize: bool) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = [{"DecodeImage": {"to_rgb": True, "channel_first": False}}]
    if resize:  # images of several sizes: all to the most common one
        ops.append({"ResizeImage": {"size": "auto"}})
    if train:  # pad-and-crop by an eighth of the side (4 px at 32 px, CIFAR's) and mirror images
        ops += [{"Pad": {"padding": max(1, round(size / 8))}}, {"RandomCrop": {"size": "auto"}},
                {"RandFlipImage": {"flip_code": 1}}]
    ops.append({"NormalizeImage": {"scale": "1.0/255.0", "mean": "auto", "std": "auto", "order": ""}})
    return ops


def training_config(kind: str, num_classes: int, size: int, resize: bool = False) -> dict[str, Any]:
    """A training config for ``kind`` in teacher, baseline, distill, finetune (sizes and statistics ``auto``)."""
    loader = {"num_workers": 2}
    train_ds = {"name": "ImageNetDataset", "image_root": ".", "cls_label_path": "train.txt", "cache_images": True,
                "transform_ops": _transforms(size, train=True, resize=resize)}
    eval_ds = {"name": "ImageNetDataset", "image_root": ".", "cls_label_path": "val.txt",
               "transform_ops": _transforms(size, train=False, resize=resize)}
    cfg: dict[str, Any] = {
        "Global": {"checkpoints": None, "pretrained_model": None, "output_dir": f"./output/{kind}", "device": "auto",
                   "save_interval": 1000, "eval_during_train": True, "eval_interval": 1000, "epochs": 10,
                   "image_shape": "auto", "seed": 0, "log_interval": 20},
        "Arch": {"name": TEACHER_NET if kind == "teacher" else STUDENT_NET, "class_num": num_classes},
        "Loss": {"Train": [{"CELoss": {"weight": 1.0}}], "Eval": [{"CELoss": {"weight": 1.0}}]},
        "Optimizer": {"name": "Momentum", "momentum": 0.9,
                      "lr": {"name": "Cosine", "learning_rate": 0.1, "warmup_epoch": 1},
                      "regularizer": {"name": "L2", "coeff": 5e-4}},
        "DataLoader": {"Train": {"dataset": train_ds, "sampler": {"batch_size": 128, "drop_last": False,
                                                                  "shuffle": True}, "loader": loader},
                       "Eval": {"dataset": eval_ds, "sampler": {"batch_size": 256, "drop_last": False,
                                                                "shuffle": False}, "loader": loader}},
        "Metric": {"Eval": [{"TopkAcc": {"topk": [1, min(5, num_classes)]}}]},
    }
    if kind == "distill":
        cfg["Arch"] = {"name": "DistillationModel", "class_num": num_classes, "pretrained_list": None,
                       "freeze_params_list": [True, False],
                       "models": [{"Teacher": {"name": TEACHER_NET, "pretrained": False}},  # the pipeline: the teacher stage's
                                  {"Student": {"name": STUDENT_NET, "pretrained": False}}],
                       "infer_model_name": "Student", "teacher_bn_mode": "train"}
        cfg["Loss"] = {"Train": [{"DistillationDMLLoss": {"weight": 1.0, "model_name_pairs": [["Student", "Teacher"]]}}],
                       "Eval": [{"DistillationGTCELoss": {"weight": 1.0, "model_names": ["Student"]}}]}
        cfg["Optimizer"]["regularizer"]["coeff"] = 1e-4
    if kind == "finetune":
        cfg["Global"]["epochs"] = 5
        cfg["Optimizer"]["lr"] = {"name": "Cosine", "learning_rate": 0.01, "warmup_epoch": 0}
    return cfg


HEADER = """\
# SSLD on {name}: written by `ssld init --data {data}` ({when}).
# Run:  ssld pipeline -c {out}          (resumable; RUN = runs/{name}-default-s0)
#
# The data, measured: {labeled} labeled images ({per_class}), {pool} unlabeled, {val} val, {classes} classes;
# images {image}.
# Sizes and normalisation are 'auto' in the training configs ({cfg_dir}/): the data stage measures them.
# Teacher and distill have no Global.epochs: their budgets follow the data (Pipeline.budget): distill at least
# 1,500 optimizer steps and 10 epochs, the teacher at least as many steps as the labels-only student gets.
# The teacher guard stops the run after the baseline when the teacher is not 1 point above the labels-only
# student on held-out labeled images (--allow-weak-teacher goes on); the teacher trains without those images
# (guard.hold_out_from_teacher), or its score on them would be optimistic. Give the teacher more labeled images than
# the student (data.teacher_labeled: a list file) when you have them: SSLD gains most from a teacher that knows
# more than the student could learn from its labels.
"""


def init_pipeline(data: str, out: str | Path, root: str | None = None, force: bool = False) -> Path:
    """Write ``out`` (a pipeline file) and its training configs (``<out stem>/``); returns the pipeline path."""
    import datetime

    from ssld.data import read_list
    from ssld.pipeline.fit import describe, measure_images

    out = Path(out)
    cfg_dir = out.parent / out.stem
    if out.exists() and not force:
        raise UserError(f"--out {out}: exists; pass --force to overwrite it")
    if out.parent.is_file():
        raise UserError(f"--out {out}: {out.parent} is a file")
    found = _find_data(data, root, cfg_dir / "lists")
    labeled = read_list(found["labeled"], found["image_root"])
    labels = [s.label for s in labeled if s.label >= 0]
    if not labels:
        raise UserError(f"{found['labeled']}: no labeled images")
    val = read_list(found["val"], found["image_root"])
    num_classes = max(labels + [s.label for s in val]) + 1
    if num_classes < 2:
        raise UserError(f"{found['labeled']}: one class only; SSLD needs at least two")
    pool = len(read_list(found["unlabeled"], found["image_root"]))
    image = measure_images(Path(found["labeled"]), found["image_root"])
    size = min(image["height"], image["width"])
    cfg_dir.mkdir(parents=True, exist_ok=True)
    for kind in ("teacher", "baseline", "distill", "finetune"):
        text = f"# {kind} config for {out.name}: written by ssld init; sizes and statistics 'auto' = measured\n"
        atomic_write_text(cfg_dir / f"{kind}.yaml", text + yaml.safe_dump(training_config(kind, num_classes, size, image["sizes_vary"]),
                                                                           sort_keys=False))
    k = max(1, round(SELECT_SHARE * pool / num_classes))
    rel = cfg_dir.name
    data_sec = {"source": "lists", **{key: v for key, v in found.items() if v is not None}}
    pipeline = {
        "name": out.stem, "num_classes": num_classes, "seed": 0, "data": data_sec,
        "teacher": {"config": f"{rel}/teacher.yaml", "overrides": {}},
        "baseline": {"config": f"{rel}/baseline.yaml", "lr_grid": [0.05, 0.1, 0.2], "holdout_fraction": 0.2,
                     "grid_steps_fraction": 0.25},
        "dedup": {"enabled": pool > 0},
        "label": {"batch_size": 256, "topk": min(10, num_classes)},
        "select": {"k": k, "enabled": pool > 0},
        "distill": {"config": f"{rel}/distill.yaml", "overrides": {}},
        "finetune": {"config": f"{rel}/finetune.yaml", "overrides": {}},
        "budget": {"auto": True, "distill_min_steps": 1500, "distill_min_epochs": 10},
        "guard": {"enabled": True, "min_margin": 1.0, "allow_weak_teacher": False, "hold_out_from_teacher": True},
    }
    counts = sorted({labels.count(c) for c in set(labels)})
    per_class = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    header = HEADER.format(name=out.stem, data=data, when=datetime.date.today().isoformat(), out=out,
                           labeled=len(labels), per_class=f"{per_class} per class", pool=pool, val=len(val),
                           classes=num_classes, image=describe(image), cfg_dir=rel)
    atomic_write_text(out, header + "\n" + yaml.safe_dump({"Pipeline": copy.deepcopy(pipeline)}, sort_keys=False))
    return out
