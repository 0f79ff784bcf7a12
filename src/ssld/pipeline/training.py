"""Training stages: turn a training config + pipeline overrides into ``RUN/<stage>/config.yaml`` and train it.

The written config is an ordinary ssld config (``ssld train -c RUN/teacher/config.yaml`` reproduces the stage),
with the run's lists, seed and output folder filled in. A stage that was interrupted resumes from its own
``checkpoints/latest.pt``. Step counts are computed the way the engine iterates (per-epoch cap, accumulation).
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ssld.config import SSLDConfig, load_config
from ssld.config.loader import read_yaml
from ssld.config.overrides import set_path
from ssld.errors import UserError
from ssld.utils.io import atomic_write_text

LATEST = Path("checkpoints") / "latest.pt"
WEIGHTS = "student.safetensors"


@dataclass(frozen=True)
class Lists:
    """The list files a training stage reads (paths relative to ``image_root``)."""

    image_root: str
    train: str
    eval: str


def read_training_yaml(path: Path, overrides: dict[str, Any], where: str) -> dict[str, Any]:
    """The raw training config with the pipeline's ``{key.path: value}`` overrides applied."""
    data, _ = read_yaml(path)
    for key, value in overrides.items():
        try:
            set_path(data, [p for p in key.split(".") if p], copy.deepcopy(value), f"{key}={value!r}")
        except UserError as e:
            raise UserError(f"{where}.overrides.{key}: {e}") from None
    return data


def frozen_model_index(data: dict[str, Any]) -> tuple[int, str]:
    """Index and name of the teacher (first frozen model) in a raw DistillationModel ``Arch``."""
    arch = data.get("Arch") or {}
    models = arch.get("models") or []
    frozen = arch.get("freeze_params_list") or []
    for i, (entry, is_frozen) in enumerate(zip(models, frozen, strict=False)):
        if is_frozen:
            return i, next(iter(entry))
    raise UserError("Arch.freeze_params_list: the distill config needs a frozen teacher model")


def write_stage_config(
    data: dict[str, Any], stage_dir: Path, lists: Lists, seed: int, resume: bool, source: str
) -> SSLDConfig:
    """Fill in lists, seed, output folder and resume checkpoint; write and validate ``config.yaml``."""
    data = json.loads(json.dumps(data))  # deep copy of plain YAML data
    glob = data.setdefault("Global", {}) or {}
    data["Global"] = glob
    glob["output_dir"] = str(stage_dir)
    glob["seed"] = seed
    latest = stage_dir / LATEST
    glob["checkpoints"] = str(latest) if resume and latest.is_file() else None
    loaders = data.setdefault("DataLoader", {})
    for split, list_path in (("Train", lists.train), ("Eval", lists.eval)):
        section = loaders.get(split)
        if not isinstance(section, dict) or not isinstance(section.get("dataset"), dict):
            raise UserError(f"{source}: DataLoader.{split}.dataset: required by the pipeline")
        section["dataset"]["image_root"] = lists.image_root
        section["dataset"]["cls_label_path"] = list_path
    path = stage_dir / "config.yaml"
    atomic_write_text(path, f"# written by ssld pipeline from {source}\n" + yaml.safe_dump(data, sort_keys=False))
    try:
        return load_config(path)
    except UserError as e:
        raise UserError(f"{source} (as changed by the pipeline): {e}") from None


def steps_per_epoch(cfg: SSLDConfig, n_images: int) -> int:
    """Optimizer steps one epoch of ``n_images`` takes with this config on one process."""
    sampler = cfg.DataLoader.Train.sampler
    batches = n_images // sampler.batch_size if sampler.drop_last else math.ceil(n_images / sampler.batch_size)
    if cfg.Global.max_steps_per_epoch:
        batches = min(batches, cfg.Global.max_steps_per_epoch)
    return max(1, batches // cfg.Global.accum_steps)


def train_config(cfg: SSLDConfig) -> dict[str, Any]:
    """Run the engine on a resolved config; returns its final metrics."""
    from ssld.engine import train

    return train(cfg)


def percent(value: float | None) -> float | None:
    """An accuracy fraction from the engine as a percentage with two decimals."""
    return None if value is None else round(100.0 * float(value), 2)


def count_lines(path: str | Path) -> int:
    """Images in a list file (non-blank, non-comment lines)."""
    return sum(1 for line in Path(path).read_text().splitlines() if line.strip() and not line.startswith("#"))


def evaluate_weights(cfg: SSLDConfig, weights: Path, list_path: str, image_root: str,
                     batch_size: int = 256) -> dict[str, Any]:
    """Top-1/top-5 (in %) of the config's inference model with ``weights`` on a list (the config's Eval
    transform, at most 2 loader workers)."""
    from ssld.engine.evaluate import evaluate_weights as evaluate_on

    split = cfg.DataLoader.Eval.model_copy(deep=True)
    split.dataset.cls_label_path = list_path
    split.dataset.image_root = image_root
    split.sampler.batch_size = batch_size
    split.loader.num_workers = min(split.loader.num_workers, 2)
    result = evaluate_on(cfg, weights, split)
    return {**result, "top1": percent(result["top1"]), "top5": percent(result["top5"])}
