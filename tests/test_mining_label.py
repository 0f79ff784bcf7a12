"""Soft-label store: labeling, round-trip, skipped files, resume after a kill, and bad stores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.fashion_mnist import write_fmnist_list
from helpers.models import TinyNet

from ssld.data import ImageListDataset, build_transform, read_list
from ssld.data.store import SoftLabelStore, completed_shards
from ssld.errors import UserError
from ssld.mining.label import label

META = {"teacher": "tiny", "weights_sha256": "0" * 64, "transform": [], "source_sha256": "1" * 64}


class Killed(Exception):
    """Stands in for the process dying."""


def _setup(tmp_path: Path, n: int = 30, bad: bool = False) -> tuple[ImageListDataset, list[str], list[str]]:
    lst = write_fmnist_list(tmp_path, n)
    if bad:
        (tmp_path / "img" / "zero.png").write_bytes(b"")
        (tmp_path / "img" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
        with open(lst, "a") as f:
            f.write("img/zero.png\nimg/missing.png\nimg/corrupt.png\n")
    samples = read_list(lst, tmp_path)
    ds = ImageListDataset(samples, build_transform([{"ResizeImage": {"size": 28}}]))
    return ds, [s.path.removeprefix(str(tmp_path) + "/") for s in samples], [s.path for s in samples]


def _label(ds, paths, files, out, **kw):
    args = {"paths": paths, "files": files, "meta": META, "num_classes": 10, "topk": 3, "full": True,
            "batch_size": 5, "workers": 0, "shard_size": 8}
    args.update(kw)
    return label(ds, TinyNet(), out, **args)


def test_store_round_trip_matches_eval_mode_teacher(tmp_path: Path) -> None:
    ds, paths, files = _setup(tmp_path, 30, bad=True)
    manifest = _label(ds, paths, files, tmp_path / "store")
    store = SoftLabelStore.open(tmp_path / "store")
    assert manifest["complete"] and len(store) == 30 == store.manifest["count"]
    assert store.paths == paths[:30]
    assert {(s["path"], s["reason"]) for s in store.manifest["skipped"]} == {
        ("img/zero.png", "unreadable"), ("img/missing.png", "missing"), ("img/corrupt.png", "unreadable")}
    assert store.topk_idx.dtype == np.int32 and store.topk_prob.dtype == np.float16 and store.probs.shape == (30, 10)
    model = TinyNet().eval()
    with torch.no_grad():
        probs = torch.stack([model(ds[i]["image"][None])[0] for i in range(30)]).softmax(-1).numpy()
    np.testing.assert_allclose(store.probs.astype(np.float32), probs, atol=1e-3)
    np.testing.assert_array_equal(store.topk_idx[:, 0], probs.argmax(1))
    idx, prob = store[7]
    assert list(idx) == list(np.argsort(-probs[7])[:3]) and np.all(np.diff(prob.astype(np.float32)) <= 0)
    assert store.index_of("img/00007.png") == 7 and store.index_of("./img/00007.png") == 7
    np.testing.assert_allclose(store.dense(7), probs[7], atol=1e-3)
    assert not (tmp_path / "store" / "shards").exists()


def test_dense_from_topk_only_store(tmp_path: Path) -> None:
    ds, paths, files = _setup(tmp_path, 12)
    _label(ds, paths, files, tmp_path / "store", full=False, topk=50)
    store = SoftLabelStore.open(tmp_path / "store")
    assert store.probs is None and store.k == 10  # top-k capped at the class count
    dense = store.dense(3)
    assert dense.shape == (10,) and abs(dense.sum() - 1) < 1e-2 and dense.argmax() == store.topk_idx[3, 0]


def test_resume_after_kill_computes_each_shard_once(tmp_path: Path) -> None:
    ds, paths, files = _setup(tmp_path, 45)  # 6 shards of 8
    calls: list[int] = []

    def die_after_shard_2(j: int) -> None:
        calls.append(j)
        if j == 2:
            raise Killed

    out = tmp_path / "store"
    with pytest.raises(Killed):
        _label(ds, paths, files, out, on_shard=die_after_shard_2)
    assert completed_shards(out) == {0, 1, 2}
    assert json.loads((out / "manifest.json").read_text())["complete"] is False
    with pytest.raises(UserError, match="incomplete"):
        SoftLabelStore.open(out)
    _label(ds, paths, files, out, on_shard=calls.append)
    assert calls == [0, 1, 2, 3, 4, 5]
    _label(ds, paths, files, tmp_path / "straight")
    resumed, straight = SoftLabelStore.open(out), SoftLabelStore.open(tmp_path / "straight")
    for name in ("topk_idx", "topk_prob", "probs"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(straight, name))
    assert resumed.paths == straight.paths
    _label(ds, paths, files, out, on_shard=calls.append)  # already complete: nothing recomputed
    assert len(calls) == 6


def test_bad_inputs(tmp_path: Path) -> None:
    ds, paths, files = _setup(tmp_path, 10)
    with pytest.raises(UserError, match="empty"):
        _label(ds, [], [], tmp_path / "empty")
    out = tmp_path / "store"
    _label(ds, paths, files, out)
    with pytest.raises(UserError, match="different labeling run.*k"):
        _label(ds, paths, files, out, topk=5)
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps(dict(manifest, count=11)))
    with pytest.raises(UserError, match="does not match the manifest"):
        SoftLabelStore.open(out)
    with pytest.raises(UserError, match="not a soft-label store"):
        SoftLabelStore.open(tmp_path)


def test_ranks_split_shards_round_robin_and_rank0_merges(tmp_path: Path, monkeypatch) -> None:
    import ssld.mining.label as label_mod

    ds, paths, files = _setup(tmp_path, 45)  # 6 shards of 8
    written: dict[int, list[int]] = {0: [], 1: []}
    out = tmp_path / "store"
    for rank in (1, 0):  # rank 1 finishes first; rank 0 then does its shards and merges (barrier: no-op here)
        monkeypatch.setattr(label_mod.dist, "rank", lambda r=rank: r)
        monkeypatch.setattr(label_mod.dist, "world_size", lambda: 2)
        _label(ds, paths, files, out, on_shard=written[rank].append)
        if rank == 1:
            assert completed_shards(out) == {1, 3, 5}
            with pytest.raises(UserError, match="not a soft-label store|incomplete"):
                SoftLabelStore.open(out)
    assert written == {0: [0, 2, 4], 1: [1, 3, 5]}
    monkeypatch.undo()
    _label(ds, paths, files, tmp_path / "single")
    split, single = SoftLabelStore.open(out), SoftLabelStore.open(tmp_path / "single")
    np.testing.assert_array_equal(split.topk_prob, single.topk_prob)
    assert split.paths == single.paths
