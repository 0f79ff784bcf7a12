"""Mining stages: soft-label the pool with the teacher, dedup it against val, select the top-k per class.

They call the library functions ``ssld label``, ``ssld dedup`` and ``ssld select`` call
(:mod:`ssld.mining.jobs`), with the run's lists and the teacher stage's config and weights. One teacher pass over
the pool: label stores each image's pooled embedding beside its soft labels, dedup reads them (``store``) instead
of running the teacher again, and select ranks only the images dedup kept (``keep``). Label resumes its own shards
after a kill.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ssld.errors import UserError
from ssld.mining.rules import Thresholds, option_names, thresholds_from
from ssld.pipeline.config import PipelineConfig
from ssld.pipeline.runner import Stage, StageContext, StageResult
from ssld.pipeline.shared import data_lists
from ssld.pipeline.training import WEIGHTS, count_lines

CLEAN_POOL = "kept.txt"
SELECTED = "selected.txt"


_DEDUP_RUN_OPTIONS = ("batch_size", "workers", "pairs")


def dedup_options(options: dict[str, Any]) -> tuple[Thresholds, dict[str, Any]]:
    """``Pipeline.dedup.options`` (named as ``ssld dedup``'s options, ``knn`` for ``k``) as thresholds and the
    other arguments of :func:`ssld.mining.jobs.dedup_images`; an unknown name is a one-line error."""
    names = option_names()
    unknown = sorted(set(options) - set(names) - set(_DEDUP_RUN_OPTIONS))
    if unknown:
        raise UserError(f"Pipeline.dedup.options.{unknown[0]}: unknown dedup option "
                        f"(known: {', '.join(sorted([*names, *_DEDUP_RUN_OPTIONS]))})")
    return thresholds_from(options, "Pipeline.dedup.options."), {k: v for k, v in options.items()
                                                                  if k in _DEDUP_RUN_OPTIONS}


def _teacher_config(ctx: StageContext) -> tuple[Any, Path]:
    """The teacher stage's config (as it trained) and its weights file."""
    from ssld.config import load_config

    teacher = ctx.stage_dir("teacher")
    return load_config(teacher / "config.yaml"), teacher / WEIGHTS


def dedup_stage(p: PipelineConfig) -> Stage:
    sec = p.pipeline.dedup
    dedup_options(sec.options)  # an unknown option fails before any stage runs

    def run(ctx: StageContext) -> StageResult:
        from ssld.mining.jobs import dedup_images

        cfg, weights = _teacher_config(ctx)
        thresholds, extra = dedup_options(sec.options)
        dedup_images(ctx.stage_dir("data") / "unlabeled.txt", ctx.stage_dir("data") / "val.txt",
                     data_lists(ctx)[0], cfg, ctx.dir, weights=str(weights), store=ctx.stage_dir("label") / "store",
                     thresholds=thresholds, config_name=str(ctx.stage_dir("teacher") / "config.yaml"), **extra)
        pool = count_lines(ctx.stage_dir("data") / "unlabeled.txt")
        clean = count_lines(ctx.dir / CLEAN_POOL)
        return StageResult({"pool": pool, "clean_pool": clean, "removed": pool - clean, "pairs_image": "dedup/pairs.png",
                            "removed_list": "dedup/removed.csv"}, [CLEAN_POOL])

    return Stage("dedup", run, deps=("data", "teacher", "label"), settings=sec.model_dump(), key_metric="removed")


def label_with_teacher(ctx: StageContext, p: PipelineConfig, image_list: Path, store: Path,
                       embed: bool = False) -> None:
    """Soft-label ``image_list`` with the teacher stage's network into ``store`` (the ``label`` stage's settings;
    resumes its shards after a kill); ``embed`` also stores pooled embeddings."""
    from ssld.mining.jobs import label_images

    sec = p.pipeline.label
    cfg, weights = _teacher_config(ctx)
    label_images(image_list, data_lists(ctx)[0], cfg, store, weights=str(weights), topk=sec.topk, embed=embed,
                 batch_size=sec.batch_size, shard_size=sec.shard_size,
                 config_name=str(ctx.stage_dir("teacher") / "config.yaml"))


def label_stage(p: PipelineConfig) -> Stage:
    sec = p.pipeline.label
    dedup = p.pipeline.dedup.enabled

    def run(ctx: StageContext) -> StageResult:
        import json

        store = ctx.dir / "store"
        label_with_teacher(ctx, p, ctx.stage_dir("data") / "unlabeled.txt", store, embed=dedup)
        manifest = json.loads((store / "manifest.json").read_text())
        outputs = ["store/manifest.json", "store/topk_idx.npy", "store/topk_prob.npy", "store/paths.txt"]
        return StageResult({"labeled": manifest.get("count"), "skipped": len(manifest.get("skipped", []))},
                           outputs + (["store/embed.npy"] if manifest.get("embed") else []))

    # the whole pool is labeled (with embeddings when dedup runs): dedup and select read the store
    return Stage("label", run, deps=("data", "teacher"), settings={**sec.model_dump(), "pool": "all", "embed": dedup},
                 key_metric="labeled")


def truth_precision(selected: Path, truth: Path) -> float | None:
    """Share of selected images whose teacher class (a ``--assign-label`` list) matches the hidden label, in %.

    Only available where the data stage wrote ``unlabeled_truth.txt`` (Fashion-MNIST); analysis only.
    """
    if not truth.is_file() or not selected.is_file():
        return None
    labels = {}
    for line in truth.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            labels[parts[0]] = int(parts[1])
    pairs = [line.split() for line in selected.read_text().splitlines() if line.strip()]
    hits = [labels.get(path) == int(cls) for path, cls in pairs if path in labels]
    return round(100.0 * sum(hits) / len(hits), 2) if hits else None


def select_stage(p: PipelineConfig) -> Stage:
    sec = p.pipeline.select
    dedup = p.pipeline.dedup.enabled

    def run(ctx: StageContext) -> StageResult:
        from ssld.mining.jobs import select_images

        common = {"keep": ctx.stage_dir("dedup") / CLEAN_POOL if dedup else None, "min_score": sec.min_score,
                  "multi_label": sec.multi_class}
        store = ctx.stage_dir("label") / "store"
        stats = select_images(store, sec.k, ctx.dir / SELECTED, **common).stats
        # the teacher's class of each selected image, for the analysis-only precision against hidden labels
        select_images(store, sec.k, ctx.dir / "analysis" / "pseudo_labels.txt", assign_label=True, **common)
        precision = truth_precision(ctx.dir / "analysis" / "pseudo_labels.txt",
                                    ctx.stage_dir("data") / "unlabeled_truth.txt")
        metrics = {"selected": count_lines(ctx.dir / SELECTED), "k": sec.k,
                   "classes_short_of_k": stats.get("classes_short_of_k", []),
                   "teacher_precision_on_selected": precision}
        return StageResult(metrics, [SELECTED])

    deps = ("data", "label", "dedup") if dedup else ("data", "label")
    return Stage("select", run, deps=deps, settings=sec.model_dump(), key_metric="selected")
