"""Top-k per class selection from a soft-label store (Yalniz et al. 2019, "billion-scale semi-supervised").

For each class c, the candidates are the images whose stored top-k contains c, ranked by the teacher's
probability of c; the k best are kept. By default an image is a candidate only for its top-1 class, so it is
selected at most once and under the class the teacher believes most; with ``multi_label`` it is a candidate
for every class in its stored top-k and may be selected under several. Ties in probability are broken by path
(lexicographic), so the selection does not depend on list order. Vectorised: one lexsort over the candidates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ssld.data.store import SoftLabelStore
from ssld.errors import UserError


@dataclass
class Selection:
    """Selected (row, class, score) triples, grouped by class and ranked within it, plus per-class counts."""

    rows: np.ndarray
    classes: np.ndarray
    scores: np.ndarray
    selected: np.ndarray
    candidates: np.ndarray
    k: int


def select_topk(store: SoftLabelStore, k: int, min_score: float = 0.0, multi_label: bool = False,
                only: np.ndarray | None = None) -> Selection:
    """The ``k`` highest-probability images of each class (fewer where a class has fewer candidates).

    ``only`` (a boolean mask over the store's rows) limits the candidates, e.g. to the images dedup kept when
    the whole pool was labeled first (one teacher pass serves dedup and labeling).
    """
    if k < 1:
        raise UserError(f"--k: must be a positive number of images per class, got {k}")
    n, kk = store.topk_idx.shape
    if multi_label:
        rows = np.repeat(np.arange(n), kk)
        classes = np.asarray(store.topk_idx, dtype=np.int64).ravel()
        scores = np.asarray(store.topk_prob, dtype=np.float32).ravel()
    else:
        rows = np.arange(n)
        classes = np.asarray(store.topk_idx[:, 0], dtype=np.int64)
        scores = np.asarray(store.topk_prob[:, 0], dtype=np.float32)
    keep = scores >= min_score
    if only is not None:
        keep &= np.asarray(only, dtype=bool)[rows]
    rows, classes, scores = rows[keep], classes[keep], scores[keep]
    path_rank = np.empty(n, dtype=np.int64)
    path_rank[np.argsort(np.asarray(store.paths, dtype=object), kind="stable")] = np.arange(n)
    order = np.lexsort((path_rank[rows], -scores, classes))
    rows, classes, scores = rows[order], classes[order], scores[order]
    starts = np.searchsorted(classes, classes, side="left")
    top = (np.arange(len(classes)) - starts) < k
    c = store.num_classes
    return Selection(rows[top], classes[top], scores[top], np.bincount(classes[top], minlength=c),
                     np.bincount(classes, minlength=c), k)


def rows_in_list(store: SoftLabelStore, list_path: str | os.PathLike[str]) -> np.ndarray:
    """Mask of the store's rows whose path a list names (as written, or relative to the store's image root)."""
    from ssld.data import read_list

    if not Path(list_path).is_file():
        raise UserError(f"--keep {list_path}: list file not found")
    paths = [s.path for s in read_list(list_path, ".")]
    rows = store.rows_of(paths)
    root = store.manifest.get("image_root")
    if root is not None:
        again = store.rows_of([os.path.relpath(p, root) for p in paths])
        rows = np.where(rows >= 0, rows, again)
    mask = np.zeros(len(store), dtype=bool)
    mask[rows[rows >= 0]] = True
    return mask


def selection_stats(sel: Selection, min_score: float, multi_label: bool) -> dict[str, Any]:
    """Per-class counts and score quantiles, totals, and the classes that got fewer than k images."""
    q = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]
    per_class = []
    for c in range(len(sel.selected)):
        s = sel.scores[sel.classes == c]
        per_class.append({"class": c, "selected": int(sel.selected[c]), "candidates": int(sel.candidates[c]),
                          "min_score": float(s.min()) if len(s) else None,
                          "median_score": float(np.median(s)) if len(s) else None})
    return {
        "k": sel.k, "min_score": min_score, "multi_label": multi_label,
        "total": len(sel.rows), "unique_images": len(np.unique(sel.rows)),
        "score_quantiles": {str(p): float(np.quantile(sel.scores, p)) for p in q} if len(sel.scores) else {},
        "classes_short_of_k": [c for c in range(len(sel.selected)) if sel.selected[c] < sel.k],
        "per_class": per_class,
    }


def selected_entries(store: SoftLabelStore, sel: Selection, assign_label: bool) -> list[tuple[str, int]]:
    """List entries: unique paths (label -1), or one ``(path, teacher class)`` per selection with assign_label."""
    if assign_label:
        return [(store.paths[r], int(c)) for r, c in zip(sel.rows, sel.classes, strict=True)]
    seen: set[int] = set()
    out = []
    for r in sel.rows:
        if r not in seen:
            seen.add(int(r))
            out.append((store.paths[r], -1))
    return out


def merge_with_labeled(labeled_list: str | os.PathLike[str], entries: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The labeled list's entries first, then the selected ones whose path is not among them."""
    from ssld.data import read_list

    if not Path(labeled_list).is_file():
        raise UserError(f"--merge {labeled_list}: list file not found")
    labeled = [(os.path.normpath(s.path), s.label) for s in read_list(labeled_list, ".")]
    have = {p for p, _ in labeled}
    return labeled + [(p, c) for p, c in entries if os.path.normpath(p) not in have]
