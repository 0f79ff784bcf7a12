"""``ssld.distill`` and ``ssld.train``: ssld's training engine on your own ``nn.Module``s and torch Datasets.

No YAML: the arguments become the config sections a YAML file would give (``Global``, ``AMP``, ``Optimizer``,
``Loss``; :mod:`ssld.api.settings`) and the models, data and loss are handed to the engine as ``RunParts``
(:func:`ssld.engine.run_setup.setup_run`). Checkpoints, exact resume, AMP, DDP under torchrun, ``metrics.jsonl``
and TensorBoard therefore behave as they do for ``ssld train -c X.yaml``.
"""

from __future__ import annotations

import atexit
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ssld.api.settings import argument_error, build_config
from ssld.errors import UserError

TEACHER, STUDENT = "Teacher", "Student"
# short names of the distillation losses (any registered loss name also works)
DISTILL_LOSSES = {
    "dml": "DistillationDMLLoss", "jsd": "DistillationJSDLoss", "kl": "DistillationKLDivLoss",
    "soft_ce": "DistillationCELoss", "dkd": "DistillationDKDLoss", "dist": "DistillationDISTLoss",
    "skd": "DistillationSKDLoss", "wsl": "DistillationWSLLoss",
}
SINGLE_LOSSES = {"ce": "CELoss"}

Data = torch.utils.data.Dataset | torch.utils.data.DataLoader
LossArg = str | nn.Module | list[dict[str, Any]]


@dataclass(frozen=True)
class TrainResult:
    """What a run returns: the trained model, its final metrics and where its files are."""

    model: nn.Module  # the trained student (or single model), unwrapped, on the run's device
    top1: float | None  # last evaluation on ``val`` (None without ``val``)
    top5: float | None
    best_top1: float | None
    epochs: int
    steps: int  # iterations in all, a resumed run's included
    img_s: float  # training throughput of this call
    out_dir: Path
    weights: Path  # student.safetensors: the inference model's weights alone
    checkpoint: Path  # checkpoints/latest.pt: ``resume=`` continues from it at the exact step
    metrics: Path  # metrics.jsonl
    report: dict[str, Any]  # train_report.json


class ModuleLoss(nn.Module):
    """A user's loss module in the engine's form. Distillation: ``loss(student_logits, teacher_logits, labels)``;
    single model: ``loss(logits, labels)``. A tensor result is the loss; a dict must hold ``"loss"`` (its other
    entries are logged as parts)."""

    def __init__(self, loss: nn.Module, distillation: bool) -> None:
        super().__init__()
        self.loss, self.distillation = loss, distillation

    def forward(self, outputs: Any, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.distillation:
            value = self.loss(outputs[STUDENT], outputs[TEACHER], labels)
        else:
            value = self.loss(outputs, labels)
        if isinstance(value, dict):
            if "loss" not in value:
                raise UserError(f"loss: {type(self.loss).__name__} returned a dict without a 'loss' entry")
            return value
        return {"loss": value}


def _loss_entries(fn: str, loss: str | list[dict[str, Any]], options: dict[str, Any] | None, ce_weight: float,
                  distillation: bool) -> list[dict[str, Any]]:
    """The PaddleClas-form loss list of a named loss (or the list given), checked."""
    from ssld.losses import LOSSES, validate_loss_list

    if isinstance(loss, list):
        if ce_weight or options:
            raise UserError(f"ssld.{fn}: ce_weight and loss_options apply to a loss name; add the entries to the "
                            "loss list instead")
        entries = loss
    else:
        names = DISTILL_LOSSES if distillation else SINGLE_LOSSES
        name = names.get(loss.lower(), loss)
        if name not in LOSSES:
            raise UserError(f"ssld.{fn}: loss: unknown {loss!r} (short names: {', '.join(names)}; or any registered "
                            "loss name, a loss list, or an nn.Module)")
        opts = dict(options or {})
        if distillation and getattr(LOSSES[name], "distillation", False):
            opts.setdefault("model_name_pairs", [[STUDENT, TEACHER]])
        entries = [{name: opts}]
        if ce_weight:
            entries.append({"DistillationGTCELoss": {"weight": ce_weight, "model_names": [STUDENT]}})
    try:
        validate_loss_list(entries, [STUDENT, TEACHER] if distillation else None)
    except ValueError as e:
        raise UserError(f"ssld.{fn}: loss{e if str(e).startswith('[') else ': ' + str(e)}") from None
    return entries


def _loss_module(fn: str, loss: LossArg, options: dict[str, Any] | None, ce_weight: float,
                 distillation: bool) -> tuple[nn.Module, list[dict[str, Any]] | None]:
    """The loss module and, for named losses, its config entries."""
    from ssld.losses import Loss, build_loss
    from ssld.losses.combined import CombinedLoss

    if isinstance(loss, Loss):  # one of ssld's loss classes, constructed by the caller
        return CombinedLoss([type(loss).__name__], [1.0], [loss]), None
    if isinstance(loss, nn.Module):
        if ce_weight or options:
            raise UserError(f"ssld.{fn}: ce_weight and loss_options apply to named losses, not to an nn.Module loss")
        return ModuleLoss(loss, distillation), None
    if not isinstance(loss, (str, list)):
        raise UserError(f"ssld.{fn}: loss: expected a loss name, a loss list or an nn.Module, got "
                        f"{type(loss).__name__}")
    entries = _loss_entries(fn, loss, options, ce_weight, distillation)
    return build_loss(entries), entries


def _paths_of(data: Data, paths: Sequence[str] | None, fn: str) -> list[str]:
    """Each item's image path, for the store lookup: ``paths``, or the dataset's ``samples``/``imgs``
    (torchvision ImageFolder, ssld's ImageListDataset)."""
    if paths is not None:
        return [str(p) for p in paths]
    dataset = data.dataset if isinstance(data, torch.utils.data.DataLoader) else data
    samples = getattr(dataset, "samples", None) or getattr(dataset, "imgs", None)
    if samples is None:
        raise UserError(f"ssld.{fn}: soft_labels: the store is looked up by image path; pass paths=[...] (one per "
                        f"item of train) or a dataset with .samples ({type(dataset).__name__} has none)")
    return [str(getattr(s, "path", None) or s[0]) for s in samples]


class StoreTargets:
    """Dense teacher probabilities of training items by dataset index, from a soft-label store."""

    def __init__(self, store: Any, rows: Any) -> None:
        self.store, self.rows = store, rows

    def __call__(self, index: torch.Tensor) -> torch.Tensor:
        import numpy as np

        from ssld.data.soft_targets import dense_probs

        out = []
        for i in index.tolist():
            row = int(self.rows[i])
            if self.store.probs is not None:
                out.append(np.asarray(self.store.probs[row], dtype=np.float32))
            else:
                out.append(dense_probs(self.store.topk_idx[row], self.store.topk_prob[row], self.store.num_classes))
        return torch.from_numpy(np.stack(out))


def _store_targets(fn: str, store_dir: str | Path, data: Data, paths: Sequence[str] | None, image_root: str,
                   classes: int | None) -> StoreTargets:
    from ssld.data.soft_targets import store_rows
    from ssld.data.store import SoftLabelStore

    if not Path(store_dir).is_dir():
        raise UserError(f"ssld.{fn}: soft_labels: soft-label store not found: {store_dir} (write it with "
                        "`ssld label`)")
    try:
        store = SoftLabelStore.open(store_dir)
    except UserError as e:
        raise UserError(f"ssld.{fn}: soft_labels: {e}") from None
    if classes is not None and store.num_classes != classes:
        raise UserError(f"ssld.{fn}: soft_labels: {store_dir} has {store.num_classes} classes but the student "
                        f"predicts {classes}")
    all_paths = _paths_of(data, paths, fn)
    length = len(data.dataset if isinstance(data, torch.utils.data.DataLoader) else data)
    if len(all_paths) != length:
        raise UserError(f"ssld.{fn}: paths: {len(all_paths)} paths for {length} training items")
    return StoreTargets(store, store_rows(store, all_paths, image_root, where=f"ssld.{fn}: soft_labels"))


def _run(fn: str, model: nn.Module, loss_fn: nn.Module, cfg: Any, train: Data, val: Data | None,
         batch_size: int, num_workers: int, offline: Any = None, targets: StoreTargets | None = None) -> TrainResult:
    """Hand the model, loaders and loss to the engine's run setup and train."""
    from ssld.data.torch_data import torch_loader
    from ssld.engine.run_setup import RunData, RunParts, setup_run
    from ssld.engine.trainer import run_training

    seed = cfg.Global.seed

    def data() -> RunData:
        loader, sampler = torch_loader(train, train=True, seed=seed, batch_size=batch_size, num_workers=num_workers,
                                       where="train", targets=targets)
        eval_loader = None
        if val is not None and cfg.Global.eval_during_train:
            eval_loader = torch_loader(val, train=False, seed=seed, batch_size=batch_size, num_workers=num_workers,
                                       where="val")[0]
        return RunData(loader, sampler, eval_loader, loader.batch_size, sampler.n, lambda i: f"item {i} of train")

    try:
        run = setup_run(cfg, RunParts(model, data, loss_fn, offline))
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            atexit.register(_end_process_group)
        report = run_training(run)
    except UserError as e:
        raise argument_error(fn, str(e).removeprefix(f"ssld.{fn}: ")) from None
    out = Path(cfg.Global.output_dir)
    return TrainResult(
        model=run.tm.student, top1=report.get("top1"), top5=report.get("top5"), best_top1=report.get("best_top1"),
        epochs=report["epochs"], steps=report["steps"], img_s=report["img_s"], out_dir=out,
        weights=out / "student.safetensors", checkpoint=out / "checkpoints" / "latest.pt",
        metrics=out / "metrics.jsonl", report=report)


def _end_process_group() -> None:
    """At exit, end the process group a torchrun launch started for the run (torch warns when it is left up)."""
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _class_name(model: nn.Module | None) -> str:
    return type(model).__name__ if model is not None else "none"


def distill(
    teacher: nn.Module | None, student: nn.Module, *, train: Data, val: Data | None = None,
    loss: LossArg = "dml", loss_options: dict[str, Any] | None = None, ce_weight: float = 0.0,
    soft_labels: str | Path | None = None, paths: Sequence[str] | None = None, image_root: str = ".",
    teacher_bn_mode: str = "train", epochs: int = 1, lr: float = 0.1, batch_size: int = 64,
    optimizer: str = "sgd", momentum: float = 0.9, weight_decay: float = 1e-4, schedule: str = "cosine",
    warmup_epochs: float = 0.0, min_lr: float = 0.0, amp: bool | str = False, device: str = "auto", seed: int = 0,
    num_workers: int = 0, out_dir: str | Path = "./output", resume: bool | str | Path = False,
    tensorboard: bool = False, log_interval: int = 20, options: dict[str, Any] | None = None,
) -> TrainResult:
    """Distil ``teacher`` (frozen, run under ``no_grad``) into ``student`` on ``train``; evaluate on ``val``.

    ``train``/``val``: map-style Datasets of ``(image, label)`` (label -1: unlabeled, which the distillation
    loss still uses) or DataLoaders over them. ``loss``: a short name (``dml`` symmetric KL, the reference's
    "JS divergence"; ``jsd`` true Jensen-Shannon; ``kl``, ``soft_ce``, ``dkd``, ``dist``, ``skd``, ``wsl``) or any
    registered name with ``loss_options`` (e.g. ``{"T": 4}``), a PaddleClas loss list, or an ``nn.Module`` called
    as ``loss(student_logits, teacher_logits, labels)``. ``ce_weight`` adds cross-entropy with the labels.
    ``soft_labels``: a store written by ``ssld label``; the teacher then never runs (``teacher`` may be None) and
    items are matched by path (``paths``, or the dataset's ``samples``, relative to ``image_root``).
    ``resume``: True continues from ``out_dir``'s latest checkpoint when there is one; a path resumes that one.
    ``options``: further config keys, e.g. ``{"Global": {"ema": True}}``.
    """
    from ssld.engine.offline_teacher import OfflineTeacher
    from ssld.models.distillation import DistillationModel, num_classes_of

    fn = "distill"
    if teacher is None and soft_labels is None:
        raise UserError(f"ssld.{fn}: teacher: None needs soft_labels (a store written by `ssld label`)")
    loss_fn, entries = _loss_module(fn, loss, loss_options, ce_weight, distillation=True)
    classes = num_classes_of(student)
    arch = {"name": "DistillationModel", "class_num": classes or 1000, "infer_model_name": STUDENT,
            "teacher_bn_mode": teacher_bn_mode,
            "models": [{TEACHER: {"name": _class_name(teacher) if soft_labels is None else f"store:{soft_labels}"}},
                       {STUDENT: {"name": _class_name(student)}}], "freeze_params_list": [True, False]}
    cfg = build_config(fn, arch, entries, evaluate=val is not None, out_dir=out_dir, epochs=epochs, lr=lr,
                       optimizer=optimizer, momentum=momentum, weight_decay=weight_decay, schedule=schedule,
                       warmup_epochs=warmup_epochs, min_lr=min_lr, amp=amp, device=device, seed=seed, resume=resume,
                       tensorboard=tensorboard, log_interval=log_interval, options=options)
    offline, targets = None, None
    if soft_labels is not None:
        targets = _store_targets(fn, soft_labels, train, paths, image_root, classes)
        offline = OfflineTeacher(TEACHER, str(soft_labels))
        models: dict[str, nn.Module] = {STUDENT: student}
    else:
        models = {TEACHER: teacher, STUDENT: student}
    try:
        model = DistillationModel(models, [TEACHER] if soft_labels is None else [], STUDENT, teacher_bn_mode)
    except ValueError as e:
        raise UserError(f"ssld.{fn}: teacher, student: {e}") from None
    return _run(fn, model, loss_fn, cfg, train, val, batch_size, num_workers, offline, targets)


def train(
    model: nn.Module, *, train: Data, val: Data | None = None, loss: LossArg = "ce",
    loss_options: dict[str, Any] | None = None, epochs: int = 1, lr: float = 0.1, batch_size: int = 64,
    optimizer: str = "sgd", momentum: float = 0.9, weight_decay: float = 1e-4, schedule: str = "cosine",
    warmup_epochs: float = 0.0, min_lr: float = 0.0, amp: bool | str = False, device: str = "auto", seed: int = 0,
    num_workers: int = 0, out_dir: str | Path = "./output", resume: bool | str | Path = False,
    tensorboard: bool = False, log_interval: int = 20, options: dict[str, Any] | None = None,
) -> TrainResult:
    """Train a single ``model`` on ``train`` (e.g. the teacher); the arguments are those of :func:`distill`.

    ``loss``: ``ce`` (cross-entropy; ``loss_options={"epsilon": 0.1}`` smooths labels; unlabeled items are
    skipped), any registered single-model loss, a PaddleClas loss list, or an ``nn.Module`` called as
    ``loss(logits, labels)`` (labels are -1 for unlabeled items: ``nn.CrossEntropyLoss(ignore_index=-1)``).
    """
    from ssld.models.distillation import num_classes_of

    fn = "train"
    loss_fn, entries = _loss_module(fn, loss, loss_options, 0.0, distillation=False)
    arch = {"name": _class_name(model), "class_num": num_classes_of(model) or 1000}
    cfg = build_config(fn, arch, entries, evaluate=val is not None, out_dir=out_dir, epochs=epochs, lr=lr,
                       optimizer=optimizer, momentum=momentum, weight_decay=weight_decay, schedule=schedule,
                       warmup_epochs=warmup_epochs, min_lr=min_lr, amp=amp, device=device, seed=seed, resume=resume,
                       tensorboard=tensorboard, log_interval=log_interval, options=options)
    return _run(fn, model, loss_fn, cfg, train, val, batch_size, num_workers)
