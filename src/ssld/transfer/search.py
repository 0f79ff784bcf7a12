"""Transfer learning from a (distilled) backbone: the reference's search over ``lr_mult_list``, base lr and L2.

Every grid point finetunes the same starting weights (backbone + a fresh classifier for the new classes) on the
NEW task's training list minus a stratified validation part, and is scored on that validation part; the test
list (``DataLoader.Eval``) is never looked at while choosing. The chosen setting is then retrained on the whole
training list and evaluated on the test list. Results: ``transfer_results.json`` and ``transfer_results.md`` in
``Global.output_dir``; finished grid points are reused when the search is run again with the same inputs (each
run's ``transfer_point.json``, an ``ssld.utils.cache`` record keyed by its setting, starting weights, training list
and epochs).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ssld.config.schema import DataSplitConfig, SSLDConfig
from ssld.errors import UserError
from ssld.transfer.grid import (
    Setting,
    carve_val,
    default_grid,
    init_weights,
    parse_grid,
    settings,
)
from ssld.utils.cache import FinishedWork
from ssld.utils.io import atomic_write_text, sha256_file, write_json

log = logging.getLogger("ssld.transfer")


def _with_list(split: DataSplitConfig, list_file: Path, image_root: str | None = None,
               ops: list[Any] | None = None) -> DataSplitConfig:
    update: dict[str, Any] = {"cls_label_path": str(list_file), "name": "ImageNetDataset"}
    if image_root is not None:
        update["image_root"] = image_root
    if ops is not None:
        update["transform_ops"] = ops
    return split.model_copy(update={"dataset": split.dataset.model_copy(update=update)})


def run_config(cfg: SSLDConfig, setting: Setting, out_dir: Path, init: Path, train: DataSplitConfig,
               evaluate_on: DataSplitConfig) -> SSLDConfig:
    """The training config of one run: ``setting``'s optimizer values, starting from ``init``, evaluated once
    at the end on ``evaluate_on``."""
    opt = cfg.Optimizer
    lr = opt.lr.model_copy(update={"learning_rate": setting.lr})
    mults = list(setting.lr_mult) if setting.lr_mult else None
    epochs = cfg.Global.epochs
    glob = cfg.Global.model_copy(update={"output_dir": str(out_dir), "pretrained_model": str(init),
                                         "checkpoints": None, "eval_interval": epochs, "save_interval": epochs})
    return cfg.model_copy(update={
        "Global": glob,
        "Arch": cfg.Arch.model_copy(update={"lr_mult_list": None}),
        "Optimizer": opt.model_copy(update={"lr": lr, "lr_mult_list": mults, "weight_decay": setting.l2}),
        "DataLoader": cfg.DataLoader.model_copy(update={"Train": train, "Eval": evaluate_on}),
    })


def _train_once(cfg: SSLDConfig, setting: Setting, init_hash: str) -> dict[str, Any]:
    """Train one run, or reuse its report when the same setting and starting weights already finished."""
    from ssld.engine import train

    key = {"setting": [setting.lr, setting.lr_mult, setting.l2], "init": init_hash,
           "train": cfg.DataLoader.Train.dataset.cls_label_path, "epochs": cfg.Global.epochs}
    point = FinishedWork(Path(cfg.Global.output_dir) / "transfer_point.json", key_field="key")
    return point.reuse_or_run(key, lambda: {"report": train(cfg)})["report"]


def _samples(cfg: SSLDConfig) -> list[Any]:
    from ssld.data import read_image_folder, read_list

    if cfg.DataLoader.Train is None or cfg.DataLoader.Eval is None:
        raise UserError("DataLoader: transfer needs Train (the new task's training data) and Eval (its test data)")
    ds = cfg.DataLoader.Train.dataset
    if ds.name == "ImageFolder":
        return read_image_folder(ds.image_root)
    if not ds.cls_label_path:
        raise UserError("DataLoader.Train.dataset.cls_label_path: the new task's training list is required")
    return read_list(ds.cls_label_path, ds.image_root, cfg.Arch.class_num, "Arch.class_num")  # checked up front


def run_transfer(cfg: SSLDConfig, backbone: str | Path, grid_specs: list[str] | None = None,
                 val_fraction: float = 0.2) -> dict[str, Any]:
    """Search the grid on a validation split of the training list, retrain the best setting on all of it, and
    evaluate on ``DataLoader.Eval``; returns (and writes) the results."""
    from ssld.data import write_list

    out = Path(cfg.Global.output_dir)
    samples = _samples(cfg)
    train_part, val_part = carve_val(samples, val_fraction, cfg.Global.seed)
    root = cfg.DataLoader.Train.dataset.image_root
    write_list(out / "splits" / "train_part.txt", train_part, root=root)
    write_list(out / "splits" / "val_part.txt", val_part, root=root)
    write_list(out / "splits" / "train_all.txt", samples, root=root)
    init, n_groups = init_weights(cfg, backbone, out)
    init_hash = sha256_file(init)
    grid = parse_grid(grid_specs or [], default_grid(cfg, n_groups), n_groups)
    train_split = _with_list(cfg.DataLoader.Train, out / "splits" / "train_part.txt")
    val_split = _with_list(cfg.DataLoader.Eval, out / "splits" / "val_part.txt", image_root=root)
    rows: list[dict[str, Any]] = []
    for i, setting in enumerate(settings(grid)):
        log.info("transfer grid %d: %s", i, setting.label())
        run = run_config(cfg, setting, out / "grid" / f"{i:02d}", init, train_split, val_split)
        report = _train_once(run, setting, init_hash)
        rows.append({"index": i, "lr": setting.lr, "lr_mult": setting.lr_mult, "l2": setting.l2,
                     "val_top1": report.get("top1"), "val_count": report.get("count")})
    best_row = max(rows, key=lambda r: (r["val_top1"] or 0.0, -r["index"]))
    best = Setting(best_row["lr"], best_row["lr_mult"], best_row["l2"])
    final_cfg = run_config(cfg, best, out / "final", init,
                           _with_list(cfg.DataLoader.Train, out / "splits" / "train_all.txt"), cfg.DataLoader.Eval)
    final = _train_once(final_cfg, best, init_hash)
    results = {
        "backbone": str(backbone), "arch": cfg.Arch.name, "lr_mult_groups": n_groups,
        "n_train": len(train_part), "n_val": len(val_part), "n_train_all": len(samples), "epochs": cfg.Global.epochs,
        "grid": rows, "chosen": best_row["index"], "chosen_setting": best.label(),
        "test_top1": final.get("top1"), "test_top5": final.get("top5"), "test_count": final.get("count"),
    }
    write_json(out / "transfer_results.json", results)
    atomic_write_text(out / "transfer_results.md", results_table(results))
    return results


def results_table(results: dict[str, Any]) -> str:
    """Markdown: one row per grid point (validation top-1), the chosen one marked, then its test top-1."""
    intro = (f"Transfer from `{results['backbone']}` ({results['arch']}): grid chosen on a validation split of "
             f"{results['n_val']} images carved from the training list ({results['n_train']} left for training).")
    lines = [intro, "", "| # | lr | lr_mult | L2 | val top-1 |", "|---|---|---|---|---|"]
    for r in results["grid"]:
        mult = "1.0 (all)" if r["lr_mult"] is None else ", ".join(f"{m:g}" for m in r["lr_mult"])
        mark = " **chosen**" if r["index"] == results["chosen"] else ""
        lines.append(f"| {r['index']} | {r['lr']:g} | {mult} | {r['l2']:g} | {100 * (r['val_top1'] or 0):.2f}%{mark} |")
    chosen = (f"Chosen: {results['chosen_setting']}; retrained on all {results['n_train_all']} training images: "
              f"**test top-1 {100 * (results['test_top1'] or 0):.2f}%** ({results['test_count']} test images).")
    lines += ["", chosen]
    return "\n".join(lines) + "\n"
