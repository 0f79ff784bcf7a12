"""Dedup on photographs: planted edited copies of reference crops among crops of the same photographs.

The data is built here, never committed, from photographs that installable packages ship: the Debian wallpaper
packages (``apt-get install gnome-backgrounds mate-backgrounds plasma-workspace-wallpapers ukui-wallpapers
lomiri-wallpapers``), OpenCV's sample images (``apt-get install opencv-doc``), scikit-image's and matplotlib's
photographs, and scikit-learn's two sample images when scikit-learn is installed; only the files named below,
chosen by looking at them: photographs, not drawings or renders (of a stereo pair or an exposure series, one).

Each photograph (long side capped at ``--max-side``) is cut into a grid of non-overlapping square crops of one
size per photo, uniform in 128-256 px (so crops of the same photo - same light, same texture - are the hard
negatives). Crops with structure (grayscale standard deviation >= ``--flat-std``) are split into references
("val", a third, at most ``--refs``) and pool; flat crops (sky, walls, blur) go to the pool only, as
distractors that no copy is planted from, and are counted apart. For each seed, ``--plant`` edited copies of
random references are added to the pool: resize, JPEG q30-90, crop 70-95 % of each side, flip, colour jitter,
rotation 3-10 deg, blur, a text overlay, or a pair of two of these. Dedup runs without a teacher (hashes, the
weight-free thumbnail descriptor, the aligned NCC check, SIFT + RANSAC). Reported per seed: recall of the
planted copies matched to their true source, share of the rest of the pool removed (all of it, and its crops
with structure), per-edit recall, what each stage contributes, and the time of each part.

``--crop-sides 384,512 --out bench_out/photos_large`` cuts crops of ImageNet's image size instead (fewer of them:
1,005); ``benchmarks/dedup_whole_photos.py`` takes the photographs uncut.

``--scale P,R`` times a P-image pool against R references built by re-using the distinct crops with a small
jitter (1-6 px shift, brightness x0.97-1.03): such re-used crops are near-copies of each other, so only the time
is meaningful there, not the recall.

Run: ``OMP_NUM_THREADS=2 python benchmarks/dedup_photos.py [--out bench_out/photos] [--seeds 0,1,2]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

from ssld.mining.dedup import (
    align_verdicts,
    decide,
    noise_verdicts,
    search,
    sift_verdicts,
)
from ssld.mining.rules import Thresholds, align_hits, noise_hits

# photographs among the packages' wallpapers (visual check); Plasma's are directories with one image per size
PHOTOS = {
    "plasma-workspace-wallpapers": ("Autumn", "BytheWater", "ColdRipple", "DarkestHour", "EveningGlow",
                                    "FallenLeaf", "Grey", "OneStandsOut", "Path", "ColorfulCups"),
    "lomiri-wallpapers": ("Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Kleiber_by_Lukas_Baubkus",
                          "Picture_0B_by_freespace", "Picture_1A_by_freespace", "Wine_by_Jakkub_Mede",
                          "aitzgorri_by_Aitzol_Berasategi", "free_by_Peter_Nerlich", "friends_by_Aitzol_Berasategi",
                          "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi",
                          "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi"),
    "mate-backgrounds": ("Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops",
                         "Storm", "TwoWings", "Wood", "YellowFlower"),
    "ukui/lomiri backgrounds": ("analogpattern_by_Peter_Nerlich", "Infinite-Sea_by_Aury88"),
    # opencv-doc's sample photographs (one of each stereo pair / exposure series / video pair)
    "opencv-doc": ("aero1", "aloeL", "apple", "baboon", "basketball1", "board", "box_in_scene", "building",
                   "butterfly", "chicky_512", "ela_original", "fruits", "graf1", "home", "leuvenA",
                   "licenseplate_motion", "messi5", "orange", "rubberwhale1", "squirrel_cls", "HappyFish"),
}
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
SKIMAGE = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "hubble_deep_field", "immunohistochemistry",
           "brick", "gravel", "grass", "moon", "retina", "stereo_motorcycle", "cell", "microaneurysms", "clock")
EDITS = ("resize", "jpeg", "crop", "flip", "color", "rotate", "blur", "text")
WORDS = ("SALE", "copyright 2024", "hello world", "#photo", "ssld", "sample text", "www", "42")


def find_photos() -> dict[str, Path | np.ndarray]:
    """Name -> file (largest size of a Plasma wallpaper) or array, for every photograph that is installed."""
    out: dict[str, Path | np.ndarray] = {}
    plasma = Path("/usr/share/wallpapers")
    for name in PHOTOS["plasma-workspace-wallpapers"]:
        files = sorted((plasma / name / "contents" / "images").glob("*.jpg"), key=lambda p: p.stat().st_size)
        if files:
            out[f"plasma/{name}"] = files[-1]
    for name in PHOTOS["lomiri-wallpapers"]:
        if (f := Path("/usr/share/backgrounds") / f"{name}.jpg").is_file():
            out[f"lomiri/{name}"] = f
    for name in PHOTOS["mate-backgrounds"]:
        if (f := Path("/usr/share/backgrounds/mate/nature") / f"{name}.jpg").is_file():
            out[f"mate/{name}"] = f
    for name in PHOTOS["ukui/lomiri backgrounds"]:
        if (f := Path("/usr/share/backgrounds") / f"{name}.jpg").is_file():
            out[f"backgrounds/{name}"] = f
    for name in PHOTOS["opencv-doc"]:
        for f in sorted(OPENCV_DATA.glob(f"{name}.*"))[:1]:
            out[f"opencv/{name}"] = f
    import skimage.data

    for name in SKIMAGE:
        try:
            img = getattr(skimage.data, name)()
            out[f"skimage/{name}"] = np.asarray(img[0] if isinstance(img, tuple) else img)  # a stereo pair: left
        except (AttributeError, ImportError, OSError, ValueError) as e:  # not shipped by this version
            print(f"skimage.data.{name}: not available ({type(e).__name__})")
    try:
        import matplotlib.cbook

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
            out["matplotlib/grace_hopper"] = np.asarray(Image.open(f).convert("RGB"))
    except (ImportError, OSError, ValueError):
        pass
    try:
        from sklearn.datasets import load_sample_images

        for fname, arr in zip(load_sample_images().filenames, load_sample_images().images, strict=True):
            out[f"sklearn/{Path(fname).stem}"] = arr
    except ImportError:
        pass
    return out


def load_rgb(src: Path | np.ndarray, max_side: int) -> Image.Image:
    img = Image.fromarray(src) if isinstance(src, np.ndarray) else Image.open(src)
    if isinstance(src, Path):
        img.draft("RGB", (max_side, max_side))
    img = img.convert("RGB")
    if max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.LANCZOS)
    return img


def cut_crops(photos: dict, out: Path, max_side: int, flat_std: float, rng: np.random.Generator,
              sides: tuple[int, int] = (128, 256)) -> tuple[list, dict]:
    """Non-overlapping square crops (one size per photo, uniform in ``sides``: 128-256 px by default), flat ones
    marked; written as JPEG q95."""
    (out / "crops").mkdir(parents=True, exist_ok=True)
    crops, stats = [], {"photos": len(photos), "cut": 0, "flat": 0, "per_photo": {}}
    for name, src in photos.items():
        img = load_rgb(src, max_side)
        w, h = img.size
        side = int(rng.integers(sides[0], sides[1] + 1))
        kept = 0
        for y in range(0, h - side + 1, side):
            for x in range(0, w - side + 1, side):
                crop = img.crop((x, y, x + side, y + side))
                stats["cut"] += 1
                flat = float(np.asarray(crop.convert("L"), np.float32).std()) < flat_std
                stats["flat"] += flat
                rel = f"crops/{len(crops):06d}.jpg"
                crop.save(out / rel, quality=95)
                crops.append({"path": rel, "photo": name, "flat": flat})
                kept += not flat
        stats["per_photo"][name] = kept
    return crops, stats


def edit(img: Image.Image, kind: str, rng: np.random.Generator) -> tuple[Image.Image, dict]:
    """One edit of ``kind`` with random parameters; returns the image and the parameters (``q`` = JPEG quality)."""
    w, h = img.size
    if kind == "resize":
        f = float(rng.choice([rng.uniform(0.5, 0.9), rng.uniform(1.1, 1.5)]))
        return img.resize((max(16, round(w * f)), max(16, round(h * f))), Image.BILINEAR), {"f": round(f, 2)}
    if kind == "jpeg":
        return img, {"q": int(rng.integers(30, 91))}
    if kind == "crop":
        fx, fy = rng.uniform(0.70, 0.95, 2)
        cw, ch = round(w * fx), round(h * fy)
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        return img.crop((x, y, x + cw, y + ch)), {"fx": round(float(fx), 2), "fy": round(float(fy), 2)}
    if kind == "flip":
        return ImageOps.mirror(img), {}
    if kind == "color":
        b, c, s = rng.uniform(0.7, 1.3), rng.uniform(0.7, 1.3), rng.uniform(0.5, 1.5)
        img = ImageEnhance.Color(ImageEnhance.Contrast(ImageEnhance.Brightness(img).enhance(b)).enhance(c)).enhance(s)
        return img, {"b": round(float(b), 2), "c": round(float(c), 2), "s": round(float(s), 2)}
    if kind == "rotate":
        a = float(rng.uniform(3, 10) * rng.choice([-1, 1]))
        return img.rotate(a, resample=Image.BILINEAR), {"deg": round(a, 1)}
    if kind == "blur":
        r = float(rng.uniform(1.0, 2.5))
        return img.filter(ImageFilter.GaussianBlur(r)), {"r": round(r, 2)}
    if kind == "text":
        img = img.copy()
        size = int(rng.integers(max(10, h // 12), max(12, h // 5)))
        font = ImageFont.load_default(size=size)
        word = str(rng.choice(WORDS))
        pos = (int(rng.integers(0, max(1, w // 2))), int(rng.integers(0, max(1, h - size))))
        fill = tuple(int(v) for v in rng.choice([[255, 255, 255], [0, 0, 0], [255, 0, 0]]))
        ImageDraw.Draw(img).text(pos, word, fill=fill, font=font)
        return img, {"size": size}
    raise ValueError(kind)


def plant(refs: list, n: int, out: Path, root: Path, rng: np.random.Generator) -> list[dict]:
    """``n`` edited copies of random references: half one edit, half a pair of two different edits."""
    out.mkdir(parents=True, exist_ok=True)
    planted = []
    for j, r in enumerate(rng.choice(len(refs), size=min(n, len(refs)), replace=False)):
        kinds = [str(rng.choice(EDITS))] if j % 2 == 0 else [str(k) for k in rng.choice(EDITS, 2, replace=False)]
        img = Image.open(root / refs[r]["path"]).convert("RGB")
        params: dict = {}
        for k in kinds:
            img, p = edit(img, k, rng)
            params[k] = p
        q = params.get("jpeg", {}).get("q", 95)
        path = out / f"copy{j:05d}.jpg"
        img.save(path, quality=q)
        planted.append({"path": str(path), "ref": int(r), "edits": kinds, "params": params})
    return planted


def evaluate(matches: list, planted: list[dict], n_others: int, flat: np.ndarray | None = None) -> dict:
    """Recall (right source), others removed (of all, and of the crops with structure), per-edit recall,
    by-method counts."""
    by_pool = {m.pool: m for m in matches}
    hit = [by_pool.get(n_others + j) is not None and by_pool[n_others + j].ref == p["ref"]
           for j, p in enumerate(planted)]
    wrong_source = sum(by_pool.get(n_others + j) is not None and not h for j, h in enumerate(hit))
    others = [m.pool for m in matches if m.pool < n_others]
    flat = np.zeros(n_others, bool) if flat is None else flat
    per_edit: dict[str, list[bool]] = {}
    for p, h in zip(planted, hit, strict=True):
        key = p["edits"][0] if len(p["edits"]) == 1 else "pair"
        per_edit.setdefault(key, []).append(h)
        for k in p["edits"]:
            per_edit.setdefault(f"any {k}", []).append(h)
    methods: dict[str, int] = {}
    for j in range(len(planted)):
        m = by_pool.get(n_others + j)
        if m is not None:
            methods[m.method] = methods.get(m.method, 0) + 1
    structured = [i for i in others if not flat[i]]
    return {"recall": float(np.mean(hit)), "others_removed": len(others) / n_others, "others_removed_n": len(others),
            "others_removed_structured": len(structured) / max(int((~flat).sum()), 1),
            "others_removed_structured_n": len(structured), "wrong_source": wrong_source,
            "copies_by_method": methods,
            "recall_by_edit": {k: [round(float(np.mean(v)), 3), len(v)] for k, v in sorted(per_edit.items())}}


KEYPOINT_BINS = (0, 8, 20, 100)


def recall_by_detail(matches: list, planted: list[dict], n_others: int, ref_files: list[str]) -> dict:
    """Recall split by how much detail the copy's source has: its SIFT keypoint count (as ``ssld.mining.sift``
    finds them). Crops of sky or water pass the flat-crop cut on their gradients but hold almost no detail."""
    from ssld.mining.sift import SiftVerifier

    verifier = SiftVerifier()
    by_pool = {m.pool: m.ref for m in matches}
    rows: dict[str, list[bool]] = {}
    for j, p in enumerate(planted):
        kp = verifier.keypoints(ref_files[p["ref"]])
        lo = max(b for b in KEYPOINT_BINS if b <= kp)
        hi = next((b for b in KEYPOINT_BINS if b > kp), None)
        rows.setdefault(f"{lo}-{hi - 1}" if hi else f">={lo}", []).append(by_pool.get(n_others + j) == p["ref"])
    return {k: [round(float(np.mean(v)), 3), len(v)] for k, v in sorted(rows.items(), key=lambda kv: int(
        kv[0].lstrip(">=").split("-")[0]))}


def run_seed(seed: int, refs: list, pool: list, root: Path, args, th: Thresholds) -> dict:
    rng = np.random.default_rng(1000 + seed)
    planted = plant(refs, args.plant, root / f"planted_s{seed}", root, rng)
    pool_files = [str(root / p["path"]) for p in pool] + [p["path"] for p in planted]
    ref_files = [str(root / r["path"]) for r in refs]
    n = len(pool)
    flat = np.array([bool(p.get("flat")) for p in pool])
    t0 = time.perf_counter()
    nb = search(pool_files, ref_files, None, None, k=th.k, workers=args.workers, progress=False)
    t1 = time.perf_counter()
    # the defaults' path: align the shortlist, SIFT only where the alignment did not accept
    align = align_verdicts(nb, th, workers=args.workers, pool_files=pool_files, ref_files=ref_files)
    t2 = time.perf_counter()
    accepted = {m.pool for m in align if align_hits(np.float64(m.score), np.float64(m.margin), False, th,
                                                   np.float64(m.peak))}
    noise = noise_verdicts(nb, th, pool_files, ref_files, workers=args.workers, skip=accepted)
    t3 = time.perf_counter()
    full = decide(nb, th, pool_files, ref_files, workers=args.workers, align=align, noise=noise)
    t4 = time.perf_counter()
    res = {"seed": seed, "pool": len(pool_files), "pool_flat": int(flat.sum()), "ref": len(ref_files),
           "planted": len(planted), "aligned": len(align), "grain_compared": len(noise),
           "seconds": {**nb.seconds, "search": t1 - t0, "align": t2 - t1, "grain": t3 - t2, "sift_rest": t4 - t3,
                       "total": t4 - t0},
           "full": evaluate(full, planted, n, flat)}
    src = np.array([p["ref"] for p in planted])
    res["source_in_thumb_topk"] = float(np.mean((nb.desc_ref[n:] == src[:, None]).any(1)))
    res["source_in_hash_topk"] = float(np.mean((nb.hash_ref[n:] == src[:, None]).any(1)))
    res["source_thumb_top1"] = float(np.mean(nb.desc_ref[n:, 0] == src))
    by_pool = {m.pool: m for m in align}
    res["recall_by_source_keypoints"] = recall_by_detail(full, planted, n, ref_files)
    res["source_aligned_best"] = float(np.mean([by_pool.get(n + j) is not None and by_pool[n + j].ref == p["ref"]
                                                for j, p in enumerate(planted)]))
    res["missed_examples"] = [{**planted[j], "thumb_sim": float(nb.desc_sim[n + j, 0]),
                               "align": [by_pool[n + j].ref, round(by_pool[n + j].score, 3),
                                         round(by_pool[n + j].margin, 2)] if n + j in by_pool else None}
                              for j in range(len(planted))
                              if not any(m.pool == n + j and m.ref == planted[j]["ref"] for m in full)][:40]
    if not args.stages:  # the alignment's trade-off alone (SIFT as the defaults run it is in "full")
        res["curve"] = []
        for a_min in (0.75, 0.8, 0.85, 0.9):
            for ratio in (2.0, 3.0, 4.0, 5.0, 8.0):
                t = replace(th, align_min=a_min, align_ratio=ratio)
                e = evaluate(decide(nb, t, align=align, noise=noise), planted, n, flat)
                res["curve"].append({"align_min": a_min, "align_ratio": ratio, "sift": "none",
                                     "recall": round(e["recall"], 4), "others_removed": e["others_removed"],
                                     "others_removed_structured": e["others_removed_structured"]})
        return res
    # what each stage contributes, on the same neighbours (SIFT on every candidate, computed once)
    ts = time.perf_counter()
    sift = sift_verdicts(nb, th, pool_files, ref_files, workers=args.workers)
    res["seconds"]["sift_all_candidates"] = time.perf_counter() - ts
    res["sift_judged"] = int(sift[1].sum())
    res["copies_sift_judged"] = float(np.mean(sift[1][n:]))
    off = replace(th, align_min=2.0)
    no_thumb = replace(nb, desc_sim=np.full_like(nb.desc_sim, -np.inf), desc_ref=np.full_like(nb.desc_ref, -1))
    ts = time.perf_counter()
    sift_hash = sift_verdicts(no_thumb, th, pool_files, ref_files, workers=args.workers)
    res["seconds"]["sift_hash_candidates"] = time.perf_counter() - ts
    stages = {"hash only": decide(no_thumb, off, align=[], noise=[]),
              "hash + SIFT on hash candidates": decide(no_thumb, off, sift=sift_hash, align=[], noise=[]),
              "+ thumbnail shortlist for SIFT (previous defaults)": decide(nb, off, sift=sift, align=[], noise=[]),
              "hash + aligned NCC + grain, no SIFT": decide(nb, th, align=align, noise=noise),
              "aligned NCC + grain + SIFT on every candidate": decide(nb, th, sift=sift, align=align, noise=noise),
              "defaults without colour (no colour rule, no hue veto)": gated(
                  replace(nb, pool_colour=None, ref_colour=None), th, sift, align, noise),
              "defaults without the grain rule": gated(nb, th, sift, align, []),
              "defaults, recomputed from these verdicts": gated(nb, th, sift, align, noise)}
    res["stages"] = {k: evaluate(v, planted, n, flat) for k, v in stages.items()}
    # the best aligned NCC of the copies that only SIFT finds (what sift_align_gate must let through)
    acc = {m.pool for m in align if align_hits(np.float64(m.score), np.float64(m.margin), False, th, np.float64(m.peak))}
    sift_ok = {m.pool: m.ref for m in sift[0] if m.score >= th.sift_min_inliers}
    a_score = {m.pool: m.score for m in align}
    res["align_score_of_copies_only_sift_finds"] = sorted(
        round(a_score.get(n + j, -1.0), 3) for j, p in enumerate(planted)
        if n + j not in acc and sift_ok.get(n + j) == p["ref"])
    # the trade-off on the same verdicts: NCC floor x distance ratio x the NCC from which SIFT looks
    res["curve"] = []
    for a_min in (0.75, 0.8, 0.85, 0.9):
        for ratio in (2.0, 3.0, 4.0, 5.0, 8.0):
            for gate in (0.3, 0.5, 0.6):
                t = replace(th, align_min=a_min, align_ratio=ratio, sift_align_gate=gate)
                e = evaluate(gated(nb, t, sift, align, noise), planted, n, flat)
                res["curve"].append({"align_min": a_min, "align_ratio": ratio, "sift_align_gate": gate,
                                     "recall": round(e["recall"], 4), "others_removed": e["others_removed"],
                                     "others_removed_structured": e["others_removed_structured"],
                                     "sift_images": int(gated_sift_rows(t, sift, align, noise).sum())})
    return res


def gated_sift_rows(th: Thresholds, sift: tuple, align: list, noise: list = ()) -> np.ndarray:
    """The pool images SIFT would check under ``th``: judged, not accepted by the alignment or the grain, NCC >=
    the gate."""
    rows = sift[1].copy()
    for m in align:
        if align_hits(np.float64(m.score), np.float64(m.margin), False, th, np.float64(m.peak)) or m.score < th.sift_align_gate:
            rows[m.pool] = False
    rows[[m.pool for m in noise if noise_hits(m, th)]] = False
    return rows


def gated(nb, th: Thresholds, sift: tuple, align: list, noise: list = ()) -> list:
    """``decide`` as the defaults run it (SIFT only where neither the alignment nor the grain accepted and NCC >=
    the gate), from SIFT verdicts computed on every candidate and grain verdicts of the pool images the
    alignment did not accept."""
    rows = gated_sift_rows(th, sift, align, noise)
    return decide(nb, th, sift=([m for m in sift[0] if rows[m.pool]], rows), align=align, noise=list(noise))


def scale_run(crops: list, n_pool: int, n_ref: int, root: Path, args, th: Thresholds) -> dict:
    """Time a ``n_pool`` x ``n_ref`` dedup on crops re-used with a small jitter (time only: see the docstring)."""
    rng = np.random.default_rng(7)
    d = root / "scale"
    d.mkdir(exist_ok=True)

    def jittered(k: int, tag: str) -> list[str]:
        files = []
        for j in range(k):
            src = crops[j % len(crops)]
            path = d / f"{tag}{j:06d}.jpg"
            if not path.is_file():
                img = Image.open(root / src["path"]).convert("RGB")
                w, h = img.size
                dx, dy = rng.integers(1, 7, 2)
                img = img.crop((int(dx), int(dy), w, h))
                ImageEnhance.Brightness(img).enhance(float(rng.uniform(0.97, 1.03))).save(path, quality=90)
            files.append(str(path))
        return files

    ref_files = jittered(n_ref, "r")
    pool_files = jittered(n_pool, "p")
    t0 = time.perf_counter()
    nb = search(pool_files, ref_files, None, None, k=th.k, workers=args.workers, progress=False)
    t1 = time.perf_counter()
    matches = decide(nb, th, pool_files, ref_files, workers=args.workers)
    t2 = time.perf_counter()
    cand = int(((nb.hash_dist[:, 0] <= th.sift_cand_hash) | (nb.desc_sim[:, 0] >= th.thumb_cand)).sum())
    return {"pool": n_pool, "ref": n_ref, "seconds": {**nb.seconds, "search": t1 - t0, "decide_sift": t2 - t1,
                                                       "total": t2 - t0},
            "sift_candidates": cand, "removed": len(matches)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench_out/photos")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--plant", type=int, default=500)
    ap.add_argument("--refs", type=int, default=10000)
    ap.add_argument("--max-side", type=int, default=8192)
    ap.add_argument("--flat-std", type=float, default=12.0)
    ap.add_argument("--crop-sides", default="128,256",
                    help="LO,HI: crop sides in px, one per photo (384,512 is ImageNet's scale; use its own --out)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scale", default="", help="P,R: also time a P x R run on re-used crops, e.g. 60000,10000")
    ap.add_argument("--skip-seeds", action="store_true", help="only the --scale timing")
    ap.add_argument("--sift-contrast", type=float, default=None, help="SIFT contrast threshold (default: the module's)")
    ap.add_argument("--photos", type=int, default=0, help="use only the first N photographs (a quick smoke run)")
    ap.add_argument("--no-stages", dest="stages", action="store_false",
                    help="skip the per-stage breakdown (two more SIFT passes over every candidate)")
    args = ap.parse_args()
    if args.sift_contrast is not None:
        from ssld.mining import sift

        sift.CONTRAST = args.sift_contrast
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    index = root / "crops.json"
    sides = tuple(int(v) for v in args.crop_sides.split(","))
    if index.is_file():
        crops, stats = json.loads(index.read_text()).values()
        if tuple(stats.get("sides", (128, 256))) != sides:
            sys.exit(f"{index}: crops of {stats.get('sides', (128, 256))} px, not --crop-sides {args.crop_sides}; "
                     "give another --out")
    else:
        photos = find_photos()
        if args.photos:
            photos = dict(list(photos.items())[: args.photos])
        crops, stats = cut_crops(photos, root, args.max_side, args.flat_std, np.random.default_rng(0), sides)
        stats["sides"] = list(sides)
        index.write_text(json.dumps({"crops": crops, "stats": stats}))
    order = np.random.default_rng(0).permutation(len(crops))
    structured = [i for i in order if not crops[i].get("flat")]
    n_ref = min(args.refs, len(structured) // 3)
    refs = [crops[i] for i in structured[:n_ref]]
    pool = [crops[i] for i in structured[n_ref:]] + [crops[i] for i in order if crops[i].get("flat")]
    th = Thresholds()
    print(f"{stats['photos']} photos, {len(crops)} crops of which {stats['flat']} flat (pool-only distractors); "
          f"{len(refs)} references, {len(pool)} pool", flush=True)
    result = {"crops": {k: v for k, v in stats.items() if k != "per_photo"}, "per_photo": stats["per_photo"],
              "thresholds": asdict(th), "cpu": os.cpu_count(), "seeds": []}
    if not args.skip_seeds:
        for seed in (int(s) for s in args.seeds.split(",")):
            r = run_seed(seed, refs, pool, root, args, th)
            result["seeds"].append(r)
            print(json.dumps({k: r.get(k) for k in ("seed", "seconds", "aligned", "sift_judged")}), flush=True)
            for name, e in {"defaults": r["full"], **r.get("stages", {})}.items():
                print(f"  {name:50s} recall {e['recall']:.3f}  others removed {100 * e['others_removed']:.3f}% "
                      f"({e['others_removed_n']}; of crops with structure "
                      f"{100 * e['others_removed_structured']:.3f}%)  wrong source {e['wrong_source']}", flush=True)
            print(f"  per edit: {r['full']['recall_by_edit']}", flush=True)
            print(f"  by the source's SIFT keypoints: {r['recall_by_source_keypoints']}", flush=True)
            print(f"  source in thumb top-k {r['source_in_thumb_topk']:.3f}, top-1 {r['source_thumb_top1']:.3f}, "
                  f"in hash top-k {r['source_in_hash_topk']:.3f}; aligned best = source "
                  f"{r['source_aligned_best']:.3f}", flush=True)
            for row in r.get("curve", []):
                if row["others_removed"] <= 0.006:
                    print(f"    {row}", flush=True)
            (root / "dedup_photos.json").write_text(json.dumps(result, indent=2))
    if args.scale:
        p, r = (int(v) for v in args.scale.split(","))
        result["scale"] = scale_run(crops, p, r, root, args, th)
        print(json.dumps(result["scale"]), flush=True)
    (root / "dedup_photos.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
