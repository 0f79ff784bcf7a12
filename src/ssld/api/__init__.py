"""The Python API: ssld's distillation engine on your own ``nn.Module``s and torch Datasets, without YAML.

``distill(teacher, student, train=..., val=..., loss="dml", epochs=..., lr=..., out_dir=...) -> TrainResult`` and
``train(model, train=..., ...)`` run the same engine as ``ssld train -c X.yaml`` (checkpoints, exact resume, AMP,
DDP under torchrun, ``metrics.jsonl``, TensorBoard). ``label``, ``dedup`` and ``select`` are the mining steps on
lists of image paths (:mod:`ssld.mining.jobs`). See docs/python_api.md.
"""

from ssld.api.mining import dedup, label, select
from ssld.api.training import TrainResult, distill, train

__all__ = ["TrainResult", "dedup", "distill", "label", "select", "train"]
