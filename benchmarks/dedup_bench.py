"""Dedup benchmark: 500 Fashion-MNIST test images planted into the 60k train pool as edited copies.

Edits (each applied with probability 1/2, parameters uniform in their range): resize to 20-40 px, crop up to
10 %, horizontal flip, brightness x0.8-1.2, rotation up to 10 deg, saved as JPEG quality 50-90 (else PNG).
Measures, with the teacher trained here (a CIFAR-style ResNet, cached under bench_out/), the recall of the
planted copies matched to their true source, the share of the other 60k pool images removed, the wall time of
the 60.5k x 10k search, a recall/removed curve over the hash margin, and a grid of the "other" pool images
removed (bench_out/mining/others_removed.png: most are the same product as their test image). Also counts the dataset's own
pixel-identical train/test pairs (they are true duplicates, reported apart from the false removals).

Run: ``OMP_NUM_THREADS=2 python benchmarks/dedup_bench.py [--out bench_out/mining]``
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageOps

from ssld.config.schema import ModelSpec
from ssld.data import build_transform
from ssld.mining.dedup import Neighbours, decide, search
from ssld.mining.plots import pairs_grid, tradeoff_curve
from ssld.mining.rules import Thresholds, rule_hits
from ssld.models import create_model, load_weights, save_safetensors

IDX = Path("/usr/share/datasets/fashion-mnist")
MEAN, STD = 0.286, 0.353
OPS = [{"NormalizeImage": {"scale": 1 / 255, "mean": [MEAN] * 3, "std": [STD] * 3}}]


def idx(split: str) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(IDX / f"{split}-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(IDX / f"{split}-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return x, y.astype(np.int64)


def plant(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, dict]:
    """A randomly edited copy of ``img`` and the edits applied."""
    edits: dict = {}
    if rng.random() < 0.5:
        w, h = img.size
        f = rng.uniform(0, 0.10)
        left, top = rng.uniform(0, f) * w, rng.uniform(0, f) * h
        img = img.crop((round(left), round(top), round(w - (f * w - left)), round(h - (f * h - top))))
        edits["crop"] = round(f, 3)
    if rng.random() < 0.5:
        img = ImageOps.mirror(img)
        edits["flip"] = True
    if rng.random() < 0.5:
        b = rng.uniform(0.8, 1.2)
        img = ImageEnhance.Brightness(img).enhance(b)
        edits["brightness"] = round(b, 3)
    if rng.random() < 0.5:
        a = rng.uniform(-10, 10)
        img = img.rotate(a, resample=Image.BILINEAR)
        edits["rotate"] = round(a, 2)
    if rng.random() < 0.5:
        s = int(rng.integers(20, 41))
        img = img.resize((s, s), Image.BILINEAR)
        edits["resize"] = s
    if rng.random() < 0.5:
        edits["jpeg"] = int(rng.integers(50, 91))
    return img, edits


def write_data(root: Path, train: np.ndarray, test: np.ndarray, n_plant: int, seed: int) -> dict:
    """PNG files for train (pool) and test (ref) plus the planted copies; cached by a marker file."""
    marker = root / "planted.json"
    if marker.is_file():
        return json.loads(marker.read_text())
    for name, arr in (("train", train), ("test", test)):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i, a in enumerate(arr):
            Image.fromarray(a).save(root / name / f"{i:05d}.png")
    (root / "planted").mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    sources = sorted(rng.choice(len(test), n_plant, replace=False).tolist())
    planted = []
    for j, s in enumerate(sources):
        img, edits = plant(Image.fromarray(test[s]), rng)
        ext = "jpg" if "jpeg" in edits else "png"
        rel = f"planted/{j:04d}.{ext}"
        img.save(root / rel, **({"quality": edits["jpeg"]} if ext == "jpg" else {}))
        planted.append({"path": rel, "source": s, "edits": edits})
    marker.write_text(json.dumps(planted))
    return planted


def teacher(cache: Path, x: np.ndarray, y: np.ndarray, name: str, epochs: int) -> torch.nn.Module:
    """A Fashion-MNIST classifier trained here with a plain loop (pad-crop-flip), cached as safetensors."""
    model = create_model(ModelSpec(name=name), 10)
    path = cache / f"{name}_n{len(x)}_e{epochs}.safetensors"
    if path.is_file():
        load_weights(model, path)
        return model.eval()
    xt = (torch.from_numpy(x).float().div(255).sub(MEAN).div(STD))[:, None].expand(-1, 3, -1, -1)
    yt = torch.from_numpy(y)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    steps = epochs * (len(x) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.1, total_steps=steps, pct_start=0.15)
    g = torch.Generator().manual_seed(0)
    model.train()
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for b in range(len(x) // 128):
            i = perm[b * 128:(b + 1) * 128]
            xb = torch.nn.functional.pad(xt[i], (2, 2, 2, 2))
            dx, dy = torch.randint(0, 5, (2,), generator=g).tolist()
            xb = xb[:, :, dy:dy + 28, dx:dx + 28]
            if torch.rand(1, generator=g).item() < 0.5:
                xb = xb.flip(3)
            loss = torch.nn.functional.cross_entropy(model(xb), yt[i])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    print(f"teacher {name}: {epochs} epochs in {time.perf_counter() - t0:.0f} s, last loss {loss.item():.3f}")
    save_safetensors(model.state_dict(), path)
    return model.eval()


def evaluate(nb: Neighbours, th: Thresholds, planted: list[dict], n_train: int, exact_train: set[int]) -> dict:
    """Recall of planted copies (matched to their source), others removed (share), and their breakdown."""
    matches = decide(nb, th)
    found = {m.pool: m.ref for m in matches}
    hits = [found.get(n_train + j) == p["source"] for j, p in enumerate(planted)]
    others = [i for i in found if i < n_train]
    return {"recall": float(np.mean(hits)), "others_removed": len(others) / n_train,
            "others_removed_n": len(others), "others_exact_dups": sum(i in exact_train for i in others),
            "by_method": {k: sum(m.method == k for m in matches) for k in ("phash", "thumb", "embedding")},
            "missed_edits": [p["edits"] for p, h in zip(planted, hits, strict=True) if not h]}


def recall_by_edit(nb: Neighbours, th: Thresholds, planted: list[dict], n_train: int) -> dict:
    """Recall of the planted copies split by edit: with a geometric edit (crop/rotation) or photometric only."""
    found = {m.pool: m.ref for m in decide(nb, th)}
    groups: dict[str, list[bool]] = {}
    for j, p in enumerate(planted):
        hit = found.get(n_train + j) == p["source"]
        geo = "crop" in p["edits"] or "rotate" in p["edits"]
        groups.setdefault("with crop or rotation" if geo else "photometric/resize/flip only", []).append(hit)
        for edit in p["edits"]:
            groups.setdefault(f"has {edit}", []).append(hit)
    return {k: {"n": len(v), "recall": float(np.mean(v))} for k, v in sorted(groups.items())}


def thumb_curve(out: Path, xtr: np.ndarray, xte: np.ndarray, planted: list[dict], exact_train: set[int],
                workers: int) -> None:
    """Hash + thumbnail rule without a teacher: recall and others removed over thumb_min x thumb_margin."""
    root = out / "fmnist"
    pool = [str(root / f"train/{i:05d}.png") for i in range(len(xtr))] + [str(root / p["path"]) for p in planted]
    ref = [str(root / f"test/{i:05d}.png") for i in range(len(xte))]
    t0 = time.perf_counter()
    nb = search(pool, ref, None, None, k=5, workers=workers, thumb_knn=True)
    wall = time.perf_counter() - t0
    src = np.array([p["source"] for p in planted])
    n = len(xtr)
    reach = {"thumb_top1": float(np.mean(nb.desc_ref[n:, 0] == src)),
             "thumb_top5": float(np.mean((nb.desc_ref[n:] == src[:, None]).any(1)))}
    print(f"search {wall:.0f} s {nb.seconds}; source is the thumbnail's nearest reference for "
          f"{reach['thumb_top1']:.3f} of copies (top-5: {reach['thumb_top5']:.3f})")
    rows = []
    for t_min in (0.80, 0.85, 0.90, 0.93, 0.95):
        for margin in (0.0, 0.01, 0.02, 0.03, 0.05, 0.08):
            th = replace(Thresholds(), thumb_min=t_min, thumb_margin=margin)
            r = evaluate(nb, th, planted, n, exact_train)
            rows.append({"thumb_min": t_min, "thumb_margin": margin, "recall": r["recall"],
                         "others_removed": r["others_removed"], "others_exact_dups": r["others_exact_dups"]})
            print(f"thumb_min {t_min:.2f} margin {margin:.2f}: recall {r['recall']:.3f}, "
                  f"others removed {100 * r['others_removed']:.2f}%")
    hash_only = evaluate(nb, Thresholds(), planted, n, exact_train)
    (out / "dedup_bench_thumb.json").write_text(json.dumps(
        {"wall_s": wall, "seconds": nb.seconds, **reach, "hash_only": {k: hash_only[k] for k in
                                                                      ("recall", "others_removed")},
         "curve": rows}, indent=2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench_out/mining")
    ap.add_argument("--arch", default="cifar_resnet8")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--train-images", type=int, default=20000, help="teacher trained on the first N train images")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--plant", type=int, default=500)
    ap.add_argument("--reuse", action="store_true", help="reuse the cached kNN results of an earlier run")
    ap.add_argument("--thumb-curve", action="store_true",
                    help="no teacher: hash + the thumbnail rule (normalised cross-correlation over reference views: "
                         "crops, +-8 deg, mirrored), its recall/removed curve")
    args = ap.parse_args()
    out = Path(args.out)
    (out / "fmnist").mkdir(parents=True, exist_ok=True)
    (xtr, ytr), (xte, yte) = idx("train"), idx("t10k")
    planted = write_data(out / "fmnist", xtr, xte, args.plant, seed=0)
    test_keys = {hashlib.sha1(a.tobytes()).hexdigest(): i for i, a in enumerate(xte)}
    exact_train = {i for i, a in enumerate(xtr) if hashlib.sha1(a.tobytes()).hexdigest() in test_keys}
    if args.thumb_curve:
        thumb_curve(out, xtr, xte, planted, exact_train, args.workers)
        return
    model = teacher(out, xtr[:args.train_images], ytr[:args.train_images], args.arch, args.epochs)
    with torch.inference_mode():
        xte_t = torch.from_numpy(xte).float().div(255).sub(MEAN).div(STD)[:, None].expand(-1, 3, -1, -1)
        acc = float(torch.cat([model(b).argmax(1) for b in xte_t.split(1000)]).eq(torch.from_numpy(yte)).float().mean())
    print(f"teacher test accuracy {acc:.4f}")
    root = out / "fmnist"
    pool = [str(root / f"train/{i:05d}.png") for i in range(len(xtr))] + [str(root / p["path"]) for p in planted]
    ref = [str(root / f"test/{i:05d}.png") for i in range(len(xte))]
    cache = out / f"neighbours_{args.arch}_n{args.train_images}_e{args.epochs}.npz"
    if args.reuse and cache.is_file():
        with np.load(cache) as z:
            nb = Neighbours(**{k: z[k] for k in z.files})
        nb.seconds = json.loads((out / "dedup_bench.json").read_text())["seconds"]
        wall = sum(nb.seconds.values())
    else:
        t0 = time.perf_counter()
        nb = search(pool, ref, model, build_transform(OPS, 28), k=5, batch_size=512, workers=args.workers)
        wall = time.perf_counter() - t0
        np.savez(cache, **{k: v for k, v in asdict(nb).items() if k != "seconds"})
    base = Thresholds()
    rows = []
    for margin in (2, 4, 6, 8, 10, 12, 16):
        r = evaluate(nb, replace(base, hash_margin=margin), planted, len(xtr), exact_train)
        rows.append((margin, r["recall"], r["others_removed"]))
        print(f"hash_margin {margin:2d}: recall {r['recall']:.3f}, others removed {100 * r['others_removed']:.2f}% "
              f"({r['others_removed_n']}, of which {r['others_exact_dups']} pixel-identical)")
    emb_rows = []
    for sim_min, margin in ((0.99, 0.001), (0.995, 0.003), (0.995, 0.005), (0.9, 0.03)):
        r = evaluate(nb, replace(base, hash_max=-1, sim_min=sim_min, sim_margin=margin), planted, len(xtr),
                     exact_train)
        emb_rows.append({"sim_min": sim_min, "sim_margin": margin, "recall": r["recall"],
                         "others_removed": r["others_removed"]})
        print(f"embedding only, sim_min {sim_min} sim_margin {margin}: recall {r['recall']:.3f}, "
              f"others removed {100 * r['others_removed']:.2f}%")
    tradeoff_curve(rows, base.hash_margin, out / "dedup_curve.png", "hash margin (bits, hash_max 10)")
    final = evaluate(nb, base, planted, len(xtr), exact_train)
    others = [m for m in decide(nb, base) if m.pool < len(xtr)]
    shown = np.random.default_rng(0).permutation(len(others))[:24]
    pairs_grid([(pool[others[i].pool], ref[others[i].ref], f"{others[i].method} {others[i].score:.3f}")
                for i in sorted(shown)], out / "others_removed.png", cols=6, thumb=56)
    hash_hit, emb_hit = rule_hits(nb, base)
    result = {"thresholds": asdict(base), "teacher": f"{args.arch}, {args.epochs} epochs on {args.train_images}",
              "teacher_test_acc": acc, "wall_s": wall,
              "seconds": nb.seconds, "pool": len(pool), "ref": len(ref), "planted": len(planted),
              "embedding_only": emb_rows, "recall_by_edit": recall_by_edit(nb, base, planted, len(xtr)),
              "dataset_exact_duplicates_train_vs_test": len(exact_train), "curve": rows,
              **{k: v for k, v in final.items() if k != "missed_edits"},
              "missed_examples": final["missed_edits"][:20], "hash_rule_hits": int(hash_hit.sum()),
              "embedding_rule_hits": int(emb_hit.sum()), "torch_threads": torch.get_num_threads()}
    (out / "dedup_bench.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k not in ("curve", "missed_examples")}, indent=2))


if __name__ == "__main__":
    main()
