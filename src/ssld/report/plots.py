"""Report figures (matplotlib, Agg): learning curves per training stage and the val accuracy bar chart."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ssld.utils.io import atomic_path


def _plt():  # the pyplot module, imported on first use with the Agg backend
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike[str]) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``metrics.jsonl`` (a torn last line from a killed run is ignored)."""
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    return rows


def learning_curves(curves: dict[str, list[dict[str, Any]]], path: str | os.PathLike[str]) -> bool:
    """One panel per stage: training loss and val top-1 (logged only, never used to choose) against epoch.

    Returns False (and writes nothing) when no stage has epoch rows.
    """
    stages = {name: [r for r in rows if "epoch" in r] for name, rows in curves.items()}
    stages = {name: rows for name, rows in stages.items() if rows}
    if not stages:
        return False
    plt = _plt()
    fig, axes = plt.subplots(1, len(stages), figsize=(3.6 * len(stages), 3.0), squeeze=False)
    for ax, (name, rows) in zip(axes[0], stages.items(), strict=True):
        loss = [(r["epoch"], r["train_loss"]) for r in rows if r.get("train_loss") is not None]
        acc = [(r["epoch"], 100.0 * r["top1"]) for r in rows if r.get("top1") is not None]
        if loss:
            ax.plot(*zip(*loss, strict=True), color="#7f8c8d", marker=".", label="train loss")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        if acc:
            ax2 = ax.twinx()
            ax2.plot(*zip(*acc, strict=True), color="#3b6ea5", marker="o", ms=3, label="val top-1 %")
            ax2.set_ylabel("val top-1 %", color="#3b6ea5")
        ax.set_ylabel("train loss", color="#7f8c8d")
    fig.tight_layout()
    _save(fig, path)
    return True


def accuracy_bars(rows: list[dict[str, Any]], path: str | os.PathLike[str]) -> bool:
    """Val top-1 of each model of the run, the baseline's level as a dashed line. False when there are no rows."""
    rows = [r for r in rows if r.get("top1") is not None]
    if not rows:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.6 * len(rows) + 1.5, 3.2))
    names = [r["stage"] for r in rows]
    values = [r["top1"] for r in rows]
    colors = ["#95a5a6" if n == "teacher" else "#c0392b" if n == "baseline" else "#3b6ea5" for n in names]
    bars = ax.bar(names, values, color=colors)
    for bar, v in zip(bars, values, strict=True):
        ax.text(bar.get_x() + bar.get_width() / 2, v, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    base = next((r["top1"] for r in rows if r["stage"] == "baseline"), None)
    if base is not None:
        ax.axhline(base, color="#c0392b", lw=1, ls="--")
    low = min(values)
    ax.set_ylim(max(0.0, low - 10), min(100.0, max(values) + 3))
    ax.set_ylabel("val top-1 %")
    ax.set_title("last weights of each stage on val")
    _save(fig, path)
    return True
