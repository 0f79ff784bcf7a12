"""Dedup: edited copies of real photographs (SIFT path), small-image copies (hash path), bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers.fashion_mnist import fmnist
from helpers.models import TinyNet
from helpers.photos import write_photo_fixture
from PIL import Image, ImageOps

from ssld.cli import main
from ssld.config.schema import ModelSpec
from ssld.data import build_transform
from ssld.mining.dedup import decide, search
from ssld.mining.rules import Thresholds
from ssld.models import create_model, save_safetensors


def _teacher(tmp_path: Path, size: int) -> tuple[Path, Path]:
    cfg = {
        "Global": {"device": "cpu", "image_shape": [3, size, size]},
        "Arch": {"name": "cifar_resnet_tiny", "class_num": 10},
        "DataLoader": {"Eval": {"dataset": {"name": "ImageNetDataset", "image_root": ".", "transform_ops": [
            {"ResizeImage": {"size": size}}, {"NormalizeImage": {"scale": 0.00392156862745098,
                                                                 "mean": [0.5] * 3, "std": [0.5] * 3}}]},
            "sampler": {"batch_size": 16}, "loader": {"num_workers": 0}}},
    }
    path = tmp_path / "teacher.yaml"
    path.write_text(yaml.safe_dump(cfg))
    weights = tmp_path / "teacher.safetensors"
    save_safetensors(create_model(ModelSpec(name="cifar_resnet_tiny"), 10).state_dict(), weights)
    return path, weights


@pytest.mark.parametrize("teacher", [True, False], ids=["teacher", "no-teacher"])
def test_dedup_removes_edited_photo_copies_and_keeps_unrelated(tmp_path: Path, capsys, teacher: bool) -> None:
    """The same copies go with or without a teacher (``--no-teacher``: no config, no weights): on photographs the
    weight-free rules decide."""
    fx = write_photo_fixture(tmp_path)
    (tmp_path / "pool" / "broken.jpg").write_bytes(b"\xff\xd8\xff truncated")
    pool_lines = fx["copies"] + fx["others"] + ["pool/broken.jpg", "pool/missing.png"]
    (tmp_path / "pool.txt").write_text("\n".join(pool_lines) + "\n")
    (tmp_path / "ref.txt").write_text("\n".join(f"{r} 0" for r in fx["ref"]) + "\n")
    cfg, weights = _teacher(tmp_path, 64)
    out = tmp_path / "out"
    how = ["-c", str(cfg), "--weights", str(weights)] if teacher else ["--no-teacher"]
    rc = main(["dedup", "--pool", str(tmp_path / "pool.txt"), "--ref", str(tmp_path / "ref.txt"),
               "--root", str(tmp_path), *how, "--out", str(out)])
    assert rc == 0
    rows = list(csv.DictReader((out / "removed.csv").open()))
    removed = {r["pool_path"]: r for r in rows}
    assert set(removed) == set(fx["copies"])  # every edit of every photo, nothing else
    for copy, source in zip(fx["copies"], fx["copy_source"], strict=True):
        assert removed[copy]["ref_path"] == source and removed[copy]["method"] in ("align", "noise", "sift")
    kept = (out / "kept.txt").read_text().split()
    assert kept == fx["others"] + ["pool/broken.jpg", "pool/missing.png"]
    report = json.loads((out / "dedup_report.json").read_text())
    assert report["removed"] == len(fx["copies"])
    assert sum(report["by_method"][k] for k in ("align", "noise", "sift")) == len(fx["copies"])
    assert report["skipped_pool"] == ["pool/broken.jpg", "pool/missing.png"]
    assert (report["teacher"] is None) == (not teacher) and report["by_method"]["embedding"] == 0
    with Image.open(out / "pairs.png") as grid:
        assert grid.size[0] > 1000 and grid.getextrema() != ((255, 255),) * 3
    assert f"{len(fx['copies'])} of {len(pool_lines)} pool images removed" in capsys.readouterr().out


def test_small_images_exact_and_mirrored_copies_by_hash(tmp_path: Path) -> None:
    images, _ = fmnist(120)
    files = []
    for i, arr in enumerate(images):
        files.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(arr).save(files[-1])
    copies = {0: Image.fromarray(images[0]), 1: ImageOps.mirror(Image.fromarray(images[1])),
              2: Image.fromarray(images[2]).resize((40, 40), Image.BILINEAR)}
    for i, img in copies.items():
        img.save(tmp_path / f"copy{i}.png")
    ref, others = files[:60], files[60:]
    pool = [str(tmp_path / f"copy{i}.png") for i in copies] + others
    nb = search(pool, ref, TinyNet(), build_transform([{"ResizeImage": {"size": 28}}]), workers=0, progress=False)
    hash_only = Thresholds(sim_min=2.0)  # the untrained TinyNet's embedding is not meant to decide here
    matches = decide(nb, hash_only, pool, ref)
    assert [(m.pool, m.ref, m.method) for m in matches] == [(0, 0, "phash"), (1, 1, "phash"), (2, 2, "phash")]
    assert np.all(nb.hash_dist[:2, 0] == 0)


def test_dedup_bad_input(tmp_path: Path, capsys) -> None:
    cfg, weights = _teacher(tmp_path, 28)
    (tmp_path / "empty.txt").write_text("# nothing\n")
    (tmp_path / "ref.txt").write_text("a.png\n")
    args = ["dedup", "--pool", str(tmp_path / "empty.txt"), "--ref", str(tmp_path / "ref.txt"), "--root",
            str(tmp_path), "-c", str(cfg), "--weights", str(weights), "--out", str(tmp_path / "o")]
    assert main(args) == 2
    assert "no images in the list" in capsys.readouterr().err
    assert main([*args[:2], str(tmp_path / "ref.txt"), *args[3:], "--knn", "1"]) == 2
    assert "--knn" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["dedup", "--pool", "x"])
    # a teacher, or none: never half of one
    no_teacher = [*args[:2], str(tmp_path / "ref.txt"), *args[3:7], "--out", str(tmp_path / "o")]
    assert main(no_teacher) == 2
    assert "-c/--config: the teacher's config is required, or --no-teacher" in capsys.readouterr().err
    assert main([*no_teacher, "--no-teacher", "--weights", str(weights)]) == 2
    assert "--weights: needs the teacher's config (-c)" in capsys.readouterr().err
    assert main([*no_teacher, "--no-teacher", "-c", str(cfg)]) == 2
    assert "--no-teacher: runs without the teacher's config, so drop -c and -o" in capsys.readouterr().err


def test_the_hash_pass_records_full_sizes_of_reduced_photographs(tmp_path: Path) -> None:
    """Hashing decodes a large photograph reduced (everything it computes is 64 px or less) but records its full
    size (SIFT's and the alignment's gates, the aspect the alignment restores); hashes of the same photograph at
    two sizes stay close."""
    from helpers.photos import _photo

    from ssld.mining.hashing import compute_hashes

    photo = _photo("coffee", 600)
    photo.save(tmp_path / "big.jpg", quality=95)
    photo.resize((300, 200), Image.BILINEAR).save(tmp_path / "small.jpg", quality=95)
    h = compute_hashes([str(tmp_path / "big.jpg"), str(tmp_path / "small.jpg")], workers=0, progress=False)
    assert h.sizes.tolist() == [list(photo.size), [300, 200]] and h.ok.all()
    bits = np.unpackbits(h.codes[0, 0] ^ h.codes[1, 0]).sum()
    assert bits <= 12, bits


def test_knn_rows_collapse_to_distinct_references() -> None:
    from ssld.mining.hashing import best_per_ref

    score = np.array([[1, 2, 3, 4, 5, 6], [0, 0, 1, 1, 2, 9]], np.float32)
    ref = np.array([[3, 3, 1, 3, 2, -1], [5, 5, 5, 5, 5, 5]])
    s, r = best_per_ref(score, ref, 3, larger_is_better=False)
    assert r.tolist() == [[3, 1, 2], [5, -1, -1]]
    assert s[0].tolist() == [1, 3, 5] and s[1, 0] == 0 and np.isinf(s[1, 1:]).all()
    # rows in any order (several query views' hits side by side): the same answer
    perm = np.array([5, 2, 0, 4, 1, 3])
    s2, r2 = best_per_ref(score[:, perm], ref[:, perm], 3, larger_is_better=False)
    assert r2.tolist() == r.tolist() and np.array_equal(s2, s)
    s3, r3 = best_per_ref(-score, ref, 2, larger_is_better=True)
    assert r3.tolist() == [[3, 1], [5, -1]] and s3[0].tolist() == [-1, -3]


def test_cosine_knn_keeps_each_query_views_best_pair() -> None:
    from ssld.mining.embed import cosine_knn

    rng = np.random.default_rng(0)
    ref = rng.normal(size=(50, 3, 16)).astype(np.float32)
    ref /= np.linalg.norm(ref, axis=-1, keepdims=True)
    query = np.stack([ref[7, 2], 0.9 * ref[30, 0]])[None].repeat(4, 0).astype(np.float32)
    query[1] = query[1, ::-1]
    query[2, 0] = -query[2, 0]  # its first view matches nothing: the second still finds reference 30
    sim, idx = cosine_knn(ref, query, 3)
    assert idx[:, 0].tolist() == [7, 7, 30, 7] and set(idx[0, :2]) == {7, 30}
    want = np.einsum("qud,mvd->qmuv", query, ref).reshape(4, 50, -1).max(-1)
    assert np.allclose(sim, -np.sort(-want, axis=1)[:, :3], atol=1e-5)


def test_cosine_knn_in_query_blocks_gives_the_same_neighbours(monkeypatch) -> None:
    """Queries are searched in blocks (memory bounded by the block, not the pool): any block size, same result."""
    from ssld.mining import embed

    rng = np.random.default_rng(1)
    ref = rng.normal(size=(40, 6, 16)).astype(np.float32)
    query = rng.normal(size=(25, 2, 16)).astype(np.float32)
    whole = embed.cosine_knn(ref, query, 4)
    monkeypatch.setattr(embed, "QUERY_BLOCK", 7)  # 25 queries: blocks of 7, 7, 7, 4
    blocked = embed.cosine_knn(ref, query, 4)
    assert np.array_equal(whole[1], blocked[1]) and np.allclose(whole[0], blocked[0])


def test_without_a_teacher_hash_thumbnail_and_sift_find_photo_copies(tmp_path: Path) -> None:
    """No network at all (``model=None``): the thumbnail shortlist sends copies to SIFT, unrelated photos stay."""
    from PIL import ImageDraw

    fx = write_photo_fixture(tmp_path)
    extra = []
    for name in ("astronaut", "coffee"):  # harder edits: a 75 % crop, and a text overlay on a rotated copy
        with Image.open(tmp_path / "ref" / f"{name}.png") as src:
            img = src.convert("RGB")
        w, h = img.size
        img.crop((int(0.2 * w), int(0.1 * h), int(0.95 * w), int(0.85 * h))).save(tmp_path / f"pool/{name}_c75.jpg",
                                                                                     quality=60)
        rot = img.rotate(-7, resample=Image.BILINEAR)
        ImageDraw.Draw(rot).text((10, h // 2), "copyright", fill=(255, 255, 255))
        rot.save(tmp_path / f"pool/{name}_text.png")
        extra += [(f"pool/{name}_c75.jpg", f"ref/{name}.png"), (f"pool/{name}_text.png", f"ref/{name}.png")]
    copies = list(zip(fx["copies"], fx["copy_source"], strict=True)) + extra
    pool = [str(tmp_path / c) for c, _ in copies] + [str(tmp_path / o) for o in fx["others"]]
    ref = [str(tmp_path / r) for r in fx["ref"]]
    nb = search(pool, ref, None, None, workers=0, progress=False)
    assert np.all(np.isneginf(nb.emb_sim)) and nb.seconds["embed"] == 0.0
    sift_only = Thresholds(align_min=2.0, noise_min=2.0)  # the alignment and grain off: SIFT decides every pair
    matches = decide(nb, sift_only, pool, ref)
    got = {m.pool: (ref[m.ref], m.method) for m in matches}
    assert got == {i: (str(tmp_path / src), "sift") for i, (_, src) in enumerate(copies)}
    # the defaults: the aligned NCC and the grain accept first, SIFT judges the rest; the same copies and sources
    assert {m.pool: ref[m.ref] for m in decide(nb, Thresholds(), pool, ref)} == {
        i: str(tmp_path / src) for i, (_, src) in enumerate(copies)}
    import ssld.mining.verify as verify_mod

    monkey = pytest.MonkeyPatch()
    monkey.setattr(verify_mod, "PARALLEL_MIN", 1)
    try:  # SIFT split over two forked workers decides the same
        assert [(m.pool, m.ref, m.score) for m in decide(nb, sift_only, pool, ref, workers=2)] == [
            (m.pool, m.ref, m.score) for m in matches]
    finally:
        monkey.undo()
    # the thumbnail alone ranks each copy's source first, and its views make it flip- and brightness-tolerant
    src_rows = [fx["ref"].index(s) for _, s in copies]
    assert np.mean(nb.desc_ref[: len(copies), 0] == src_rows) >= 0.9


def test_thumbnail_descriptor_is_a_normalised_cross_correlation() -> None:
    from ssld.mining.globaldesc import (
        POOL_VIEWS,
        REF_VIEWS,
        descriptor_views,
        thumbnail_descriptor,
    )

    gray = np.asarray(Image.fromarray(fmnist(1)[0][0]).resize((64, 64)), np.float32)
    a = thumbnail_descriptor(gray.astype(np.uint8))
    b = thumbnail_descriptor(np.clip(gray * 0.7 + 30, 0, 255).astype(np.uint8))  # contrast and brightness
    assert abs(float(np.linalg.norm(a)) - 1) < 1e-5 and float(a @ b) > 0.99
    assert not thumbnail_descriptor(np.full((40, 40), 128, np.uint8)).any()  # flat: no descriptor
    views = descriptor_views(gray.astype(np.uint8), reference=True)
    assert views.shape == (2 * len(REF_VIEWS), a.size) and float(views[0] @ a) > 0.999
    pool_views = descriptor_views(gray.astype(np.uint8), reference=False)
    assert pool_views.shape == (len(POOL_VIEWS), a.size) and float(pool_views[0] @ a) > 0.999
    mirrored = thumbnail_descriptor(np.ascontiguousarray(gray[:, ::-1]).astype(np.uint8))
    assert float(views[1] @ mirrored) > 0.999


def test_large_reference_sets_use_hnsw_with_flat_recall(monkeypatch) -> None:
    """Many query x reference pairs: IVF; beyond FLAT_MAX indexed vectors: HNSW; near-copies still find the same
    reference as with the exact index."""
    from ssld.mining import embed

    rng = np.random.default_rng(0)
    ref = rng.normal(size=(3000, 2, 32)).astype(np.float32)
    ref /= np.linalg.norm(ref, axis=-1, keepdims=True)
    query = ref[:500, 0] + 0.05 * rng.normal(size=(500, 32)).astype(np.float32)
    flat_s, flat_r = embed.cosine_knn(ref, query, 3)
    assert type(embed.ip_index(32, 6000, 10**9)).__name__ == "IndexFlatIP"  # few vectors: exact, any queries
    monkeypatch.setattr(embed, "IVF_PAIRS", 100_000)  # 500 queries x 6000 vectors, more than FLAT_VECTORS: IVF
    monkeypatch.setattr(embed, "FLAT_VECTORS", 1000)
    import faiss

    ivf = embed.ip_index(32, 6000, 500)  # quantized lists, the candidates re-scored exactly
    assert type(ivf).__name__ == "IndexRefineFlat"
    assert type(faiss.downcast_index(ivf.base_index)).__name__ == "IndexIVFScalarQuantizer"
    ivf_s, ivf_r = embed.cosine_knn(ref, query, 3)
    monkeypatch.setattr(embed, "FLAT_MAX", 1000)
    assert type(embed.ip_index(32, 6000)).__name__ == "IndexHNSWFlat"
    hnsw_s, hnsw_r = embed.cosine_knn(ref, query, 3)
    assert np.array_equal(flat_r[:, 0], np.arange(500))
    for s, r in ((ivf_s, ivf_r), (hnsw_s, hnsw_r)):
        assert np.mean(r[:, 0] == flat_r[:, 0]) >= 0.99
        np.testing.assert_allclose(s[r[:, 0] == flat_r[:, 0], 0], flat_s[r[:, 0] == flat_r[:, 0], 0], atol=1e-5)


def _gradient(angle_deg: float, size: int = 128, curve: float = 0.0) -> Image.Image:
    """A smooth grayscale ramp (sky, wall): nothing left once high-passed, only its low-frequency layout."""
    y, x = np.mgrid[0:size, 0:size] / size - 0.5
    a = np.deg2rad(angle_deg)
    v = x * np.cos(a) + y * np.sin(a) + curve * (x**2 + y**2)
    return Image.fromarray(np.uint8(60 + 120 * (v - v.min()) / (v.max() - v.min()))).convert("RGB")


def test_images_too_smooth_to_align_are_judged_by_their_thumbnail(tmp_path: Path) -> None:
    """A JPEG copy of a smooth ramp has no detail for the alignment or SIFT; its thumbnail matches its source
    almost exactly and clearly better than any other ramp (``smooth``). A ramp halfway between two references
    matches both about as well and stays. (A linear ramp is described by its angle alone: one within a few
    degrees of a reference's rotated or mirrored view matches it, hence the near-exact match and clear lead.)"""
    from ssld.mining.dedup import align_tasks, align_verdicts, decide, search
    from ssld.mining.rules import Thresholds

    refs = {f"ref{k}.png": _gradient(a, curve=c) for k, (a, c) in enumerate([(30, 0), (55, 0), (120, 0), (200, 0.8)])}
    for name, img in refs.items():
        img.save(tmp_path / name)
    refs["ref0.png"].save(tmp_path / "copy.jpg", quality=60)
    _gradient(42.5).save(tmp_path / "other.png")  # halfway between two references: no clear lead
    pool, ref = [str(tmp_path / "copy.jpg"), str(tmp_path / "other.png")], [str(tmp_path / r) for r in refs]
    nb = search(pool, ref, None, None, workers=0, progress=False)
    th = Thresholds()
    align = align_verdicts(nb, th, pool_files=pool, ref_files=ref)
    assert {i for i, _ in align_tasks(nb, th)} == {0, 1} and not align  # both aligned, neither had detail
    assert nb.desc_sim[1, 0] >= th.smooth_min  # the ramp between two references: similar, but no lead
    matches = decide(nb, th, pool, ref, align=align)
    assert [(m.pool, m.ref, m.method) for m in matches] == [(0, 0, "smooth")]
    assert matches[0].score >= th.smooth_min and matches[0].margin >= th.smooth_ratio
    assert decide(nb, Thresholds(smooth_min=1.01), pool, ref, align=align) == []  # the rule off


def test_pool_images_without_a_thumbnail_descriptor_get_no_thumbnail_neighbours(tmp_path: Path) -> None:
    """An image flat at 12 px has a zero descriptor, as cosine-close (0) to every reference as to any other: its
    thumbnail columns stay empty instead of naming arbitrary references for the alignment to check."""
    from ssld.mining.dedup import align_tasks

    refs = [_gradient(a) for a in (30, 120, 200)]
    for k, img in enumerate(refs):
        img.save(tmp_path / f"ref{k}.png")
    rng = np.random.default_rng(0)  # fine noise around one grey: texture at 128 px, flat once 12 px
    Image.fromarray(rng.integers(90, 130, (128, 128), dtype=np.uint8)).save(tmp_path / "noise.png")
    refs[1].save(tmp_path / "copy.png")
    pool, ref = [str(tmp_path / "noise.png"), str(tmp_path / "copy.png")], [str(tmp_path / f"ref{k}.png")
                                                                           for k in range(3)]
    nb = search(pool, ref, None, None, workers=0, progress=False, thumb_knn=True)
    assert (nb.desc_ref[0] == -1).all() and np.isneginf(nb.desc_sim[0]).all()
    assert nb.desc_ref[1, 0] == 1 and nb.desc_sim[1, 0] > 0.99  # the other row is searched as before
    tasks = dict(align_tasks(nb, Thresholds(sift_cand_hash=128)))  # every image a candidate by its hash
    assert set(tasks[0]) == {int(r) for r in nb.hash_ref[0, :2]}  # only the hash's best two


def test_alignment_needs_its_peak_to_stand_out_from_shifted_positions() -> None:
    """A ridge (one straight edge fits anywhere along itself) has a peak ratio near 1 however unique the
    reference; ``align_peak`` rejects it while the distance ratio to the next reference alone would not."""
    from ssld.mining.rules import Thresholds, align_hits

    th = Thresholds()
    scores, ratios = np.array([0.97, 0.97, 0.97]), np.array([20.0, 20.0, 2.0])
    peaks = np.array([1.1, 3.0, 3.0])
    assert align_hits(scores, ratios, np.zeros(3, bool), th, peaks).tolist() == [False, True, False]
