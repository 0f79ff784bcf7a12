"""`ssld label` then `ssld select` end to end with a real config, and the teacher of a DistillationModel config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.configs import LABEL_OPS, label_config
from helpers.fashion_mnist import write_fmnist_list

from ssld.cli import main
from ssld.config import load_config
from ssld.config.schema import ModelSpec
from ssld.data import ImageListDataset, build_transform, read_list
from ssld.data.store import SoftLabelStore
from ssld.mining.teacher import load_teacher
from ssld.models import build_model, create_model, save_safetensors
from ssld.utils.io import sha256_file


def _config(tmp_path: Path, arch: dict) -> Path:
    return label_config(tmp_path / "cfg.yaml", arch, batch_size=8)


def test_label_then_select_from_the_command_line(tmp_path: Path, capsys) -> None:
    lst = write_fmnist_list(tmp_path, 40)
    cfg = _config(tmp_path, {"name": "cifar_resnet_tiny", "class_num": 10})
    weights = tmp_path / "teacher.safetensors"
    model = create_model(ModelSpec(name="cifar_resnet_tiny"), 10)
    save_safetensors(model.state_dict(), weights)
    store = tmp_path / "store"
    args = ["label", "--list", str(lst), "--root", str(tmp_path), "-c", str(cfg), "--weights", str(weights),
            "--out", str(store), "--topk", "3", "--shard-size", "16", "--batch-size", "8"]
    assert main(args) == 0
    assert "labeled 40 images" in capsys.readouterr().out
    s = SoftLabelStore.open(store)
    m = s.manifest
    assert m["teacher"] == "cifar_resnet_tiny" and m["weights_sha256"] == sha256_file(weights)
    assert m["source_sha256"] == sha256_file(lst) and m["transform"] == LABEL_OPS and m["k"] == 3 and m["complete"]
    assert s.paths[0] == "img/00000.png" and len(s) == 40
    ds = ImageListDataset(read_list(lst, tmp_path), build_transform(LABEL_OPS))
    with torch.no_grad():
        probs = model.eval()(torch.stack([ds[i]["image"] for i in range(40)])).softmax(-1).numpy()
    np.testing.assert_array_equal(s.topk_idx[:, 0], probs.argmax(1))
    assert main(args[:-6] + ["--topk", "5", "--shard-size", "16"]) == 2  # same --out, different run
    assert "different labeling run" in capsys.readouterr().err
    sel = tmp_path / "selected.txt"
    assert main(["select", "--store", str(store), "--k", "2", "--out", str(sel)]) == 0
    lines = sel.read_text().split()
    stats = json.loads((tmp_path / "select_stats.json").read_text())
    assert len(lines) == stats["total"] == int(np.minimum(np.bincount(probs.argmax(1), minlength=10), 2).sum())
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    assert main(["label", "--list", str(empty), *args[3:-8], "--out", str(tmp_path / "e")]) == 2
    assert "no images" in capsys.readouterr().err


def test_teacher_of_a_distillation_config_from_its_checkpoint(tmp_path: Path) -> None:
    arch = {"name": "DistillationModel", "class_num": 10, "freeze_params_list": [True, False],
            "models": [{"Teacher": {"name": "cifar_resnet_tiny"}}, {"Student": {"name": "cifar_resnet8"}}]}
    cfg = load_config(_config(tmp_path, arch))
    full = build_model(cfg.Arch)
    ckpt = tmp_path / "latest.pt"
    torch.save({"model": full.state_dict(), "epoch": 3}, ckpt)
    teacher = load_teacher(cfg, str(ckpt))
    assert teacher.name == "Teacher" and teacher.model_name == "cifar_resnet_tiny" and not teacher.model.training
    x = torch.randn(4, 3, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(teacher.model(x), full.models["Teacher"].eval()(x))


def test_faiss_loader_chatter_is_hidden_unless_verbose() -> None:
    """faiss logs each instruction set it fails to load (a ModuleNotFoundError line) at INFO; users saw it."""
    import logging

    from ssld.cli import _setup_logging

    faiss_log = logging.getLogger("faiss.loader")
    logging.getLogger("faiss").setLevel(logging.NOTSET)
    try:
        _setup_logging(verbose=False)
        assert logging.getLogger("faiss").level == logging.WARNING  # whatever the root level (INFO in the CLI)
        assert not faiss_log.isEnabledFor(logging.INFO) and faiss_log.isEnabledFor(logging.WARNING)
        logging.getLogger("faiss").setLevel(logging.NOTSET)
        _setup_logging(verbose=True)
        assert logging.getLogger("faiss").level == logging.NOTSET  # -v: faiss follows the root level again
    finally:
        logging.getLogger("faiss").setLevel(logging.NOTSET)


def test_dedup_options_reach_the_thresholds() -> None:
    """Every threshold option of ``ssld dedup`` lands in the field of its name (``--knn`` in ``k``)."""
    from ssld.cli import build_parser
    from ssld.mining.rules import BOUNDS, option_names, thresholds_from

    args = build_parser().parse_args(["dedup", "--pool", "p", "--ref", "r", "--root", ".", "-c", "c", "--out", "o",
                                      "--align-min", "0.7", "--align-ratio", "4", "--align-small-min", "0.9",
                                      "--sift-align-gate", "0.2", "--knn", "7", "--sim-min", "0.8",
                                      "--colour-de", "1.5", "--hue-min", "0.1"])
    th = thresholds_from(vars(args))
    assert (th.align_min, th.align_ratio, th.align_small_min, th.sift_align_gate, th.k, th.sim_min, th.colour_de,
            th.hue_min) == (0.7, 4.0, 0.9, 0.2, 7, 0.8, 1.5, 0.1)
    assert set(option_names()) <= set(vars(args))  # every threshold has its option...
    assert set(BOUNDS) == set(option_names())  # ...and its range


def test_pipeline_dedup_options_are_checked_by_name_and_type() -> None:
    """``Pipeline.dedup.options`` use ``ssld dedup``'s option names; a wrong name or value is one line."""
    from ssld.errors import UserError
    from ssld.pipeline.mining_stages import dedup_options

    th, extra = dedup_options({"knn": 8, "sim_min": "0.85", "align_ratio": 4, "batch_size": 64})
    assert (th.k, th.sim_min, th.align_ratio, extra) == (8, 0.85, 4.0, {"batch_size": 64})
    with pytest.raises(UserError, match=r"^Pipeline.dedup.options.sim_mni: unknown dedup option \(known: "):
        dedup_options({"sim_mni": 0.9})
    with pytest.raises(UserError, match=r"^Pipeline.dedup.options.knn: must be an integer, got 2.5$"):
        dedup_options({"knn": 2.5})
    with pytest.raises(UserError, match=r"^Pipeline.dedup.options.hash_max: must be an integer, got 'ten'$"):
        dedup_options({"hash_max": "ten"})
    with pytest.raises(UserError, match=r"^Pipeline.dedup.options.hue_min: must be between 0 and 1, got 2$"):
        dedup_options({"hue_min": 2})  # the same ranges as ssld dedup's options
    with pytest.raises(UserError, match=r"^Pipeline.dedup.options.knn: must be at least 1, got 0$"):
        dedup_options({"knn": 0})
