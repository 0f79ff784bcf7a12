"""The pieces of the transfer-learning search (``ssld.transfer.search``): the grid over base lr, ``lr_mult_list`` and
L2 decay, the validation split carved from the new task's training list, and the shared starting weights
(backbone + one fresh classifier for the new classes)."""

from __future__ import annotations

import copy
import itertools
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssld.config.schema import SSLDConfig
from ssld.errors import UserError

GRID_KEYS = ("lr", "lr_mult", "l2")


@dataclass(frozen=True)
class Setting:
    """One grid point: base lr, per-stage lr multipliers (None: all 1.0) and L2 decay."""

    lr: float
    lr_mult: tuple[float, ...] | None
    l2: float

    def label(self) -> str:
        mult = "1.0 (all)" if self.lr_mult is None else "[" + ", ".join(f"{m:g}" for m in self.lr_mult) + "]"
        return f"lr {self.lr:g}, lr_mult {mult}, l2 {self.l2:g}"


def ramp(low: float, high: float, n: int) -> tuple[float, ...]:
    """``n`` multipliers rising linearly from ``low`` (stem) to ``high`` (last stage)."""
    return tuple(round(low + (high - low) * i / max(n - 1, 1), 4) for i in range(n))


def default_grid(cfg: SSLDConfig, n_groups: int) -> dict[str, list[Any]]:
    """The config's lr and L2 and a third of / a quarter of them; lr_mult: none, the MobileNetV3 list's range
    (0.25..0.75) and the ResNet50_vd list's range (0.1..0.3) as ramps over the model's ``n_groups`` stages."""
    lr, l2 = cfg.Optimizer.lr.learning_rate, cfg.Optimizer.decay
    return {"lr": [lr, lr / 3], "lr_mult": [None, ramp(0.25, 0.75, n_groups), ramp(0.1, 0.3, n_groups)],
            "l2": sorted({l2, l2 / 4}, reverse=True)}


def parse_grid(specs: list[str], base: dict[str, list[Any]], n_groups: int) -> dict[str, list[Any]]:
    """Apply ``--grid`` entries such as ``lr=0.03,0.01``, ``l2=1e-4,5e-5`` or ``lr_mult=1,0.1:0.2:0.3:0.5``
    (candidates separated by commas, stages by colons, ``1`` or ``none`` meaning no multipliers)."""
    grid = dict(base)
    for spec in specs:
        for item in spec.replace(";", " ").split():
            key, sep, values = item.partition("=")
            if not sep or key not in GRID_KEYS or not values:
                raise UserError(f"--grid: '{item}': expected KEY=V1,V2 with KEY one of {', '.join(GRID_KEYS)}")
            try:
                if key == "lr_mult":
                    grid[key] = [_mults(v, n_groups) for v in values.split(",")]
                else:
                    grid[key] = [float(v) for v in values.split(",")]
            except ValueError as e:
                raise UserError(f"--grid: '{item}': {e}") from None
    return grid


def _mults(text: str, n_groups: int) -> tuple[float, ...] | None:
    if text.lower() in ("1", "none"):
        return None
    mults = tuple(float(v) for v in text.split(":"))
    if len(mults) != n_groups:
        raise ValueError(f"lr_mult {text} has {len(mults)} values; this model needs {n_groups} (stem + stages)")
    return mults


def settings(grid: dict[str, list[Any]]) -> list[Setting]:
    """Every combination of the grid, lr_mult varying slowest."""
    return [Setting(lr, mult, l2) for mult, lr, l2 in itertools.product(grid["lr_mult"], grid["lr"], grid["l2"])]


def carve_val(samples: list[Any], fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    """Stratified split of labeled samples into (train part, validation part); every class with 2 or more
    samples gives at least one to validation. Unlabeled samples stay in the train part."""
    if not 0 < fraction < 1:
        raise UserError(f"--val-fraction: must be between 0 and 1, got {fraction}")
    by_class: dict[int, list[Any]] = defaultdict(list)
    for s in samples:
        by_class[s.label].append(s)
    rng = random.Random(seed)
    train, val = list(by_class.pop(-1, [])), []
    for label in sorted(by_class):
        items = by_class[label][:]
        rng.shuffle(items)
        k = max(1, round(len(items) * fraction)) if len(items) >= 2 else 0
        val += items[:k]
        train += items[k:]
    if not val:
        raise UserError("DataLoader.Train: too few labeled images to carve a validation split from")
    return train, val


def init_weights(cfg: SSLDConfig, backbone: str | Path, out: Path) -> tuple[Path, int]:
    """The new task's model with the backbone's weights and a fresh classifier, saved to ``out``; returns the
    path and the number of lr_mult groups of the model.

    ``backbone`` is ``ssld export --backbone``'s ``backbone.safetensors`` (no classifier) or any weights file of
    the same architecture (its classifier is dropped).
    """
    import torch

    from ssld.models import (
        classifier_param_names,
        create_model,
        load_weights,
        save_safetensors,
    )

    if not Path(backbone).is_file():
        raise UserError(f"--backbone: {backbone}: file not found")
    _, spec = cfg.Arch.infer_spec()
    torch.manual_seed(cfg.Global.seed)
    model = create_model(spec, cfg.Arch.class_num)
    head = set(classifier_param_names(model))
    fresh = {k: v.clone() for k, v in model.state_dict().items() if k in head}
    headless = copy.deepcopy(model)
    headless.reset_classifier(0)
    try:
        load_weights(headless, str(backbone), strict=True)
        model.load_state_dict(headless.state_dict(), strict=False)
    except UserError:
        load_weights(model, str(backbone), strict=True, ignore_classifier=True)
    model.load_state_dict(fresh, strict=False)
    path = out / "init.safetensors"
    save_safetensors(model.state_dict(), path)
    return path, group_count(model)


def group_count(model: Any) -> int:
    """How many lr_mult values the model takes: stem + stages for ResNets, else 5 (the reference's count for
    MobileNetV3) or as many as it has blocks/stages when fewer."""
    from ssld.models import lr_mult_groups

    for n in (5, 4, 6, 3, 7, 2, 8, 1):
        try:
            lr_mult_groups(model, n)
            return n
        except ValueError:
            continue
    raise UserError(f"Arch: {type(model).__name__} cannot be split into lr_mult stages")
