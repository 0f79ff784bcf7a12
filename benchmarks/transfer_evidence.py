"""The recipe on data nobody tuned it for: ``ssld init`` defaults on digits32 and fmnist32, seeds in sequence.

For each dataset (built by ``benchmarks/transfer_datasets.py`` when its folder is missing) the script writes the
pipeline file with ``ssld init --data DIR --out OUT/NAME.yaml`` (its defaults, nothing changed) and runs
``ssld pipeline -c OUT/NAME.yaml --seed S --run-dir OUT/NAME-sS`` for every seed, one run at a time (the seed is
the pipeline's ``--seed``: every training stage's ``Global.seed``; the data lists are the same for all seeds).
``--weak`` adds one seed-0 run per dataset, before its seed 0, with a deliberately undertrained teacher
(``Global.epochs`` 40 in ``Pipeline.teacher.overrides``, the Fashion-MNIST configs' value the issue copied): the
teacher guard must stop it after the baseline (a run folder of its own: seed 0 trains its baseline again).

Everything goes to ``OUT/driver.log`` (commands, load average before and after each run, exit codes); the table
of every finished run (val top-1 of each model, deltas, per-stage wall and CPU time) to ``OUT/summary.md`` and
``OUT/summary.json``, rewritten after each run, so a run cut short still leaves the finished ones.

    .venv/bin/python benchmarks/transfer_evidence.py --out runs/transfer --seeds 0 1 2 --weak [--parallel 3]

``--parallel N`` runs N pipelines at once, each with one thread (``OMP_NUM_THREADS=1``) and its output in
``OUT/RUN.log``: on a 2-core machine three side by side finish sooner than three in sequence with two threads.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WEAK_EPOCHS = 40
STAGES = ("data", "teacher", "baseline", "label", "dedup", "select", "distill", "finetune", "eval")


def log(out: Path, text: str) -> None:
    line = f"{time.strftime('%H:%M:%S', time.gmtime())} UTC  {text}"
    print(line, flush=True)
    with open(out / "driver.log", "a") as f:
        f.write(line + "\n")


def run(out: Path, cmd: list[str], log_name: str = "driver.log", threads: int | None = None) -> int:
    """Run one command with its output appended to ``OUT/log_name``; returns its exit code."""
    log(out, f"$ {' '.join(cmd)}   (load average {os.getloadavg()[0]:.2f})")
    start = time.time()
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {}))
    with open(out / log_name, "a") as f:
        code = subprocess.run(cmd, check=False, cwd=out, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    log(out, f"exit {code} after {time.time() - start:.0f} s (load average {os.getloadavg()[0]:.2f})")
    return code


def ensure_data(name: str, data_dir: Path, digits_csv: str | None, out: Path) -> None:
    if (data_dir / "val.txt").is_file():
        return
    cmd = [sys.executable, str(ROOT / "benchmarks" / "transfer_datasets.py"), name, "--out", str(data_dir)]
    if name == "digits32" and digits_csv:
        cmd += ["--digits-csv", digits_csv]
    if run(out, cmd):
        raise SystemExit(f"building {name} failed (see {out / 'driver.log'})")


def run_summary(run_dir: Path) -> dict[str, Any]:
    """Val top-1 of each model, the guard's comparison and each stage's wall / CPU seconds of one run."""
    from ssld.report.tables import read_json, result_rows

    rows = {r["stage"]: r for r in result_rows(run_dir)}
    times = {}
    for stage in STAGES:
        done = read_json(run_dir / stage / "done.json")
        if done:
            times[stage] = {"wall_s": done.get("wall_time_s"), "cpu_s": done.get("cpu_time_s"),
                            "steps": (done.get("metrics") or {}).get("steps")}
    guard = read_json(run_dir / "guard.json") or {}
    return {"run": run_dir.name, "top1": {k: v["top1"] for k, v in rows.items()},
            "guard": {k: guard.get(k) for k in ("teacher_holdout_top1", "student_holdout_top1", "margin",
                                                "holdout_images", "teacher_trained_on_holdout")},
            "times": times}


def write_summary(out: Path, runs: list[dict[str, Any]]) -> None:
    head = ("| run | teacher | labels-only | distill | finetune | Δ (finetune − labels-only) | teacher − distill "
            "| guard margin | stage wall time (CPU time) |\n|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in runs:
        t = r["top1"]

        def cell(k: str, t: dict[str, Any] = t) -> str:
            return f"{t[k]:.2f}" if t.get(k) is not None else "-"

        delta = (f"{t['finetune'] - t['baseline']:+.2f}" if t.get("finetune") is not None
                 and t.get("baseline") is not None else "-")
        gap = (f"{t['teacher'] - t['distill']:+.2f}" if t.get("distill") is not None
               and t.get("teacher") is not None else "-")
        margin = r["guard"].get("margin")
        stages = ", ".join(f"{s} {v['wall_s']:.0f} s ({v['cpu_s']:.0f})" for s, v in r["times"].items()
                           if v.get("wall_s") is not None and v.get("cpu_s") is not None)
        lines.append(f"| {r['run']} | {cell('teacher')} | {cell('baseline')} | {cell('distill')} | "
                     f"{cell('finetune')} | {delta} | {gap} | {'-' if margin is None else f'{margin:+.2f}'} "
                     f"| {stages} |")
    (out / "summary.md").write_text(head + "\n".join(lines) + "\n")
    (out / "summary.json").write_text(json.dumps(runs, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/transfer")
    ap.add_argument("--data-root", default="data", help="where digits32/ and fmnist32/ are (built when missing)")
    ap.add_argument("--datasets", nargs="+", default=["digits32", "fmnist32"], choices=["digits32", "fmnist32"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--weak", action="store_true", help="add the undertrained-teacher run after seed 0")
    ap.add_argument("--digits-csv", help="sklearn's digits.csv.gz (when scikit-learn is not installed)")
    ap.add_argument("--parallel", type=int, default=1,
                    help="pipelines run at once; above 1 each gets OMP_NUM_THREADS=1 and a log of its own")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    ssld = str(Path(sys.executable).with_name("ssld"))
    from benchmarks.common import machine

    log(out, f"machine: {machine()}")
    runs: list[dict[str, Any]] = []
    for name in args.datasets:
        data_dir = Path(args.data_root).resolve() / name
        ensure_data(name, data_dir, args.digits_csv, out)
        if not (out / f"{name}.yaml").is_file():
            run(out, [ssld, "init", "--data", str(data_dir), "--out", f"{name}.yaml"])
    jobs: list[tuple[str, int | str]] = []
    for seed in args.seeds:  # every dataset's seed 0 first (after its weak-teacher run)
        for name in args.datasets:
            jobs += [(name, "weak")] if args.weak and seed == 0 else []
            jobs.append((name, seed))
    threads = 1 if args.parallel > 1 else None

    def one(job: tuple[str, int | str]) -> dict[str, Any]:
        name, seed = job
        run_dir = out / (f"{name}-weak-s0" if seed == "weak" else f"{name}-s{seed}")
        cmd = [ssld, "pipeline", "-c", f"{name}.yaml", "--seed", "0" if seed == "weak" else str(seed),
               "--run-dir", run_dir.name]
        cmd += ["-o", f"teacher.overrides={{Global.epochs: {WEAK_EPOCHS}}}"] if seed == "weak" else []
        code = run(out, cmd, f"{run_dir.name}.log" if args.parallel > 1 else "driver.log", threads)
        if seed == "weak":
            log(out, f"{name} weak teacher: exit {code} ({'stopped, as it must' if code else 'NOT stopped'})")
        return run_summary(run_dir)

    with ThreadPoolExecutor(max(1, args.parallel)) as pool:
        futures = [pool.submit(one, job) for job in jobs]
        for future in as_completed(futures):
            runs.append(future.result())
            write_summary(out, sorted(runs, key=lambda r: r["run"]))

if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
