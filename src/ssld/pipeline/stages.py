"""The SSLD stages: data → teacher → baseline → label → dedup → select → distill → finetune → eval → export → report.

Each function returns a :class:`Stage` whose settings (the stage's resolved pipeline section, the seed) and input
files (its training config) define its hash. Mining stages call the same code as ``ssld dedup/label/select``, so
the pipeline walks the path a user would walk by hand.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ssld.data.fashion_mnist import TEACHER_LIST
from ssld.errors import UserError
from ssld.pipeline.budget import (
    auto_epochs,
    budget_settings,
    distill_epochs,
    ssld_step_budget,
    teacher_epochs,
    validated,
)
from ssld.pipeline.config import PipelineConfig, TrainStage
from ssld.pipeline.fit import describe, fill_auto, fit_config, measure_images
from ssld.pipeline.guard import holds_out_from_teacher, teacher_train_list
from ssld.pipeline.mining_stages import (
    dedup_stage,
    label_stage,
    label_with_teacher,
    select_stage,
)
from ssld.pipeline.runner import Stage, StageContext, StageResult
from ssld.pipeline.shared import data_lists
from ssld.pipeline.training import (
    WEIGHTS,
    Lists,
    count_lines,
    frozen_model_index,
    percent,
    read_training_yaml,
    steps_per_epoch,
    train_config,
    write_stage_config,
)

log = logging.getLogger("ssld.pipeline")


def check_labels(list_path: Path, num_classes: int, what: str) -> dict[int, int]:
    """Per-class counts of a labeled list; one-line errors for an empty list or labels out of range."""
    counts: dict[int, int] = {}
    for lineno, line in enumerate(list_path.read_text().splitlines(), start=1):
        parts = line.split()
        if len(parts) == 2 and parts[1] != "-1":
            c = int(parts[1])
            if c >= num_classes:
                raise UserError(f"{list_path}:{lineno}: label {c} but Pipeline.num_classes is {num_classes}")
            counts[c] = counts.get(c, 0) + 1
    if not counts:
        raise UserError(f"{list_path}: the {what} set is empty; the pipeline needs labeled images")
    return counts


def data_stage(p: PipelineConfig) -> Stage:
    sec = p.pipeline.data
    num_classes = p.pipeline.num_classes

    def run(ctx: StageContext) -> StageResult:
        root = "."
        if sec.source == "fashion_mnist":
            from ssld.data.fashion_mnist import CLASSES, export

            if num_classes != len(CLASSES):
                raise UserError(f"Pipeline.num_classes: {num_classes}, but Fashion-MNIST has {len(CLASSES)} classes")
            export(ctx.dir, sec.labeled_per_class, seed=sec.seed, idx_dir=sec.idx_dir, val_size=sec.val_size,
                   pool_size=sec.pool_size, teacher_extra_per_class=sec.teacher_extra_per_class)
        else:
            from ssld.data import read_list, write_list

            root = str(Path(sec.image_root).resolve())
            lists = [("train_labeled", sec.labeled), ("unlabeled", sec.unlabeled), ("val", sec.val)]
            for name, src in lists + ([(Path(TEACHER_LIST).stem, sec.teacher_labeled)] if sec.teacher_labeled else []):
                samples = read_list(src, root)
                if name == "unlabeled":
                    samples = [s._replace(label=-1) for s in samples]
                write_list(ctx.dir / f"{name}.txt", samples, root=root)
        labeled = check_labels(ctx.dir / "train_labeled.txt", num_classes, "labeled")
        check_labels(ctx.dir / "val.txt", num_classes, "val")
        image = measure_images(ctx.dir / "train_labeled.txt", ctx.dir if root == "." else root)
        log.info("data: the labeled images are %s (%d measured%s)", describe(image), image["measured_images"],
                 "; sizes vary" if image["sizes_vary"] else "")
        metrics = {"labeled": sum(labeled.values()), "pool": count_lines(ctx.dir / "unlabeled.txt"),
                   "val": count_lines(ctx.dir / "val.txt"), "classes_in_labeled": len(labeled), "image_root": root,
                   "image": image}
        outputs = ["train_labeled.txt", "unlabeled.txt", "val.txt"]
        if sec.separate_teacher_set:
            metrics["teacher_labeled"] = sum(check_labels(ctx.dir / TEACHER_LIST, num_classes, "teacher").values())
            outputs.append(TEACHER_LIST)
        return StageResult(metrics, outputs)

    return Stage("data", run, settings=sec.model_dump(), key_metric="labeled")


def _train_stage_settings(p: PipelineConfig, sec: TrainStage, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {**sec.model_dump(exclude={"config"}), "seed": p.pipeline.seed, **(extra or {})}


def data_image(ctx: StageContext) -> dict[str, Any] | None:
    """The data stage's image measurement (None for a data stage recorded before it was measured)."""
    return ctx.upstream.get("data", {}).get("metrics", {}).get("image")


def _train(ctx: StageContext, p: PipelineConfig, sec: TrainStage, train_list: Path, raw: dict[str, Any]) -> StageResult:
    """Write the stage's config with the run's lists and train it; metrics name their source file."""
    raw = fit_config(raw, data_image(ctx), f"Pipeline.{ctx.name}", sec.config)
    image_root, data_dir = data_lists(ctx)
    lists = Lists(image_root, str(train_list), str(data_dir / "val.txt"))
    cfg = write_stage_config(raw, ctx.dir, lists, p.pipeline.seed, ctx.resume, sec.config)
    final = train_config(cfg)
    n = count_lines(train_list)
    metrics = {
        "val_top1_last_epoch": percent(final.get("top1")),
        "train_images": n,
        "epochs": cfg.Global.epochs,
        "steps": final.get("steps", steps_per_epoch(cfg, n) * cfg.Global.epochs),
        "lr": cfg.Optimizer.lr.learning_rate,
        "source": f"{ctx.name}/train_report.json",
    }
    return StageResult(metrics, [WEIGHTS])


def teacher_stage(p: PipelineConfig) -> Stage:
    sec = p.pipeline.teacher
    path = p.config_path(sec.config)

    auto = auto_epochs(p, sec)
    held_out = holds_out_from_teacher(p)

    def run(ctx: StageContext) -> StageResult:
        raw = read_training_yaml(path, sec.overrides, "Pipeline.teacher")
        own = p.pipeline.data.separate_teacher_set
        train_list = ctx.stage_dir("data") / (TEACHER_LIST if own else "train_labeled.txt")
        if held_out:  # the guard's holdout stays unseen by the teacher
            train_list = teacher_train_list(p, train_list, ctx.dir)
        image, data = data_image(ctx), ctx.upstream["data"]["metrics"]
        cfg = validated(fill_auto(raw, image, "Pipeline.teacher"), "Pipeline.teacher")
        n_teacher = count_lines(train_list)
        if auto:
            epochs = teacher_epochs(p, cfg, n_teacher, data["labeled"], data["pool"], image)
            raw.setdefault("Global", {})["epochs"] = epochs
            log.info("teacher: %d epochs over %d images (at least the labels-only student's steps; Pipeline.budget)",
                     epochs, n_teacher)
        elif not own and p.pipeline.baseline is not None and p.pipeline.baseline.enabled:
            steps = steps_per_epoch(cfg, n_teacher) * cfg.Global.epochs
            total = ssld_step_budget(p, data["labeled"], data["pool"], image)["total"]
            if steps < total:
                log.warning("notice: Pipeline.teacher: %d optimizer steps on the labeled images, the labels-only "
                            "student gets %d on the same images: the teacher may end up weaker than the student "
                            "(the teacher guard checks after the baseline); leave Global.epochs out of "
                            "Pipeline.teacher.overrides to give it the student's budget", steps, total)
        return _train(ctx, p, sec, train_list, raw)

    settings = _train_stage_settings(p, sec, {"auto_budget": budget_settings(p)} if auto else None)
    if held_out:  # which images the teacher leaves out: the baseline's split
        settings["guard_holdout"] = p.pipeline.baseline.holdout_fraction  # type: ignore[union-attr]
    inputs = [str(path)]
    if auto:  # the teacher's budget is the baseline's: distill + finetune configs
        inputs += [str(p.config_path(s.config)) for s in (p.pipeline.distill, p.pipeline.finetune) if s is not None]
    return Stage("teacher", run, deps=("data",), settings=settings, input_files=tuple(inputs),
                 key_metric="val_top1_last_epoch")


def distill_stage(p: PipelineConfig) -> Stage:
    """Student ← frozen teacher on labeled ∪ selected; the teacher network and weights come from the teacher
    stage, so changing the teacher in one place changes it everywhere."""
    sec = p.pipeline.distill
    path = p.config_path(sec.config)
    use_pool = p.pipeline.select.enabled
    deps = ("data", "teacher", "select") if use_pool else ("data", "teacher")
    offline = p.pipeline.label.model_dump() if sec.offline_teacher else None  # the store's labeling settings
    auto = auto_epochs(p, sec)

    def run(ctx: StageContext) -> StageResult:
        raw = read_training_yaml(path, sec.overrides, "Pipeline.distill")
        teacher_cfg = read_training_yaml(ctx.stage_dir("teacher") / "config.yaml", {}, "teacher/config.yaml")
        i, name = frozen_model_index(raw)
        spec = raw["Arch"]["models"][i][name]
        spec["name"] = teacher_cfg["Arch"]["name"]
        spec["kwargs"] = teacher_cfg["Arch"].get("kwargs") or {}
        spec["pretrained"] = str(ctx.stage_dir("teacher") / WEIGHTS)
        if raw["Arch"].get("pretrained_list"):
            raw["Arch"]["pretrained_list"][i] = spec["pretrained"]
        train_list = ctx.dir / "train.txt"
        text = (ctx.stage_dir("data") / "train_labeled.txt").read_text()
        if use_pool:
            text += (ctx.stage_dir("select") / "selected.txt").read_text()
        from ssld.utils.io import atomic_write_text

        atomic_write_text(train_list, text)
        if auto:
            data, image = ctx.upstream["data"]["metrics"], data_image(ctx)
            cfg = validated(fill_auto(read_training_yaml(path, sec.overrides, "Pipeline.distill"), image,
                                      "Pipeline.distill"), "Pipeline.distill")
            raw.setdefault("Global", {})["epochs"] = distill_epochs(p, cfg, data["labeled"], data["pool"])
        if sec.offline_teacher:
            dataset = raw.setdefault("DataLoader", {}).setdefault("Train", {}).setdefault("dataset", {})
            label_with_teacher(ctx, p, train_list, ctx.dir / "store")  # labeled + selected, eval mode
            dataset["soft_labels"] = str(ctx.dir / "store")
        return _train(ctx, p, sec, train_list, raw)

    extra = {"use_pool": use_pool, "offline_labeling": offline}
    if auto:
        extra["auto_budget"] = budget_settings(p)
    return Stage("distill", run, deps=deps, settings=_train_stage_settings(p, sec, extra),
                 input_files=(str(path),), key_metric="val_top1_last_epoch")


def finetune_stage(p: PipelineConfig) -> Stage:
    sec = p.pipeline.finetune
    assert sec is not None
    path = p.config_path(sec.config)

    def run(ctx: StageContext) -> StageResult:
        raw = read_training_yaml(path, sec.overrides, "Pipeline.finetune")
        raw.setdefault("Global", {})["pretrained_model"] = str(ctx.stage_dir("distill") / WEIGHTS)
        return _train(ctx, p, sec, ctx.stage_dir("data") / "train_labeled.txt", raw)

    return Stage("finetune", run, deps=("data", "distill"), settings=_train_stage_settings(p, sec),
                 input_files=(str(path),), key_metric="val_top1_last_epoch")


def fixres_stage(p: PipelineConfig, source: str) -> Stage:
    """The reference's "Fix strategy" on the final student: classifier-only finetune at 1.15x resolution."""
    sec = p.pipeline.fixres
    assert sec is not None
    path = p.config_path(sec.config)

    def run(ctx: StageContext) -> StageResult:
        from ssld.engine.fixres import run_fixres

        raw = read_training_yaml(path, sec.overrides, "Pipeline.fixres")
        raw.setdefault("Global", {})["pretrained_model"] = str(ctx.stage_dir(source) / WEIGHTS)
        raw = fit_config(raw, data_image(ctx), "Pipeline.fixres", sec.config)
        image_root, data_dir = data_lists(ctx)
        lists = Lists(image_root, str(data_dir / "train_labeled.txt"), str(data_dir / "val.txt"))
        cfg = write_stage_config(raw, ctx.dir, lists, p.pipeline.seed, False, sec.config)
        report = run_fixres(cfg)
        metrics = {"val_top1_last_epoch": percent(report.get("top1")), "test_size": report.get("test_size"),
                   "train_images": count_lines(data_dir / "train_labeled.txt"), "epochs": report.get("epochs"),
                   "source": "fixres/fixres_report.json"}
        return StageResult(metrics, [WEIGHTS])

    return Stage("fixres", run, deps=("data", source), settings={**_train_stage_settings(p, sec), "of": source},
                 input_files=(str(path),), key_metric="val_top1_last_epoch")


def export_stage(p: PipelineConfig, model_stage: str) -> Stage:
    sec = p.pipeline.export

    def run(ctx: StageContext) -> StageResult:
        cfg_path = ctx.stage_dir(model_stage) / "config.yaml"
        weights = ctx.stage_dir(model_stage) / WEIGHTS
        from ssld.config import load_config
        from ssld.deploy.export import PARITY_ATOL, export_model

        size = ctx.upstream[model_stage].get("metrics", {}).get("test_size")  # a FixRes model runs at its size
        result = export_model(load_config(cfg_path), weights, ctx.dir, list(sec.formats), image_size=size)
        if not result.ok:
            raise UserError(f"Pipeline.export: parity check failed (tolerance {PARITY_ATOL:g}); see "
                            f"{ctx.dir / 'export_report.json'}")
        outputs = sorted(str(f.relative_to(ctx.dir)) for f in ctx.dir.rglob("*")
                         if f.is_file() and f.name not in ("started.json", "done.json"))
        return StageResult({"formats": sec.formats, "model_stage": model_stage}, outputs)

    return Stage("export", run, deps=(model_stage,), settings={**sec.model_dump(), "of": model_stage})


def report_stage(p: PipelineConfig, deps: tuple[str, ...]) -> Stage:
    def run(ctx: StageContext) -> StageResult:
        from ssld.report.report import write_report

        path = write_report(ctx.run_dir, out_dir=ctx.dir)
        return StageResult({"report": str(path.relative_to(ctx.run_dir))})

    return Stage("report", run, deps=deps, settings={"name": p.pipeline.name})


def build_stages(p: PipelineConfig) -> list[Stage]:
    """The enabled stages of a resolved pipeline config, in order."""
    from ssld.pipeline.baseline import baseline_stage
    from ssld.pipeline.eval_stage import eval_stage

    pl = p.pipeline
    stages = [data_stage(p), teacher_stage(p)]
    if pl.baseline is not None and pl.baseline.enabled:
        stages.append(baseline_stage(p))
    if pl.select.enabled:
        stages.append(label_stage(p))  # the whole pool, once: dedup reads its embeddings from the store
        if pl.dedup.enabled:
            stages.append(dedup_stage(p))
        stages.append(select_stage(p))
    stages.append(distill_stage(p))
    if pl.finetune is not None and pl.finetune.enabled:
        stages.append(finetune_stage(p))
    if pl.fixres is not None and pl.fixres.enabled:
        stages.append(fixres_stage(p, stages[-1].name))
    models = [s.name for s in stages if s.name in ("teacher", "baseline", "distill", "finetune", "fixres")]
    stages.append(eval_stage(p, tuple(models)))
    if pl.export.enabled:
        stages.append(export_stage(p, models[-1]))
    if pl.report.enabled:
        stages.append(report_stage(p, ("eval",)))
    return stages
