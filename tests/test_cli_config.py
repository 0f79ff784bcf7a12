"""Bad input through the CLI: each mistake is one stderr line naming file/line/key, exit code 2, nothing written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from helpers.cli import run_cli
from helpers.configs import supervised_config, write_config

from ssld.cli import main


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    """A tiny list-file dataset (two real PNGs are enough: every case fails before reading images)."""
    from PIL import Image

    root = tmp_path / "data"
    (root / "img").mkdir(parents=True)
    for i in range(2):
        Image.new("RGB", (28, 28), (i * 100, 0, 0)).save(root / "img" / f"{i}.png")
    (root / "train_labeled.txt").write_text("img/0.png 0\nimg/1.png 1\n")
    (root / "val.txt").write_text("img/0.png 0\n")
    return root


def _yaml(tmp_path: Path, cfg: dict) -> Path:
    return write_config(tmp_path / "cfg.yaml", cfg)


def _missing_config(tmp_path: Path, data: Path) -> tuple[list[str], str]:
    return ["train", "-c", str(tmp_path / "nope.yaml")], "nope.yaml: config file not found"


def _syntax_error(tmp_path: Path, data: Path) -> tuple[list[str], str]:
    text = yaml.safe_dump(supervised_config(data, tmp_path / "out"), sort_keys=False)
    text = text.replace("Arch:\n", "Arch:\n  name: [unclosed\n", 1)
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return ["train", "-c", str(path)], "YAML syntax error"


def _unknown_key(tmp_path: Path, data: Path) -> tuple[list[str], str]:
    cfg = supervised_config(data, tmp_path / "out")
    cfg["Global"]["epochz"] = 3
    return ["train", "-c", str(_yaml(tmp_path, cfg))], "Global.epochz: unknown key 'epochz'; did you mean 'epochs'?"


def _unknown_model(tmp_path: Path, data: Path) -> tuple[list[str], str]:
    cfg = supervised_config(data, tmp_path / "out")
    cfg["Arch"]["name"] = "cifar_resnet88"
    return ["train", "-c", str(_yaml(tmp_path, cfg))], "Arch.name: unknown model 'cifar_resnet88'; did you mean"


def _wrong_type(tmp_path: Path, data: Path) -> tuple[list[str], str]:
    cfg = supervised_config(data, tmp_path / "out")
    cfg["Global"]["epochs"] = "many"
    return ["train", "-c", str(_yaml(tmp_path, cfg))], "Global.epochs: "


def _missing_list(tmp_path: Path, data: Path) -> tuple[list[str], str]:
    cfg = supervised_config(data, tmp_path / "out")
    cfg["DataLoader"]["Train"]["dataset"]["cls_label_path"] = str(data / "absent.txt")
    return ["train", "-c", str(_yaml(tmp_path, cfg))], "DataLoader.Train.dataset.cls_label_path: list file not found"


def _missing_root(tmp_path: Path, data: Path) -> tuple[list[str], str]:
    cfg = supervised_config(data, tmp_path / "out")
    cfg["DataLoader"]["Eval"]["dataset"]["image_root"] = str(tmp_path / "no_root")
    return ["train", "-c", str(_yaml(tmp_path, cfg))], "DataLoader.Eval.dataset.image_root: image root not found"


def _bad_label(tmp_path: Path, data: Path) -> tuple[list[str], str]:
    (data / "train_labeled.txt").write_text("img/0.png 0\nimg/1.png one\n")
    cfg = supervised_config(data, tmp_path / "out")
    return ["train", "-c", str(_yaml(tmp_path, cfg))], "train_labeled.txt:2: label 'one' is not an integer"


def _loss_pair(tmp_path: Path, data: Path) -> tuple[list[str], str]:
    cfg = supervised_config(data, tmp_path / "out")
    cfg["Arch"] = {"name": "DistillationModel", "class_num": 10, "freeze_params_list": [True, False],
                   "models": [{"Teacher": {"name": "cifar_resnet8"}}, {"Student": {"name": "cifar_resnet8"}}]}
    cfg["Loss"]["Train"] = [{"DistillationDMLLoss": {"model_name_pairs": [["Student", "Teachr"]]}}]
    return ["train", "-c", str(_yaml(tmp_path, cfg))], "Loss.Train[0]"


def _class_mismatch(tmp_path: Path, data: Path) -> tuple[list[str], str]:
    cfg = supervised_config(data, tmp_path / "out")
    cfg["Arch"] = {"name": "DistillationModel", "class_num": 10, "freeze_params_list": [True, False],
                   "models": [{"Teacher": {"name": "cifar_resnet8", "class_num": 100}},
                              {"Student": {"name": "cifar_resnet8"}}]}
    cfg["Loss"]["Train"] = [{"DistillationDMLLoss": {"model_name_pairs": [["Student", "Teacher"]]}}]
    return ["train", "-c", str(_yaml(tmp_path, cfg))], "Arch.models"


def _bad_override(tmp_path: Path, data: Path) -> tuple[list[str], str]:
    cfg = supervised_config(data, tmp_path / "out")
    return ["train", "-c", str(_yaml(tmp_path, cfg)), "-o", "Optimizer.lr.learning_rate=-1"], \
        "Optimizer.lr.learning_rate"


def _missing_checkpoint(tmp_path: Path, data: Path) -> tuple[list[str], str]:
    cfg = supervised_config(data, tmp_path / "out", checkpoints=str(tmp_path / "gone.pt"))
    return ["train", "-c", str(_yaml(tmp_path, cfg))], "Global.checkpoints: checkpoint"


def _checkpoint_of_another_model(tmp_path: Path, data: Path) -> tuple[list[str], str]:
    import torch

    ckpt = tmp_path / "other.pt"
    torch.save({"model": {"head.weight": torch.zeros(2, 2)}, "step": 5}, ckpt)
    cfg = supervised_config(data, tmp_path / "out", checkpoints=str(ckpt))
    return ["train", "-c", str(_yaml(tmp_path, cfg))], "other.pt does not fit the config's model: "


def _eval_missing_weights(tmp_path: Path, data: Path) -> tuple[list[str], str]:
    cfg = supervised_config(data, tmp_path / "out")
    return ["eval", "-c", str(_yaml(tmp_path, cfg)), "--weights", str(tmp_path / "w.safetensors")], "w.safetensors"


CASES: list[Callable[[Path, Path], tuple[list[str], str]]] = [
    _missing_config, _syntax_error, _unknown_key, _unknown_model, _wrong_type, _missing_list, _missing_root,
    _bad_label, _loss_pair, _class_mismatch, _bad_override, _missing_checkpoint, _checkpoint_of_another_model,
    _eval_missing_weights,
]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__.lstrip("_") for c in CASES])
def test_bad_input_is_one_line_exit_2_nothing_written(case: Callable, tmp_path: Path, data: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    argv, expected = case(tmp_path, data)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("ssld: error: ")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    assert expected in errors[0], errors[0]
    assert not (tmp_path / "out").exists()


def test_syntax_error_names_the_line(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture) -> None:
    argv, _ = _syntax_error(tmp_path, data)
    text = Path(argv[-1]).read_text().splitlines()
    assert main(argv) == 2
    err = capsys.readouterr().err
    line = text.index("  name: [unclosed") + 1
    assert f"bad.yaml:{line}:" in err or f"bad.yaml:{line + 1}:" in err, err


def test_real_process_prints_one_line_and_exits_2(tmp_path: Path, data: Path) -> None:
    cfg = supervised_config(data, tmp_path / "out")
    cfg["Arch"]["name"] = "cifar_resnet88"
    res = run_cli("train", "-c", str(_yaml(tmp_path, cfg)))
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [res.stderr.strip()] and res.stderr.startswith("ssld: error: ")
    assert not (tmp_path / "out").exists()


def test_partial_torchrun_environment_is_one_line(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = supervised_config(data, tmp_path / "out")
    for key, value in {"WORLD_SIZE": "2", "RANK": "0", "MASTER_PORT": "29500"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    assert main(["train", "-c", str(_yaml(tmp_path, cfg))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ssld: error: distributed launch:") and "MASTER_ADDR" in err[0]
    assert not (tmp_path / "out").exists()
