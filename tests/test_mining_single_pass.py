"""One teacher pass over the pool: label stores pooled embeddings, dedup reads them, select filters by kept.txt.

The single pass (label the whole pool with embeddings, ``dedup --store``, ``select --keep kept.txt``) must give
the same removals and the same selection as the two-pass path (dedup embeds the pool itself, then label runs
over kept.txt). Pool embeddings are float16 in both paths; cosine similarities agree to 2e-3 (batch
composition changes the last float32 bits before the rounding).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from helpers.configs import LABEL_OPS, label_config
from helpers.fashion_mnist import fmnist, write_fmnist_list
from helpers.models import TinyNet
from PIL import Image, ImageOps

from ssld.cli import main
from ssld.config.schema import ModelSpec
from ssld.data import ImageListDataset, build_transform, read_list
from ssld.data.store import SoftLabelStore
from ssld.mining.dedup import decide, search
from ssld.mining.embed import store_embeddings
from ssld.mining.label import label
from ssld.mining.rules import Thresholds
from ssld.models import create_model, save_safetensors


def _teacher(tmp_path: Path, seed: int = 0) -> tuple[Path, Path]:
    cfg = label_config(tmp_path / "teacher.yaml", {"name": "cifar_resnet_tiny", "class_num": 10})
    weights = tmp_path / f"teacher{seed}.safetensors"
    torch.manual_seed(seed)
    save_safetensors(create_model(ModelSpec(name="cifar_resnet_tiny"), 10).state_dict(), weights)
    return cfg, weights


def _pool_with_copies(tmp_path: Path) -> tuple[Path, Path]:
    """60 references, a pool of 50 other images, 4 planted copies (exact, mirrored, darker, resized) and a broken
    file."""
    write_fmnist_list(tmp_path, 110, "all.txt")
    images, _ = fmnist(4)
    copies = [Image.fromarray(images[0]), ImageOps.mirror(Image.fromarray(images[1])),
              Image.fromarray((images[2] * 0.8).astype(np.uint8)), Image.fromarray(images[3]).resize((36, 36))]
    for i, img in enumerate(copies):
        img.save(tmp_path / "img" / f"copy{i}.png")
    (tmp_path / "img" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    lines = (tmp_path / "all.txt").read_text().split()
    (tmp_path / "ref.txt").write_text("\n".join(lines[:60]) + "\n")
    pool = [f"img/copy{i}.png" for i in range(4)] + lines[60:] + ["img/broken.png"]
    (tmp_path / "pool.txt").write_text("\n".join(pool) + "\n")
    return tmp_path / "pool.txt", tmp_path / "ref.txt"


def test_store_embeddings_are_the_teachers_pooled_features(tmp_path: Path) -> None:
    lst = write_fmnist_list(tmp_path, 20)
    samples = read_list(lst, tmp_path)
    ds = ImageListDataset(samples, build_transform([{"ResizeImage": {"size": 28}}]))
    paths = [f"img/{i:05d}.png" for i in range(20)]
    meta = {"teacher": "tiny", "weights_sha256": "0", "transform": [], "source_sha256": "1"}
    args = {"paths": paths, "files": [s.path for s in samples], "meta": meta, "num_classes": 10, "topk": 3,
            "batch_size": 6, "workers": 0, "shard_size": 8}
    m = label(ds, TinyNet(), tmp_path / "with", **args)
    label(ds, TinyNet(), tmp_path / "without", embed=False, **args)
    a, b = SoftLabelStore.open(tmp_path / "with"), SoftLabelStore.open(tmp_path / "without")
    assert m["embed"] and m["embed_dim"] == 16 and "float16" in m["embed_features"] and b.embed is None
    np.testing.assert_array_equal(a.topk_idx, b.topk_idx)  # the split forward gives the same soft labels
    np.testing.assert_array_equal(a.topk_prob, b.topk_prob)
    model = TinyNet().eval()
    with torch.no_grad():
        x = torch.stack([ds[i]["image"] for i in range(20)])
        ref = torch.nn.functional.normalize(model.forward_head(model.forward_features(x), pre_logits=True), dim=-1)
    assert a.embed.dtype == np.float16 and a.embed.shape == (20, 16)
    np.testing.assert_allclose(a.embed.astype(np.float32), ref.numpy(), atol=1e-3)
    emb, have = store_embeddings(a, ["img/00003.png", "img/nope.png"])
    assert have.tolist() == [True, False] and np.array_equal(emb[0, 0], a.embed[3].astype(np.float32))


def test_single_pass_gives_the_two_pass_removals_and_selection(tmp_path: Path, capsys) -> None:
    pool, ref = _pool_with_copies(tmp_path)
    cfg, weights = _teacher(tmp_path)
    root = str(tmp_path)
    common = ["--root", root, "-c", str(cfg), "--weights", str(weights)]
    # two passes: dedup embeds the pool, label runs over what it kept
    assert main(["dedup", "--pool", str(pool), "--ref", str(ref), *common, "--out", str(tmp_path / "d2")]) == 0
    assert main(["label", "--list", str(tmp_path / "d2" / "kept.txt"), *common, "--out", str(tmp_path / "s2"),
                 "--topk", "3", "--shard-size", "16"]) == 0
    assert main(["select", "--store", str(tmp_path / "s2"), "--k", "3", "--out", str(tmp_path / "sel2.txt")]) == 0
    # one pass: label the whole pool (with embeddings), dedup reads them, select ranks only the kept images
    assert main(["label", "--list", str(pool), *common, "--out", str(tmp_path / "s1"), "--topk", "3",
                 "--shard-size", "16"]) == 0
    assert main(["dedup", "--pool", str(pool), "--ref", str(ref), *common, "--out", str(tmp_path / "d1"),
                 "--store", str(tmp_path / "s1")]) == 0
    assert main(["select", "--store", str(tmp_path / "s1"), "--k", "3", "--out", str(tmp_path / "sel1.txt"),
                 "--keep", str(tmp_path / "d1" / "kept.txt")]) == 0
    removed1 = (tmp_path / "d1" / "removed.csv").read_text()
    assert removed1 == (tmp_path / "d2" / "removed.csv").read_text()
    assert (tmp_path / "d1" / "kept.txt").read_text() == (tmp_path / "d2" / "kept.txt").read_text()
    assert {line.split(",")[0] for line in removed1.splitlines()[1:]} >= {"img/copy0.png", "img/copy1.png"}
    report = json.loads((tmp_path / "d1" / "dedup_report.json").read_text())
    assert report["pool_embeddings_from_store"] == 54  # every readable pool image: no second teacher pass
    assert (tmp_path / "sel1.txt").read_text() == (tmp_path / "sel2.txt").read_text()
    stats = json.loads((tmp_path / "select_stats.json").read_text())
    assert stats["store_rows"] == 54 and stats["store_rows_kept"] == 54 - report["removed"]
    # the neighbours themselves: same hashes, same best references, similarities within float16 rounding
    files = [s.path for s in read_list(pool, root)]
    refs = [s.path for s in read_list(ref, root)]
    teacher = create_model(ModelSpec(name="cifar_resnet_tiny"), 10)
    from ssld.models import load_weights

    load_weights(teacher, str(weights))
    tf = build_transform(LABEL_OPS, fit_size=(28, 28))
    store = SoftLabelStore.open(tmp_path / "s1")
    nb2 = search(files, refs, teacher, tf, workers=0, progress=False)
    nb1 = search(files, refs, teacher, tf, workers=0, progress=False,
                 pool_embed=store_embeddings(store, [f.removeprefix(root + "/") for f in files]))
    np.testing.assert_array_equal(nb1.hash_dist, nb2.hash_dist)
    np.testing.assert_array_equal(nb1.pool_ok, nb2.pool_ok)
    np.testing.assert_array_equal(nb1.emb_ref[:, 0], nb2.emb_ref[:, 0])
    ok = nb1.pool_ok
    np.testing.assert_allclose(nb1.emb_sim[ok], nb2.emb_sim[ok], atol=2e-3)
    loose = Thresholds(sim_min=0.5, sim_margin=0.0)  # the embedding rule firing often, so it is compared too
    assert [(m.pool, m.ref, m.method) for m in decide(nb1, loose)] == [
        (m.pool, m.ref, m.method) for m in decide(nb2, loose)]


def test_dedup_refuses_a_store_of_another_teacher(tmp_path: Path, capsys) -> None:
    pool, ref = _pool_with_copies(tmp_path)
    cfg, weights = _teacher(tmp_path)
    _, other = _teacher(tmp_path, seed=1)
    common = ["--root", str(tmp_path), "-c", str(cfg)]
    assert main(["label", "--list", str(pool), *common, "--weights", str(other), "--out", str(tmp_path / "s")]) == 0
    capsys.readouterr()
    assert main(["dedup", "--pool", str(pool), "--ref", str(ref), *common, "--weights", str(weights),
                 "--out", str(tmp_path / "d"), "--store", str(tmp_path / "s")]) == 2
    assert "not by this teacher" in capsys.readouterr().err
    assert main(["label", "--list", str(pool), *common, "--weights", str(weights), "--out", str(tmp_path / "n"),
                 "--no-embed"]) == 0
    assert main(["dedup", "--pool", str(pool), "--ref", str(ref), *common, "--weights", str(weights),
                 "--out", str(tmp_path / "d"), "--store", str(tmp_path / "n")]) == 2
    assert "holds no embeddings" in capsys.readouterr().err
    assert not (tmp_path / "d" / "kept.txt").exists()
    assert main(["select", "--store", str(tmp_path / "n"), "--k", "2", "--out", str(tmp_path / "x.txt"),
                 "--keep", str(tmp_path / "nope.txt")]) == 2
    assert "--keep" in capsys.readouterr().err


def test_pipeline_labels_the_pool_once_then_dedups_and_selects(tmp_path: Path) -> None:
    """The mining stages in pipeline order: label (whole pool, embeddings), dedup (--store), select (--keep)."""
    import shutil

    from helpers.pipeline import minimal_pipeline

    from ssld.pipeline.config import load_pipeline_config
    from ssld.pipeline.mining_stages import dedup_stage, label_stage, select_stage
    from ssld.pipeline.runner import Pipeline, Stage, StageResult
    from ssld.pipeline.training import WEIGHTS

    src = tmp_path / "src"
    src.mkdir()
    pool, ref = _pool_with_copies(src)
    cfg, weights = _teacher(src)

    def data(ctx) -> StageResult:
        shutil.copytree(src / "img", ctx.dir / "img")
        shutil.copy(pool, ctx.dir / "unlabeled.txt")
        shutil.copy(ref, ctx.dir / "val.txt")
        return StageResult({"pool": 55}, ["unlabeled.txt", "val.txt"])

    def teacher(ctx) -> StageResult:
        shutil.copy(cfg, ctx.dir / "config.yaml")
        shutil.copy(weights, ctx.dir / WEIGHTS)
        return StageResult({}, [WEIGHTS])

    p = load_pipeline_config(minimal_pipeline(tmp_path / "ssld.yaml"), profile="quick")
    stages = [Stage("data", data), Stage("teacher", teacher), label_stage(p), dedup_stage(p), select_stage(p)]
    run = tmp_path / "run"
    Pipeline(run, stages, identity={}, out=lambda s: None).run()
    store = SoftLabelStore.open(run / "label" / "store")
    assert len(store) == 54 and store.embed is not None  # the whole readable pool, once
    report = json.loads((run / "dedup" / "dedup_report.json").read_text())
    assert report["pool_embeddings_from_store"] == 54 and report["removed"] >= 2
    kept = set((run / "dedup" / "kept.txt").read_text().split())
    selected = (run / "select" / "selected.txt").read_text().split()
    assert selected and set(selected) <= kept and not {"img/copy0.png", "img/copy1.png"} & set(selected)
    done = json.loads((run / "select" / "done.json").read_text())
    assert done["metrics"]["selected"] == len(selected)


def test_dedup_sharded_over_ranks_equals_unsharded(tmp_path: Path, monkeypatch) -> None:
    """torchrun: each rank dedups one block of the pool against all references, rank 0 merges; same outputs."""
    from ssld.utils import distributed

    pool, ref = _pool_with_copies(tmp_path)
    cfg, weights = _teacher(tmp_path)
    args = ["dedup", "--pool", str(pool), "--ref", str(ref), "--root", str(tmp_path), "-c", str(cfg),
            "--weights", str(weights), "--thumb-min", "0.97"]  # the thumbnail rule on: its columns merge too
    assert main([*args, "--out", str(tmp_path / "single")]) == 0
    monkeypatch.setattr(distributed, "init_from_env", lambda device: True)
    monkeypatch.setattr(distributed, "world_size", lambda: 3)
    monkeypatch.setattr(distributed, "barrier", lambda: None)
    for rank in (2, 1, 0):  # ranks 2 and 1 finish first; rank 0 then merges (barrier: a no-op here)
        monkeypatch.setattr(distributed, "rank", lambda r=rank: r)
        assert main([*args, "--out", str(tmp_path / "sharded")]) == 0
        parts = sorted(p.name for p in (tmp_path / "sharded" / "parts").glob("*"))
        assert parts == ([f"rank{r:04d}.npz" for r in range(rank, 3)] if rank else [])  # rank 0 merged them
    for name in ("kept.txt", "removed.csv"):
        assert (tmp_path / "sharded" / name).read_text() == (tmp_path / "single" / name).read_text()
    a, b = (json.loads((tmp_path / d / "dedup_report.json").read_text()) for d in ("single", "sharded"))
    assert (a["removed"], a["by_method"], a["skipped_pool"]) == (b["removed"], b["by_method"], b["skipped_pool"])
    assert b["ranks"] == 3 and not (tmp_path / "sharded" / "parts").exists()


def test_library_label_and_dedup_leave_a_callers_process_group_running(tmp_path: Path) -> None:
    """``label_images``/``dedup_images`` end only a process group they started, not one the caller runs."""
    import torch.distributed as tdist

    from ssld.config import load_config
    from ssld.mining.jobs import dedup_images, label_images

    cfg_path, weights = _teacher(tmp_path)
    pool, ref = _pool_with_copies(tmp_path)
    cfg = load_config(cfg_path)
    tdist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        labeled = label_images(pool, tmp_path, cfg, tmp_path / "store", weights=str(weights), topk=3)
        assert tdist.is_initialized() and labeled is not None and labeled.count == 54  # 55 listed, one broken file
        result = dedup_images(pool, ref, tmp_path, cfg, tmp_path / "dedup", weights=str(weights),
                              store=tmp_path / "store")
        assert tdist.is_initialized() and result is not None and result.removed >= 1
    finally:
        tdist.destroy_process_group()
