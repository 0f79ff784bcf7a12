"""The eval stage: every model of the run, its stage's last weights, on the val set — the numbers the report uses.

Nothing is picked on val: each model is its stage's final ``student.safetensors`` (written from the last
checkpoint), evaluated once with its own config's Eval transform. ``results.json`` records, for each number,
the weights file and its sha256, the training list size and the step count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ssld.pipeline.config import PipelineConfig
from ssld.pipeline.runner import Stage, StageContext, StageResult
from ssld.pipeline.shared import data_lists
from ssld.pipeline.training import WEIGHTS, evaluate_weights, percent
from ssld.utils.io import sha256_file, write_json

RESULTS = "results.json"


def evaluate_fixres(cfg: Any, weights: Path) -> dict[str, Any]:
    """A FixRes model on val at its test resolution (its config's ``FixRes.test_size``)."""
    from ssld.engine.fixres import evaluate_at, resolved
    from ssld.models.infer import load_infer_model
    from ssld.utils.device import resolve_device

    model = load_infer_model(cfg.Arch, str(weights)).to(resolve_device(cfg.Global.device))
    result = evaluate_at(model, cfg, resolved(cfg).test_size)
    return {**result, "top1": percent(result["top1"]), "top5": percent(result["top5"])}


def eval_stage(p: PipelineConfig, models: tuple[str, ...]) -> Stage:
    batch_size = p.pipeline.eval.batch_size

    def run(ctx: StageContext) -> StageResult:
        from ssld.config import load_config
        image_root, data_dir = data_lists(ctx)
        results: dict[str, dict] = {}
        for name in models:
            stage_dir = ctx.stage_dir(name)
            cfg = load_config(stage_dir / "config.yaml")
            weights = stage_dir / WEIGHTS
            if name == "fixres":
                score = evaluate_fixres(cfg, weights)
            else:
                score = evaluate_weights(cfg, weights, str(data_dir / "val.txt"), image_root, batch_size)
            upstream = ctx.upstream[name].get("metrics", {})
            arch = cfg.Arch
            model = arch.model_specs()[arch.infer_model_name].name if arch.is_distillation else arch.name
            results[name] = {
                "top1": score["top1"], "top5": score.get("top5"), "val_images": score.get("count"),
                "model": model, "train_images": upstream.get("train_images"), "steps": upstream.get("steps"),
                "epochs": upstream.get("epochs"), "lr": upstream.get("lr"),
                "loss": [next(iter(e)) for e in cfg.Loss.Train],
                "weights": f"{name}/{WEIGHTS}", "weights_sha256": sha256_file(weights),
                "wall_time_s": ctx.upstream[name].get("wall_time_s"),
            }
        write_json(ctx.dir / RESULTS, results)
        metrics = {f"{name}_top1": r["top1"] for name, r in results.items()}
        best = next(n for n in ("fixres", "finetune", "distill") if n in results)
        if "baseline" in results and best in results:
            metrics["gain_vs_baseline"] = round(results[best]["top1"] - results["baseline"]["top1"], 2)
        return StageResult(metrics, [RESULTS])

    deps = ("data", *models)
    return Stage("eval", run, deps=deps, settings={"batch_size": batch_size, "models": list(models)},
                 key_metric="gain_vs_baseline" if "baseline" in models else f"{models[-1]}_top1")
