"""The teacher guard: a teacher that is not clearly better than the labels-only student must not teach in silence.

After the teacher and baseline stages, both models are scored on the labeled images the baseline's lr grid held
out (``baseline/lr_grid/grid_holdout.txt``; never val). The student's score is the chosen lr's grid run, which
never trained on those images. The teacher's score is optimistic when the teacher trained on them (it trains on
the labeled set, or a list that contains it), so the margin is a lower bar, not a fair fight; a teacher that
fails even that bar cannot help. ``RUN/guard.json`` records the comparison (the report states it); a teacher
below ``Pipeline.guard.min_margin`` stops the pipeline with one line, unless ``allow_weak_teacher``; once allowed,
the same teacher and baseline stay allowed in that run folder (``"allowed": true`` in ``guard.json``), so a later
``--from eval`` or ``--only report`` needs no flag.

A teacher that trains on the labeled set has seen every held-out image, and then the bar is too low to catch a weak
teacher: on digits32 a teacher 14.6 points below the labels-only student on val scored 97.5 % on the 40 held-out
images it trained on against the student's 92.5 %, and passed. ``Pipeline.guard.hold_out_from_teacher`` (``ssld
init`` writes it) trains such a teacher on the baseline's grid split instead (``teacher_train_list``: the same
images the lr grid trains on), so both models are scored on images neither saw; the teacher gives up those labels.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ssld.errors import UserError
from ssld.pipeline.config import GuardSection, PipelineConfig
from ssld.pipeline.records import read_done
from ssld.pipeline.training import WEIGHTS, evaluate_weights
from ssld.utils.io import write_json

log = logging.getLogger("ssld.pipeline")
GUARD = "guard.json"
HOLDOUT = Path("lr_grid") / "grid_holdout.txt"


def holds_out_from_teacher(p: PipelineConfig) -> bool:
    """Whether the teacher trains without the guard's holdout: asked for, the guard and baseline on, and the teacher
    training on the labeled set itself (a separate teacher list is the user's choice of images)."""
    pl = p.pipeline
    return (pl.guard.enabled and pl.guard.hold_out_from_teacher and pl.baseline is not None and pl.baseline.enabled
            and not pl.data.separate_teacher_set)


def teacher_train_list(p: PipelineConfig, labeled: Path, out_dir: Path) -> Path:
    """The labeled list without the baseline's held-out images (the same stratified split, seed and fraction the
    baseline's lr grid uses), written under ``out_dir/guard_split``."""
    from ssld.pipeline.baseline import split_labeled

    assert p.pipeline.baseline is not None
    split = out_dir / "guard_split"
    split.mkdir(parents=True, exist_ok=True)
    train, _ = split_labeled(labeled, p.pipeline.baseline.holdout_fraction, p.pipeline.seed, split)
    return train


def compare(run_dir: Path) -> dict[str, Any] | None:
    """Teacher vs labels-only student on the baseline's holdout (cached in ``RUN/guard.json`` by the two stages'
    fingerprints); None while either stage is unfinished."""
    teacher, baseline = read_done(run_dir / "teacher"), read_done(run_dir / "baseline")
    if teacher is None or baseline is None:
        return None
    key = {"teacher": teacher.get("fingerprint"), "baseline": baseline.get("fingerprint")}
    path = run_dir / GUARD
    if path.is_file():
        try:
            cached = json.loads(path.read_text())
        except ValueError:
            cached = {}
        if cached.get("fingerprints") == key:
            return cached
    from ssld.config import load_config

    metrics = baseline.get("metrics", {})
    student = metrics.get("lr_grid_holdout_top1", {}).get(f"{metrics.get('lr'):g}")
    holdout = run_dir / "baseline" / HOLDOUT
    root = (read_done(run_dir / "data") or {}).get("metrics", {}).get("image_root")
    root = str(run_dir / "data") if root in (None, ".") else root
    cfg = load_config(run_dir / "teacher" / "config.yaml")
    score = evaluate_weights(cfg, run_dir / "teacher" / WEIGHTS, str(holdout), root)
    teacher_list = Path(cfg.DataLoader.Train.dataset.cls_label_path)
    seen = {line.split()[0] for line in teacher_list.read_text().splitlines() if line.strip()}
    held = [line.split()[0] for line in holdout.read_text().splitlines() if line.strip()]
    out = {"fingerprints": key, "holdout_images": score.get("count"), "teacher_holdout_top1": score["top1"],
           "student_holdout_top1": student, "student_lr": metrics.get("lr"),
           "margin": round(score["top1"] - student, 2) if student is not None else None,
           "holdout": f"baseline/{HOLDOUT}", "teacher_trained_on_holdout": sum(h in seen for h in held)}
    write_json(path, out)
    return out


def verdict_line(result: dict[str, Any], guard: GuardSection) -> str:
    """The comparison in one sentence (the stop message, the warning and the report use it)."""
    seen = result.get("teacher_trained_on_holdout")
    return (f"teacher {result['teacher_holdout_top1']:.2f} % vs labels-only student {result['student_holdout_top1']:.2f} % "
            f"on the {result['holdout_images']} held-out labeled images ({result['holdout']}"
            + (f"; the teacher trained on {seen} of them, so its score is optimistic" if seen else "")
            + f"): {result['margin']:+.2f} points, the guard asks for at least {guard.min_margin:+g}")


def check_teacher(run_dir: Path, guard: GuardSection) -> dict[str, Any] | None:
    """Run the guard; raises a one-line UserError when the teacher is not clearly better and not allowed."""
    if not guard.enabled:
        return None
    result = compare(run_dir)
    if result is None or result.get("margin") is None:
        return None
    line = verdict_line(result, guard)
    if result["margin"] >= guard.min_margin:
        log.info("teacher guard: passed: %s", line)
        return result
    advice = ("train the teacher longer (its Global.epochs in Pipeline.teacher.overrides) or on more labeled data "
              "(data.teacher_labeled), or give it a bigger network")
    if guard.allow_weak_teacher or result.get("allowed"):  # allowed once for these two stages: stays allowed
        log.warning("teacher guard: WEAK TEACHER, going on as allowed: %s", line)
        if not result.get("allowed"):
            write_json(run_dir / GUARD, {**result, "allowed": True})
        return {**result, "allowed": True}
    raise UserError(f"teacher guard: the teacher is not clearly better than the labels-only student: {line}. "
                    f"Distilling from it would teach the student its mistakes: {advice}; or pass "
                    "--allow-weak-teacher (Pipeline.guard.allow_weak_teacher: true) to go on anyway")
