"""Mining figures: per-class selection counts and dedup curves (matplotlib, Agg), duplicate pairs side by side."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ssld.utils.io import atomic_path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike[str]) -> None:
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


def pairs_grid(pairs: Sequence[tuple[str, str, str]], path: str | os.PathLike[str], cols: int = 4,
               thumb: int = 128) -> None:
    """Pool image beside its matched reference, one pair per cell, captioned; ``pairs`` are ``(pool, ref, caption)``.

    Drawn with Pillow (not matplotlib): dozens of image axes take seconds to lay out, a canvas takes milliseconds.
    """
    from PIL import Image, ImageDraw

    rows = max(1, (len(pairs) + cols - 1) // cols)
    cell_w, cell_h, pad, head = 2 * thumb + 4, thumb + 16, 8, 18
    canvas = Image.new("RGB", (cols * (cell_w + pad) + pad, head + rows * (cell_h + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((pad, 3), "each pair: pool image | matched reference", fill="black")
    for i, (pool, ref, caption) in enumerate(pairs):
        r, c = divmod(i, cols)
        x, y = pad + c * (cell_w + pad), head + r * (cell_h + pad)
        for j, p in enumerate((pool, ref)):
            try:
                with Image.open(p) as img:
                    small = img.convert("RGB")
                scale = thumb / max(small.size)
                small = small.resize((max(1, round(small.width * scale)), max(1, round(small.height * scale))),
                                     Image.NEAREST if scale > 1 else Image.BILINEAR)
                canvas.paste(small, (x + j * (thumb + 4), y))
            except OSError:
                draw.text((x + j * (thumb + 4), y + thumb // 2), "unreadable", fill="red")
        draw.text((x, y + thumb + 2), caption, fill="black")
    if not pairs:
        draw.text((pad, head), "no duplicates found", fill="black")
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")


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
