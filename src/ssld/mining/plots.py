"""Mining figures (matplotlib, Agg): per-class selection counts, duplicate pairs side by side, dedup curves."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ssld.utils.io import atomic_path


def _plt():  # noqa: ANN202 - pyplot module
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike[str]) -> None:  # noqa: ANN001 - matplotlib Figure
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)


def class_count_chart(selected: np.ndarray, candidates: np.ndarray, k: int, path: str | os.PathLike[str]) -> None:
    """Bar chart of images selected per class, with each class's candidate count and the target k."""
    plt = _plt()
    c = len(selected)
    fig, ax = plt.subplots(figsize=(min(max(6, 0.25 * c), 30), 3.5))
    x = np.arange(c)
    ax.bar(x, np.minimum(candidates, max(k, 1) * 1.5), color="#cfd8e3", label="candidates (clipped)")
    ax.bar(x, selected, color="#3b6ea5", label="selected")
    ax.axhline(k, color="#c0392b", lw=1, ls="--", label=f"k = {k}")
    ax.set_xlabel("class")
    ax.set_ylabel("images")
    ax.set_title(f"top-{k} per class: {int(selected.sum())} selected, {int((selected < k).sum())} classes short")
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)


def pairs_grid(pairs: Sequence[tuple[str, str, str]], path: str | os.PathLike[str], cols: int = 4) -> None:
    """Pool image beside its matched reference, one pair per cell; ``pairs`` are ``(pool, ref, caption)``."""
    from PIL import Image

    plt = _plt()
    rows = max(1, (len(pairs) + cols - 1) // cols)
    fig, axes = plt.subplots(rows, 2 * cols, figsize=(2.2 * cols * 2, 2.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, (pool, ref, caption) in enumerate(pairs):
        r, c = divmod(i, cols)
        for j, (p, title) in enumerate(((pool, caption), (ref, "reference"))):
            ax = axes[r, 2 * c + j]
            try:
                with Image.open(p) as img:
                    ax.imshow(np.asarray(img.convert("RGB")))
            except OSError:
                ax.text(0.5, 0.5, "unreadable", ha="center", va="center")
            ax.set_title(title, fontsize=7)
    if not pairs:
        axes[0, 0].text(0, 0.5, "no duplicates found", fontsize=10)
    _save(fig, path)


def tradeoff_curve(points: Sequence[tuple[float, float, float]], chosen: float, path: str | os.PathLike[str],
                   xlabel: str) -> None:
    """Recall and share of other images removed against a threshold; ``points`` are ``(threshold, recall, removed)``."""
    plt = _plt()
    t, rec, rem = (np.array(v) for v in zip(*points, strict=True))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(t, rec, marker="o", label="recall of planted copies")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("recall")
    ax2 = ax.twinx()
    ax2.plot(t, 100 * rem, marker="s", color="#c0392b", label="other pool images removed (%)")
    ax2.set_ylabel("others removed (%)")
    ax.axvline(chosen, color="gray", ls="--", lw=1)
    fig.legend(fontsize=8, loc="lower center", ncol=2)
    _save(fig, path)
