"""``make bench``: the whole benchmark suite in one run on one machine, printed as ratios with their spread.

(a) ssld distill step vs a hand-written loop (target <= 1.05x its time) and timm's LogitDistillationTask;
(b) offline (soft-label store) vs online teacher: step time, and student top-1 (online BN eval/train, offline);
(c) ``ssld label`` throughput vs a bare ``inference_mode`` loop (target >= 0.9, benchmarks/label_bench.py);
(d) the same KD in torchdistill: pinned to the same loader and arithmetic (top-1 must match), and each framework as
    shipped (images/s, target: ssld ahead; top-1 within 0.3 points over seeds);
(e) peak RSS of each variant, each alone in a fresh process; plus the speed options behind the defaults and the
data loading cost per sample (torchvision chain vs ssld's numpy ops vs the decoded-image cache);
(paddleclas) with ``--paddleclas-src DIR``: the same distillation YAML in PaddleClas's ``tools/train.py`` and in ``ssld
train`` (benchmarks/paddleclas_side_by_side.py); without it, one line says the section is skipped.
Every benchmark runs in its own process; raw numbers land in bench_out/*.json, the tables in
bench_out/summary.md (copied into docs/benchmarks.md by hand, with the machine's state).

Run: ``make bench [PADDLECLAS_SRC=DIR]`` or ``PYTHONPATH=src python benchmarks/run_all.py [--quick]
[--only a,b,c,d,e,defaults,loader,paddleclas] [--paddleclas-src DIR] [--paddle-python PY]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

import common

SECTIONS = ("a", "b", "c", "d", "e", "defaults", "loader", "paddleclas")


def run(script: str, *args: str) -> dict[str, Any]:
    """Run one benchmark script in a fresh process; returns the JSON object on its last stdout line."""
    t0 = time.perf_counter()
    print(f"[bench] {script} {' '.join(args)}", file=sys.stderr, flush=True)
    out = json.loads(common.in_subprocess(script, *args).strip().splitlines()[-1])
    print(f"[bench]   done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return out


def label_bench(quick: bool, smoke: bool) -> dict[str, Any]:
    """(c) through the mining helper's label_bench.py; per-repeat ratios (runs alternate bare, label)."""
    images, repeats = ("300", "1") if smoke else ("2000", "3") if quick else ("5000", "3")
    common.in_subprocess("label_bench.py", "--images", images, "--repeats", repeats, "--workers", "2",
                         "--out", str(common.OUT / "mining"))
    raw = json.loads((common.OUT / "mining" / "label_bench_w2.json").read_text())
    runs = raw["runs_wall_and_cpu_img_s"]  # per repeat: (wall img/s, CPU img/s)
    ratios = [lab[0] / bare[0] for lab, bare in zip(runs["label"], runs["bare"], strict=True)]
    return {**raw, "ratio": {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}}


def fmt(r: dict[str, float]) -> str:
    return f"{r['median']:.3f} ({r['min']:.3f}-{r['max']:.3f})"


def rate(r: dict[str, float]) -> str:
    return f"{r['median_img_s']:.0f} ({r['min_img_s']:.0f}-{r['max_img_s']:.0f})"


def tables(res: dict[str, Any]) -> str:
    """Markdown tables of everything measured."""
    lines = []
    if "a" in res:
        a = res["a"]
        lines += [(f"### (a) Distillation step, {a['rounds']} interleaved rounds of {a['steps_per_round']} steps, "
                  "batch 128, float32"), "",
                  "| timing | bare loop img/s | ssld img/s | timm task img/s | ssld / bare time | timm / bare time |",
                  "|---|---|---|---|---|---|"]
        for mode, label in (("loader", "end to end (DataLoader, 2 workers)"), ("cached", "step only (decoded batches)")):
            m = a[mode]
            lines.append(f"| {label} | {rate(m['img_s']['bare'])} | {rate(m['img_s']['ssld'])} | "
                         f"{rate(m['img_s']['timm'])} | {fmt(m['ssld_over_bare'])} | {fmt(m['timm_over_bare'])} |")
        lines.append("")
    if "b" in res:
        b = res["b"]
        lines += ["### (b) Offline vs online teacher", "",
                  "| timing | online img/s | offline img/s | offline / online time |", "|---|---|---|---|"]
        for mode in ("loader", "cached"):
            m = b["step"][mode]
            lines.append(f"| {mode} | {rate(m['img_s']['online'])} | {rate(m['img_s']['offline'])} | "
                         f"{fmt(m['offline_over_online'])} |")
        if "accuracy" in b:
            acc = b["accuracy"]
            lines += ["", f"Student top-1 after {acc['epochs']} epochs of KD (KL, T=4), same initialisation:", "",
                      "| teacher | top-1 | train img/s |", "|---|---|---|"]
            for name in ("online_bn_eval", "online_bn_train", "offline"):
                lines.append(f"| {name} | {100 * acc[name]['top1']:.2f} | {acc[name]['train_img_s']:.0f} |")
        lines.append("")
    if "c" in res:
        c = res["c"]
        lines += [f"### (c) Labeling, {c['images']} images, {c['arch']}, batch {c['batch_size']}", "",
                  "| bare inference_mode img/s (best) | ssld label img/s (best) | label / bare throughput |",
                  "|---|---|---|",
                  f"| {c['best_wall_img_s']['bare']:.0f} | {c['best_wall_img_s']['label']:.0f} | {fmt(c['ratio'])} |", ""]
    if "d" in res:
        d = res["d"]
        lines += [(f"### (d) Same KD in torchdistill, {d['epochs']} epochs on {d['train_images']} images, "
                  f"{d['repeats']} alternating repeats (medians)"), "",
                  "| framework | img/s | top-1 |", "|---|---|---|"]
        for name in ("ssld", "torchdistill"):
            lines.append(f"| {name} | {d['median'][name]['img_s']:.0f} | {100 * d['median'][name]['top1']:.2f} |")
        lines += ["", (f"Pinned (same loader, same arithmetic): ssld / torchdistill speed "
                  f"{fmt(d['ssld_speed_over_torchdistill'])}; top-1 difference "
                  f"{d['top1_points_ssld_minus_torchdistill']:+.2f} points"), ""]
    if "d_shipped" in res:
        d = res["d_shipped"]
        top1 = d["top1_mean_std"]
        lines += [(f"As shipped (ssld's FM configs vs stock torchdistill with torchvision transforms), "
                   f"{d['seeds']} seed(s): ssld / torchdistill speed {fmt(d['ssld_speed_over_torchdistill'])}; "
                   f"top-1 {100 * top1['ssld'][0]:.2f} ± {100 * top1['ssld'][1]:.2f} vs "
                   f"{100 * top1['torchdistill'][0]:.2f} ± {100 * top1['torchdistill'][1]:.2f}"), ""]
    if "e" in res:
        lines += ["### (e) Peak memory (max RSS of the process, one variant per fresh process)", "",
                  "| variant | steps | RSS after imports+setup (MB) | peak RSS (MB) | peak - setup (MB) |",
                  "|---|---|---|---|---|"]
        for v in res["e"]:
            lines.append(f"| {v['variant']} | {v['steps']} | {v['rss_after_import_mb']:.0f} | "
                         f"{v['peak_rss_mb']:.0f} | {v['peak_rss_mb'] - v['rss_after_import_mb']:.0f} |")
        lines.append("")
    if "defaults" in res:
        dft = res["defaults"]
        lines += ["### Speed options (option time / default time; < 1 is faster)", "",
                  "| option | ratio |", "|---|---|"]
        for group in ("compute", "loader"):
            for name, r in dft[group]["ratios"].items():
                lines.append(f"| {group}: {name} | {fmt(r)} |")
        lines.append("")
    if "loader" in res:
        ld = res["loader"]
        lines += [f"### Data loading, {ld['rounds']} interleaved rounds (benchmarks/bench_loader.py)", "",
                  "| variant | us per sample (median) | / torchvision | DataLoader alone (2 workers; batched: none), img/s |",
                  "|---|---|---|---|"]
        for name, us in ld["per_sample_us_median"].items():
            rates = sorted(ld["loader_img_s"][name])
            lines.append(f"| {name} | {us:.0f} | {ld['per_sample_cost_over_torchvision'][name]:.2f} | "
                         f"{rates[len(rates) // 2]:.0f} ({rates[0]:.0f}-{rates[-1]:.0f}) |")
        lines.append("")
    if "paddleclas" in res:
        lines += ["### The same distillation YAML in PaddleClas and ssld (benchmarks/paddleclas_side_by_side.py)", "",
                  res["paddleclas"], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller data, fewer rounds and epochs (a few minutes)")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {','.join(SECTIONS)}")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile in the speed options")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks that every benchmark runs (seconds)")
    ap.add_argument("--paddleclas-src", default="", help="a PaddleClas checkout: runs the (paddleclas) section")
    ap.add_argument("--paddle-python", default="/work/paddle-venv/bin/python",
                    help="python with paddlepaddle and PaddleClas's requirements (the paddleclas section)")
    args = ap.parse_args(argv)
    only = [s for s in args.only.split(",") if s]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        ap.error(f"--only: unknown sections {unknown}; choose from {','.join(SECTIONS)}")
    q = ["--quick"] if args.quick or args.smoke else []
    tiny = ["--per-class", "20", "--rounds", "1", "--steps", "2"] if args.smoke else []
    t0 = time.perf_counter()
    res: dict[str, Any] = {"machine": common.machine(), "quick": args.quick, "command": " ".join(sys.argv)}
    if "a" in only:
        run("bench_distill_step.py", *q, *tiny)
        res["a"] = json.loads((common.OUT / "distill_step.json").read_text())
    if "b" in only:
        run("bench_offline.py", *q, *tiny, *(["--epochs", "1"] if args.smoke else []))
        res["b"] = json.loads((common.OUT / "offline.json").read_text())
    if "c" in only:
        res["c"] = label_bench(args.quick, args.smoke)
    if "d" in only:
        run("bench_torchdistill.py", *q, *tiny[:2])
        res["d"] = json.loads((common.OUT / "torchdistill.json").read_text())
        run("bench_torchdistill.py", *q, *tiny[:2], "--ssld-defaults", "--stock", "--seeds",
            "1" if args.quick or args.smoke else "3")
        res["d_shipped"] = json.loads((common.OUT / "torchdistill_shipped.json").read_text())
    if "e" in only:
        steps = "2" if args.smoke else "10"
        res["e"] = [run("bench_distill_step.py", *q, *tiny[:2], "--memory", v, "--steps", steps)
                    for v in ("bare", "ssld", "ssld_offline", "timm")]
        res["e"].append(run("bench_torchdistill.py", *q, *tiny[:2], "--memory", steps))
    if "defaults" in only:
        run("bench_defaults.py", *q, *tiny, *(["--compile"] if args.compile else []))
        res["defaults"] = json.loads((common.OUT / "defaults.json").read_text())
    if "loader" in only:
        run("bench_loader.py", *q, *(["--rounds", "1"] if args.smoke else []))
        res["loader"] = json.loads((common.OUT / "loader.json").read_text())
    if "paddleclas" in only and not args.paddleclas_src:
        print("[bench] paddleclas: skipped (no --paddleclas-src / PADDLECLAS_SRC given)", file=sys.stderr, flush=True)
    elif "paddleclas" in only:
        common.in_subprocess("paddleclas_side_by_side.py", "--paddleclas-src", args.paddleclas_src,
                             "--paddle-python", args.paddle_python, *q, timeout=7200)
        res["paddleclas"] = (common.OUT / "paddleclas_side_by_side.md").read_text().strip()
    res["wall_seconds"] = time.perf_counter() - t0
    res["machine_after"] = common.machine()
    common.write_result("summary", res)
    text = tables(res)
    (common.OUT / "summary.md").write_text(text + "\n")
    m = res["machine"]
    print(f"\nmachine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, timm {m['timm']}, "
          f"torchdistill {m['torchdistill']}; load average {m['load_avg_1m']:.1f} before, "
          f"{res['machine_after']['load_avg_1m']:.1f} after; {res['wall_seconds']:.0f} s\n")
    print(text)


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        sys.exit(f"bench: {e}")
