"""``train(cfg)``: the job a training config describes, chosen here and nowhere else.

``FixRes.enabled`` selects the FixRes finetune (:func:`ssld.engine.fixres.run_fixres`); any other config is
supervised or distillation training (:func:`ssld.engine.trainer.train_model`). Both run the engine's training
loop, so resume, AMP, DDP and ``metrics.jsonl`` behave the same.
"""

from __future__ import annotations

from typing import Any

from ssld.config.schema import SSLDConfig
from ssld.engine.fixres import fixres_enabled, run_fixres
from ssld.engine.trainer import train_model


def train(cfg: SSLDConfig) -> dict[str, Any]:
    """Run the config's job and return its report (``train_report.json``, or ``fixres_report.json``)."""
    if fixres_enabled(cfg):
        return run_fixres(cfg)
    return train_model(cfg)
