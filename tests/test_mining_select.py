"""Top-k per class selection on a hand-built store: ties, short classes, min-score, multi-label, merge."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ssld.cli import main
from ssld.data.store import SoftLabelStore
from ssld.errors import UserError
from ssld.mining.select import select_topk
from ssld.utils.io import write_json

PATHS = ["e.png", "d.png", "c.png", "b.png", "a.png", "f.png", "g.png", "h.png"]
IDX = [[0, 1], [0, 2], [0, 1], [1, 0], [1, 2], [0, 1], [2, 0], [0, 1]]
PROB = [[.9, .1], [.9, .1], [.6, .4], [.5, .45], [.8, .2], [.3, .3], [.55, .4], [.2, .15]]


def make_store(root: Path, complete: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "topk_idx.npy", np.array(IDX, np.int32))
    np.save(root / "topk_prob.npy", np.array(PROB, np.float16))
    (root / "paths.txt").write_text("\n".join(PATHS) + "\n")
    write_json(root / "manifest.json", {"num_classes": 3, "k": 2, "count": len(PATHS), "full": False,
                                        "complete": complete, "skipped": [], "image_root": "."})
    return root


def picked(store: SoftLabelStore, sel) -> list[tuple[int, str]]:
    return [(int(c), store.paths[r]) for r, c in zip(sel.rows, sel.classes, strict=True)]


def test_top1_selection_ties_and_short_classes(tmp_path: Path) -> None:
    store = SoftLabelStore.open(make_store(tmp_path / "s"))
    sel = select_topk(store, k=2)
    # d and e tie at 0.9: path order puts d first; class 2 has one candidate only
    assert picked(store, sel) == [(0, "d.png"), (0, "e.png"), (1, "a.png"), (1, "b.png"), (2, "g.png")]
    assert sel.selected.tolist() == [2, 2, 1] and sel.candidates.tolist() == [5, 2, 1]
    assert picked(store, select_topk(store, k=3))[:3] == [(0, "d.png"), (0, "e.png"), (0, "c.png")]


def test_min_score_and_multi_label(tmp_path: Path) -> None:
    store = SoftLabelStore.open(make_store(tmp_path / "s"))
    assert picked(store, select_topk(store, k=2, min_score=0.58)) == [(0, "d.png"), (0, "e.png"), (1, "a.png")]
    multi = picked(store, select_topk(store, k=2, multi_label=True))
    assert multi == [(0, "d.png"), (0, "e.png"), (1, "a.png"), (1, "b.png"), (2, "g.png"), (2, "a.png")]


def test_select_command_writes_lists_stats_chart_and_merge(tmp_path: Path, capsys) -> None:
    store = make_store(tmp_path / "s")
    labeled = tmp_path / "labeled.txt"
    labeled.write_text("b.png 1\nz.png 0\n")
    out = tmp_path / "sel" / "selected.txt"
    rc = main(["select", "--store", str(store), "--k", "2", "--out", str(out), "--merge", str(labeled)])
    assert rc == 0
    assert out.read_text().split() == ["d.png", "e.png", "a.png", "b.png", "g.png"]
    assert (out.parent / "merged.txt").read_text().splitlines() == [
        "b.png 1", "z.png 0", "d.png", "e.png", "a.png", "g.png"]
    stats = json.loads((out.parent / "select_stats.json").read_text())
    assert stats["total"] == 5 and stats["classes_short_of_k"] == [2] and stats["per_class"][0]["candidates"] == 5
    assert (out.parent / "select_counts.png").stat().st_size > 1000
    assert "1 classes had fewer than 2" in capsys.readouterr().out
    pseudo = tmp_path / "pseudo.txt"
    assert main(["select", "--store", str(store), "--k", "1", "--out", str(pseudo), "--assign-label",
                 "--multi-label"]) == 0
    assert pseudo.read_text().splitlines() == ["d.png 0", "a.png 1", "g.png 2"]


def test_bad_select_inputs(tmp_path: Path, capsys) -> None:
    store = make_store(tmp_path / "s")
    for k in ("0", "-3"):
        assert main(["select", "--store", str(store), "--k", k, "--out", str(tmp_path / "x.txt")]) == 2
    assert "--k: must be a positive" in capsys.readouterr().err
    with pytest.raises(UserError, match="positive"):
        select_topk(SoftLabelStore.open(store), 0)
    make_store(tmp_path / "half", complete=False)
    assert main(["select", "--store", str(tmp_path / "half"), "--k", "2", "--out", str(tmp_path / "y.txt")]) == 2
    assert "incomplete" in capsys.readouterr().err
    assert not (tmp_path / "y.txt").exists()
