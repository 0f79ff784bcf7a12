"""Mining stages: soft-label the pool with the teacher, dedup it against val, select the top-k per class.

They run the same code as ``ssld label``, ``ssld dedup`` and ``ssld select`` (in-process), with the run's lists
and the teacher stage's config and weights. One teacher pass over the pool: label stores each image's pooled
embedding beside its soft labels, dedup reads them (``--store``) instead of running the teacher again, and
select ranks only the images dedup kept (``--keep``). Label resumes its own shards after a kill.
"""

from __future__ import annotations

from pathlib import Path

from ssld.pipeline.config import PipelineConfig
from ssld.pipeline.runner import Stage, StageContext, StageResult
from ssld.pipeline.shared import data_lists, invoke
from ssld.pipeline.training import WEIGHTS, count_lines

CLEAN_POOL = "kept.txt"
SELECTED = "selected.txt"


def dedup_stage(p: PipelineConfig) -> Stage:
    sec = p.pipeline.dedup

    def run(ctx: StageContext) -> StageResult:
        teacher = ctx.stage_dir("teacher")
        argv = ["dedup", "--pool", str(ctx.stage_dir("data") / "unlabeled.txt"),
                "--ref", str(ctx.stage_dir("data") / "val.txt"), "--root", data_lists(ctx)[0],
                "-c", str(teacher / "config.yaml"), "--weights", str(teacher / WEIGHTS), "--out", str(ctx.dir),
                "--store", str(ctx.stage_dir("label") / "store")]
        for key, value in sec.options.items():
            flag = "--" + key.replace("_", "-")
            argv += [flag] if value is True else ([] if value is False else [flag, str(value)])
        invoke(argv)
        pool = count_lines(ctx.stage_dir("data") / "unlabeled.txt")
        clean = count_lines(ctx.dir / CLEAN_POOL)
        return StageResult({"pool": pool, "clean_pool": clean, "removed": pool - clean, "pairs_image": "dedup/pairs.png",
                            "removed_list": "dedup/removed.csv"}, [CLEAN_POOL])

    return Stage("dedup", run, deps=("data", "teacher", "label"), settings=sec.model_dump(), key_metric="removed")


def label_with_teacher(ctx: StageContext, p: PipelineConfig, image_list: Path, store: Path,
                       embed: bool = False) -> None:
    """Soft-label ``image_list`` with the teacher stage's network into ``store`` (``ssld label`` with the
    ``label`` stage's settings; resumes its shards after a kill); ``embed`` also stores pooled embeddings."""
    sec, teacher = p.pipeline.label, ctx.stage_dir("teacher")
    invoke(["label", "--list", str(image_list), "--root", data_lists(ctx)[0], "-c", str(teacher / "config.yaml"),
            "--weights", str(teacher / WEIGHTS), "--out", str(store), "--topk", str(sec.topk),
            "--batch-size", str(sec.batch_size), "--shard-size", str(sec.shard_size)]
           + ([] if embed else ["--no-embed"]))


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
        import json

        store = str(ctx.stage_dir("label") / "store")
        common = ["--store", store, "--k", str(sec.k), "--min-score", str(sec.min_score)]
        common += ["--keep", str(ctx.stage_dir("dedup") / CLEAN_POOL)] if dedup else []
        common += ["--multi-label"] if sec.multi_class else []
        invoke(["select", *common, "--out", str(ctx.dir / SELECTED)])
        # the teacher's class of each selected image, for the analysis-only precision against hidden labels
        invoke(["select", *common, "--out", str(ctx.dir / "analysis" / "pseudo_labels.txt"), "--assign-label"])
        stats = json.loads((ctx.dir / "select_stats.json").read_text())
        precision = truth_precision(ctx.dir / "analysis" / "pseudo_labels.txt",
                                    ctx.stage_dir("data") / "unlabeled_truth.txt")
        metrics = {"selected": count_lines(ctx.dir / SELECTED), "k": sec.k,
                   "classes_short_of_k": stats.get("classes_short_of_k", []),
                   "teacher_precision_on_selected": precision}
        return StageResult(metrics, [SELECTED])

    deps = ("data", "label", "dedup") if dedup else ("data", "label")
    return Stage("select", run, deps=deps, settings=sec.model_dump(), key_metric="selected")
