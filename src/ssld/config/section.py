"""The base of every config section: PaddleClas keys ssld ignores (one notice each), unknown keys refused,
numbers written as arithmetic strings."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    model_validator,
)

# PaddleClas keys that are accepted and ignored (one notice each), by section.
IGNORED_KEYS: dict[str, set[str]] = {
    "Global": {
        "use_visualdl", "print_batch_step", "to_static", "use_dali", "save_inference_dir_", "video_dataset",
        "use_multilabel", "eval_mode", "retrieval_feature_from", "re_ranking", "use_sync_bn_", "update_freq",
    },
    "AMP": {"use_fp16_test", "use_promote"},
    "Arch": {"data_format"},
    # clip_grad: PaddleClas hands it to its optimizer class, which ignores it (its clipping is clip_norm)
    "Optimizer": {"multi_precision", "use_nesterov_", "clip_norm_", "clip_grad"},
    "loader": {"use_shared_memory"},
    "sampler": {"name"},
    "dataset": {"delimiter", "relabel", "backend"},
    "Infer": {"PostProcess", "batch_size", "infer_imgs", "transforms"},
    # PaddleClas's builder overwrites these two with the run's own values; so does ssld
    "lr": {"step_each_epoch", "epochs"},
}


class Section(BaseModel):
    """Base of every section: unknown keys are errors, except the PaddleClas ones listed in IGNORED_KEYS."""

    # inf and nan are never a sensible setting (an lr of .nan trains nothing); they fail validation
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)
    ignored_group: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _drop_ignored(cls, data: Any) -> Any:
        group = cls.ignored_group
        if isinstance(data, dict) and group:
            ignored = IGNORED_KEYS.get(group, set())
            dropped = sorted(k for k in data if k in ignored)
            if dropped:
                from ssld.config.notices import notice_ignored

                notice_ignored(group, dropped)
                data = {k: v for k, v in data.items() if k not in ignored}
        return data


def _coerce_number(v: Any) -> Any:
    """PaddleClas writes numbers such as ``1.0/255.0`` or ``1e-5`` as strings: evaluate simple arithmetic."""
    if isinstance(v, str):
        s = v.strip()
        if s and all(c in "0123456789.eE+-*/() " for c in s):
            try:
                return float(eval(s, {"__builtins__": {}}, {}))
            except (SyntaxError, ArithmeticError, TypeError, ValueError):  # not arithmetic after all
                return v
    return v
