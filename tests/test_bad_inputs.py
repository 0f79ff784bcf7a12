"""Bad input, tried as a new user would: every case ends in one ``ssld: error:`` line (exit 2) naming the file,
line, config key or option and the rejected value, or in a counted skip; never a traceback, never half-written
output. Training, labeling and evaluation run in a child process (``python -m ssld``); config and option
mistakes run through ``ssld.cli.main`` in process (they fail before any work)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers.configs import EVAL_OPS, NORMALIZE, PAD_CROP_OPS, write_config
from PIL import Image

from ssld.cli import main
from ssld.config import load_config
from ssld.data import build_dataset, build_transform
from ssld.data.batched import batched_form

PIL_OPS: list[Any] = [{"DecodeImage": {"to_rgb": True}}, {"RandomCrop": {"size": 28, "padding": 2}},
                      {"RandAugment": {}}, NORMALIZE]


def _png(path: Path, h: int, w: int, seed: int) -> str:
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    return path.name


def _dataset(root: Path, tiny: bool = True, broken: bool = True, size: tuple[int, int] = (28, 28)) -> Path:
    """12 images of ``size`` (labels 0..9), plus a 1x1 and a 5x3 PNG and a file that is not an image."""
    root.mkdir(parents=True, exist_ok=True)
    lines = [f"{_png(root / f'img{i}.png', *size, i)} {i % 10}" for i in range(12)]
    if tiny:
        lines += [f"{_png(root / 'tiny1x1.png', 1, 1, 50)} 1", f"{_png(root / 'tiny5x3.png', 3, 5, 51)} 2"]
    if broken:
        (root / "broken.png").write_bytes(b"not a png")
        lines.append("broken.png 3")
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    (root / "val.txt").write_text("\n".join(lines[:4] + lines[12:]) + "\n")
    return root


def _split(root: Path, list_name: str, ops: list[Any], cache: bool = False, train: bool = True) -> dict[str, Any]:
    return {"dataset": {"name": "ImageNetDataset", "image_root": str(root), "cls_label_path": str(root / list_name),
                        "cache_images": cache, "transform_ops": ops},
            "sampler": {"batch_size": 4, "drop_last": False, "shuffle": train},
            "loader": {"num_workers": 0}}


def _config(tmp: Path, root: Path, train_ops: list[Any] = PAD_CROP_OPS, cache: bool = False,
            name: str = "cfg.yaml") -> Path:
    cfg = {"Global": {"output_dir": str(tmp / "out"), "epochs": 1, "image_shape": [3, 28, 28], "seed": 0,
                      "device": "cpu", "log_interval": 1},
           "Arch": {"name": "cifar_resnet8x0_25", "class_num": 10},
           "Loss": {"Train": [{"CELoss": {"weight": 1.0}}]},
           "Optimizer": {"name": "Momentum", "momentum": 0.9, "lr": {"name": "Cosine", "learning_rate": 0.05}},
           "DataLoader": {"Train": _split(root, "train.txt", train_ops, cache),
                          "Eval": _split(root, "val.txt", EVAL_OPS, train=False)}}
    return write_config(tmp / name, cfg)


def _one_error_line(stderr: str, *needles: str) -> str:
    """The single ``ssld: error:`` line of ``stderr`` (and no traceback), containing every needle."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("ssld: error:")]
    assert len(errors) == 1, stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def _main_error(capsys: pytest.CaptureFixture[str], argv: list[str], *needles: str) -> str:
    """Run ``ssld ARGV`` in process: exit code 2 and one stderr line (nothing else) holding every needle."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    return _one_error_line(err, *needles)


# --- images of any size ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("ops", [PAD_CROP_OPS, PIL_OPS, EVAL_OPS], ids=["array", "pil", "no-crop"])
@pytest.mark.parametrize("hw", [(1, 1), (3, 5), (28, 28), (40, 30), (300, 2)])
def test_every_image_size_reaches_the_network_size(ops: list[Any], hw: tuple[int, int]) -> None:
    transform = build_transform(ops, fit_size=(28, 28))
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (*hw, 3), dtype=np.uint8))
    assert tuple(transform(img).shape) == (3, 28, 28)
    assert tuple(transform(np.asarray(img)).shape) == (3, 28, 28)  # cached images arrive as arrays


def test_images_of_the_network_size_pass_untouched() -> None:
    arr = np.random.default_rng(0).integers(0, 255, (28, 28, 3), dtype=np.uint8)
    plain = build_transform(EVAL_OPS)(arr)
    assert torch.equal(build_transform(EVAL_OPS, fit_size=(28, 28))(arr), plain)


def test_batched_path_scales_up_images_smaller_than_the_crop() -> None:
    """All-tiny cached images stack into one array and take the batched path, which must not fail either."""
    transform = build_transform(PAD_CROP_OPS, fit_size=(28, 28))
    batched = batched_form(transform)
    assert batched is not None
    stack = np.random.default_rng(0).integers(0, 255, (6, 3, 5, 3), dtype=np.uint8)
    out = batched(stack, 0, np.zeros(6, np.int64), np.arange(6))
    assert tuple(out.shape) == (6, 3, 28, 28) and torch.isfinite(out).all()
    fit = batched_form(build_transform(EVAL_OPS, fit_size=(28, 28)))
    assert fit is not None and tuple(fit(stack, 0, np.zeros(6, np.int64), np.arange(6)).shape) == (6, 3, 28, 28)


def test_cache_counts_decoded_and_unreadable_images_apart(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = _dataset(tmp_path / "data")
    cfg = load_config(_config(tmp_path, root, cache=True))
    with caplog.at_level(logging.INFO, logger="ssld.data"):
        build_dataset(cfg.DataLoader.Train, train=True, seed=0, fit_size=(28, 28), num_classes=10)
    line = next(r.getMessage() for r in caplog.records if "decoded into memory" in r.getMessage())
    assert "14 images decoded" in line and "1 unreadable" in line, line


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[str, str]:
    """``ssld ARGV`` in process; exit code 0 and no traceback; returns (stdout, stderr)."""
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in err
    return out, err


@pytest.mark.parametrize(("ops", "cache", "tiny"), [(PAD_CROP_OPS, True, True), (PIL_OPS, False, True),
                                                    (PAD_CROP_OPS, True, False)],
                         ids=["arrays-per-image", "pil-per-image", "batched-all-tiny"])
def test_train_takes_tiny_images_and_counts_the_unreadable_one(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              caplog: pytest.LogCaptureFixture, ops: list[Any],
                                                              cache: bool, tiny: bool) -> None:
    """A 1x1 and a 5x3 PNG among 28 px images train (cached arrays or PIL images, one by one); with every image
    5x3 the cache stacks and the batched path crops 28 px out of 5x3 images. The unreadable file is counted."""
    root = _dataset(tmp_path / "data", tiny=tiny, size=(28, 28) if tiny else (3, 5))
    with caplog.at_level(logging.INFO):
        out, _ = _run(capsys, ["train", "-c", str(_config(tmp_path, root, ops, cache)),
                               "-o", "Global.eval_during_train=false"])
    report = json.loads(out.splitlines()[0])
    assert report["skipped_images"] == 1  # broken.png, counted; the tiny ones trained
    assert "skipped 1 unreadable images" in caplog.text
    assert ("transform_ops run on whole batches" in caplog.text) == (cache and not tiny)
    assert (tmp_path / "out" / "student.safetensors").is_file()


def test_eval_and_label_take_tiny_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ssld.config.schema import ModelSpec
    from ssld.models import save_safetensors
    from ssld.models.factory import create_model

    root = _dataset(tmp_path / "data")
    cfg = _config(tmp_path, root)
    weights = tmp_path / "w.safetensors"
    save_safetensors(create_model(ModelSpec(name="cifar_resnet8x0_25"), 10).state_dict(), weights, {})
    out, _ = _run(capsys, ["eval", "-c", str(cfg), "--weights", str(weights)])
    assert "(6 images; 1 unreadable, skipped)" in out
    store = tmp_path / "store"
    out, _ = _run(capsys, ["label", "--list", str(root / "train.txt"), "--root", str(root), "-c", str(cfg),
                           "--weights", str(weights), "--out", str(store), "--workers", "0"])
    manifest = json.loads((store / "manifest.json").read_text())
    assert manifest["complete"] and manifest["count"] == 14
    assert [s["reason"] for s in manifest["skipped"]] == ["unreadable"]
    assert "skipped 1" in out


def test_a_labeling_run_that_fails_before_its_first_shard_leaves_no_store(tmp_path: Path) -> None:
    from ssld.data import ImageListDataset, Sample
    from ssld.mining.label import label

    root = _dataset(tmp_path / "data", tiny=False, broken=False)
    files = [str(root / f"img{i}.png") for i in range(4)]
    dataset = ImageListDataset([Sample(f, -1) for f in files], build_transform(EVAL_OPS))

    class Broken(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("boom")

    out = tmp_path / "store"
    with pytest.raises(RuntimeError, match="boom"):
        label(dataset, Broken(), out, paths=files, files=files, meta={"teacher": "t"}, num_classes=10,
              batch_size=2, workers=0)
    assert not out.exists()


@pytest.mark.parametrize("cache", [False, True], ids=["per-image", "cached"])
def test_a_list_of_only_unreadable_images_is_one_line_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], cache: bool) -> None:
    root = _dataset(tmp_path / "data", tiny=False)
    (root / "train.txt").write_text("broken.png 1\nmissing.png 2\n")
    check = _main_error if cache else _last_error  # per image, the epoch's skip warning comes first
    check(capsys, ["train", "-c", str(_config(tmp_path, root, cache=cache))],
          "DataLoader.Train.dataset: none of the 2", "broken.png")
    assert not (tmp_path / "out" / "checkpoints").exists() and not (tmp_path / "out" / "student.safetensors").exists()


def _last_error(capsys: pytest.CaptureFixture[str], argv: list[str], *needles: str) -> str:
    """Like ``_main_error`` where warnings (the epoch's skipped images) may come before the error line."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    return _one_error_line(err, *needles)


def test_output_paths_that_are_files_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _dataset(tmp_path / "data", tiny=False, broken=False)
    cfg = _config(tmp_path, root)
    (tmp_path / "afile").write_text("x")
    _main_error(capsys, ["train", "-c", str(cfg), "-o", f"Global.output_dir={tmp_path / 'afile'}"],
                f"Global.output_dir: {tmp_path / 'afile'} is a file, not a folder")
    _main_error(capsys, ["train", "-c", str(cfg), "-o", f"Global.output_dir={tmp_path / 'afile' / 'sub'}"],
                "cannot be created", "is a file")
    from ssld.config.schema import ModelSpec
    from ssld.models import save_safetensors
    from ssld.models.factory import create_model

    weights = tmp_path / "w.safetensors"
    save_safetensors(create_model(ModelSpec(name="cifar_resnet8x0_25"), 10).state_dict(), weights, {})
    _main_error(capsys, ["label", "--list", str(root / "train.txt"), "--root", str(root), "-c", str(cfg),
                         "--weights", str(weights), "--out", str(tmp_path / "afile")], str(tmp_path / "afile"))


def test_a_folder_given_as_a_list_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _dataset(tmp_path / "data", tiny=False, broken=False)
    _main_error(capsys, ["data", "check-list", str(root), "--root", str(root)], "is a directory, not a list file")


# --- labels out of range --------------------------------------------------------------------------------------


def _bad_label_data(tmp_path: Path, line: str) -> Path:
    root = _dataset(tmp_path / "data", tiny=False, broken=False)
    lines = (root / "train.txt").read_text().splitlines()[:4] + [line]
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    (root / "val.txt").write_text("\n".join(lines) + "\n")
    return root


def test_train_and_eval_refuse_a_label_at_or_above_class_num_before_any_work(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _bad_label_data(tmp_path, "img5.png 10")
    cfg = _config(tmp_path, root)
    _main_error(capsys, ["train", "-c", str(cfg)], f"{root / 'train.txt'}:5:", "label 10", "Arch.class_num 10")
    assert not (tmp_path / "out" / "checkpoints").exists()
    _main_error(capsys, ["eval", "-c", str(cfg), "--weights", str(tmp_path / "none.safetensors")],
                f"{root / 'val.txt'}:5:", "label 10", "Arch.class_num 10")


def test_check_reports_a_label_out_of_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _bad_label_data(tmp_path, "img5.png 12")
    code = main(["check", "-c", str(_config(tmp_path, root))])
    err = capsys.readouterr().err
    assert code == 2
    _one_error_line(err, "train.txt:5:", "label 12", "Arch.class_num 10")


@pytest.mark.parametrize(("line", "needles"), [("img5.png 10", ("label 10", "--class-num 10")),
                                               ("img5.png -2", ("label -2", "negative")),
                                               ("img5.png x", ("label 'x'", "not an integer")),
                                               ("img5.png 1 2", ("3 fields",))])
def test_check_list_reports_a_bad_label_with_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           line: str, needles: tuple[str, ...]) -> None:
    root = _bad_label_data(tmp_path, line)
    _main_error(capsys, ["data", "check-list", str(root / "train.txt"), "--root", str(root), "--class-num", "10"],
                f"{root / 'train.txt'}:5:", *needles)


def test_an_image_folder_with_more_classes_than_class_num_is_refused(tmp_path: Path) -> None:
    for c in range(3):
        (tmp_path / "folder" / f"c{c}").mkdir(parents=True)
        _png(tmp_path / "folder" / f"c{c}" / "a.png", 28, 28, c)
    cfg = load_config(_config(tmp_path, _dataset(tmp_path / "data", tiny=False, broken=False)))
    split = cfg.DataLoader.Train.model_copy(deep=True)
    split.dataset.name, split.dataset.image_root = "ImageFolder", str(tmp_path / "folder")
    from ssld.errors import UserError

    with pytest.raises(UserError, match="3 class folders, more than Arch.class_num 2"):
        build_dataset(split, train=True, seed=0, num_classes=2)


# --- config mutants -------------------------------------------------------------------------------------------


def _write(path: Path, content: str | bytes | None) -> Path:
    """``content`` as text or bytes, or a directory when it is None."""
    if content is None:
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


@pytest.mark.parametrize(("name", "make", "needles"), [
    ("recursive.yaml", lambda b: b + "Mining:\n  a: &a [*a]\n", ("recursive YAML alias",)),
    ("seed.yaml", lambda b: b.replace("seed: 0", "seed: " + str(10**30)), ("Global.seed:", str(10**30))),
    ("seed_neg.yaml", lambda b: b.replace("seed: 0", "seed: -1"), ("Global.seed:", "got -1")),
    ("list.yaml", lambda b: "- Global\n- Arch\n", ("a config must be a mapping", "got a list")),
    ("section_list.yaml", lambda b: b.replace("Loss:\n  Train:", "Loss_:\n  Train:") + "Loss: [1, 2]\n",
     ("Loss: Input should be a valid dictionary", "got [1, 2]")),
    ("epochs.yaml", lambda b: b.replace("epochs: 1", "epochs: " + str(10**30)), ("Global.epochs:", str(10**30))),
    ("nan_lr.yaml", lambda b: b.replace("learning_rate: 0.05", "learning_rate: .nan"),
     ("Optimizer.lr.learning_rate:", "finite", "got nan")),
    ("inf_momentum.yaml", lambda b: b.replace("momentum: 0.9", "momentum: .inf"), ("Optimizer.momentum", "got inf")),
    ("empty.yaml", lambda b: "", ("config file is empty",)),
    ("comments.yaml", lambda b: "# nothing here\n", ("config file is empty",)),
    ("binary.yaml", lambda b: bytes(range(256)) * 4, ("not a YAML text file", "UTF-8")),
    ("nul.yaml", lambda b: "Global:\n  seed: 1\x00\n", ("YAML syntax error",)),
    ("tabs.yaml", lambda b: b.replace("  epochs", "\tepochs"), (":3: YAML syntax error", "'\\t'")),
    ("deep.yaml", lambda b: "a: " + "[" * 5000 + "]" * 5000 + "\n", ("nested too deeply",)),
    ("dir.yaml", None, ("is a directory, not a config file",)),
])
def test_config_mutants_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, make: Any,
                                     needles: tuple[str, ...]) -> None:
    base = _config(tmp_path, _dataset(tmp_path / "data", tiny=False, broken=False)).read_text()
    path = _write(tmp_path / name, None if make is None else make(base))
    line = _main_error(capsys, ["check", "-c", str(path)], *needles)
    assert line.startswith(f"ssld: error: {path}")


def test_a_huge_seed_is_refused_by_train_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, _dataset(tmp_path / "data", tiny=False, broken=False))
    _main_error(capsys, ["train", "-c", str(cfg), "-o", f"Global.seed={10**30}"], "Global.seed", str(10**30))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("override", "needles"), [
    ("DataLoader.Train.dataset.transform_ops.1.Pad.padding=-1", ("transform_ops[1].Pad: padding", "got -1")),
    ("DataLoader.Train.dataset.transform_ops.2.RandomCrop.size=0", ("transform_ops[2].RandomCrop: size", "got 0")),
    ("DataLoader.Train.dataset.transform_ops.2.RandomCrop.size=[28]", ("RandomCrop: size", "got [28]")),
    ("DataLoader.Eval.dataset.transform_ops.1.NormalizeImage.std=[0,0,0]",
     ("DataLoader.Eval.dataset.transform_ops[1].NormalizeImage: std must not contain 0",)),
    ("Optimizer.momentum=-1", ("Optimizer.momentum:", "got -1")),
    ("Global.image_shape=[3,100000,100000]", ("Global.image_shape: height and width must be at most 8192",)),
])
def test_values_that_would_fail_inside_the_run_are_refused_up_front(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], override: str, needles: tuple[str, ...]) -> None:
    """Each of these used to end in a traceback from a DataLoader worker, the network or the optimizer."""
    cfg = _config(tmp_path, _dataset(tmp_path / "data", tiny=False, broken=False))
    _main_error(capsys, ["check", "-c", str(cfg), "-o", override], *needles)


def test_an_override_changes_only_the_place_it_names_not_a_yaml_alias_of_it(tmp_path: Path) -> None:
    cfg = _config(tmp_path, _dataset(tmp_path / "data", tiny=False, broken=False))
    text = cfg.read_text()
    assert "&" in text  # safe_dump wrote the shared NormalizeImage op once, as an anchor and an alias
    loaded = load_config(cfg, ["DataLoader.Eval.dataset.transform_ops.1.NormalizeImage.mean=[0.5,0.5,0.5]"])
    assert loaded.DataLoader.Eval.dataset.transform_ops[1]["NormalizeImage"]["mean"] == [0.5] * 3
    assert loaded.DataLoader.Train.dataset.transform_ops[4]["NormalizeImage"]["mean"] == [0.286] * 3


def test_a_16_bit_png_keeps_its_contrast(tmp_path: Path) -> None:
    from ssld.data import load_image

    ramp = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    img = np.asarray(load_image(str(tmp_path / "g16.png")))
    assert img.shape == (8, 8, 3) and img.min() == 0 and img.max() == 255
    assert np.array_equal(img[..., 0], (ramp >> 8).astype(np.uint8))  # not clipped to white above 255


def test_large_photographs_decode_reduced_with_their_full_size(tmp_path: Path) -> None:
    """``load_image_reduced``: a JPEG is decoded at a DCT scale, then box-reduced, its short (or long) side kept
    at least the size asked for; the full size is reported; small and broken files behave as ``load_image``."""
    from ssld.data import load_image, load_image_reduced

    rng = np.random.default_rng(0)
    big = Image.fromarray(rng.integers(0, 256, (900, 1200, 3), dtype=np.uint8))
    big.save(tmp_path / "big.jpg", quality=90)
    big.save(tmp_path / "big.png")
    for name in ("big.jpg", "big.png"):
        img, size = load_image_reduced(str(tmp_path / name), 128)
        assert size == (1200, 900) and img.mode == "RGB" and 128 <= min(img.size) < 256
    gray, size = load_image_reduced(str(tmp_path / "big.jpg"), 320, mode="L", long_side=True)
    assert gray.mode == "L" and 320 <= max(gray.size) < 640 and size == (1200, 900)
    Image.fromarray(rng.integers(0, 256, (100, 150, 3), dtype=np.uint8)).save(tmp_path / "small.png")
    small, size = load_image_reduced(str(tmp_path / "small.png"), 128)
    assert size == small.size == (150, 100)
    assert np.array_equal(np.asarray(small), np.asarray(load_image(str(tmp_path / "small.png"))))
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff truncated")
    assert load_image_reduced(str(tmp_path / "broken.jpg"), 128) is None
    assert load_image_reduced(str(tmp_path / "missing.jpg"), 128) is None


@pytest.mark.parametrize(("override", "needles"), [
    ("Global.epochs=abc", ("-o 'Global.epochs=abc': Global.epochs:", "got 'abc'")),
    ("Global.epoch=3", ("-o 'Global.epoch=3': Global.epoch: unknown key 'epoch'", "'epochs'")),
    ("Arch.name=resnt", ("-o 'Arch.name=resnt': Arch.name: unknown model 'resnt'",)),
    ("Global.seed=-4", ("-o 'Global.seed=-4': Global.seed:", "got -4")),
    ("Optimizer.lr=0.1", ("-o 'Optimizer.lr=0.1': Optimizer.lr:",)),
    ("Globl.epochs=3", ("-o 'Globl.epochs=3': Globl: unknown key 'Globl'",)),
    ("Loss.Train.0.CELoss.weight=-1", ("-o 'Loss.Train.0.CELoss.weight=-1': Loss.Train[0].CELoss.weight:",)),
    ("Loss.Train=[]", ("-o 'Loss.Train=[]': Loss.Train:",)),
])
def test_override_errors_cite_the_override_not_a_yaml_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           override: str, needles: tuple[str, ...]) -> None:
    cfg = _config(tmp_path, _dataset(tmp_path / "data", tiny=False, broken=False))
    line = _main_error(capsys, ["check", "-c", str(cfg), "-o", override], *needles)
    assert "cfg.yaml" not in line


def test_a_section_changed_by_an_override_cites_both(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, _dataset(tmp_path / "data", tiny=False, broken=False))
    line = next(i for i, t in enumerate(cfg.read_text().splitlines(), 1) if t.startswith("Arch:"))
    _main_error(capsys, ["check", "-c", str(cfg), "-o", "Arch.name=DistillationModel"],
                f"{cfg}:{line} (with -o 'Arch.name=DistillationModel'): Arch: DistillationModel needs 'models'")


def test_a_loss_option_in_the_file_cites_its_own_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, _dataset(tmp_path / "data", tiny=False, broken=False))
    text = cfg.read_text().replace("weight: 1.0", "weight: -2.0")
    cfg.write_text(text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "weight: -2.0" in t)
    _main_error(capsys, ["check", "-c", str(cfg)], f"{cfg}:{line}: Loss.Train[0].CELoss.weight:", "got -2")


@pytest.mark.parametrize("content", [b"", b"\x80\x02garbage", b"PK\x03\x04"], ids=["empty", "pickle", "zip"])
def test_a_broken_checkpoint_or_weights_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          content: bytes) -> None:
    cfg = _config(tmp_path, _dataset(tmp_path / "data", tiny=False, broken=False))
    bad = _write(tmp_path / "bad.pt", content)
    _main_error(capsys, ["train", "-c", str(cfg), "-o", f"Global.checkpoints={bad}"], "Global.checkpoints", "bad.pt")
    _main_error(capsys, ["eval", "-c", str(cfg), "--weights", str(bad)], "bad.pt")
    _main_error(capsys, ["predict", str(tmp_path / "data" / "img0.png"), "--torchscript", str(bad), "--image-size",
                         "28"], "--torchscript", "bad.pt")


def test_a_key_set_twice_in_the_file_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = _config(tmp_path, _dataset(tmp_path / "data", tiny=False, broken=False))
    text = cfg.read_text().replace("  epochs: 1\n", "  epochs: 1\n  epochs: 2\n")
    cfg.write_text(text)
    with caplog.at_level(logging.WARNING, logger="ssld.config"):
        assert load_config(cfg).Global.epochs == 2
    assert f"{cfg}:4: Global.epochs is set twice (also on line 3)" in caplog.text


def test_a_binary_list_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _dataset(tmp_path / "data", tiny=False, broken=False)
    _main_error(capsys, ["data", "check-list", str(root / "img0.png"), "--root", str(root)],
                "img0.png: not a text list file")


def test_a_key_from_the_file_still_cites_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, _dataset(tmp_path / "data", tiny=False, broken=False))
    cfg.write_text(cfg.read_text().replace("epochs: 1", "epochs: abc"))
    _main_error(capsys, ["check", "-c", str(cfg), "-o", "Global.seed=3"], f"{cfg}:3: Global.epochs:", "got 'abc'")


# --- numeric options ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "needles"), [
    (["select", "--store", "S", "--k", "3", "--out", "o.txt", "--min-score", "-1"],
     ("--min-score: must be between 0 and 1, got -1.0",)),
    (["select", "--store", "S", "--k", "3", "--out", "o.txt", "--min-score", "1.5"], ("--min-score", "got 1.5")),
    (["select", "--store", "S", "--k", "3", "--out", "o.txt", "--min-score", "nan"], ("--min-score", "got nan")),
    (["label", "--list", "l", "--root", ".", "-c", "c", "--out", "o", "--workers", "-1"],
     ("--workers: must be at least 0, got -1",)),
    (["label", "--list", "l", "--root", ".", "-c", "c", "--out", "o", "--batch-size", "0"], ("--batch-size",)),
    (["dedup", "--pool", "p", "--ref", "r", "--root", ".", "-c", "c", "--out", "o", "--sim-min", "2"],
     ("--sim-min: must be between -1 and 1, got 2.0",)),
    (["data", "fashion-mnist", "--out", "o", "--labeled-per-class", "0"], ("--labeled-per-class", "got 0")),
    (["data", "fashion-mnist", "--out", "o", "--labeled-per-class", "5", "--seed", "-1"], ("--seed", "got -1")),
    (["data", "check-list", "l.txt", "--root", ".", "--class-num", "0"], ("--class-num", "got 0")),
    (["pipeline", "-c", "p.yaml", "--seed", str(2**40)], ("--seed", str(2**40))),
    (["ablate", "-c", "a.yaml", "--seed", "-3"], ("--seed: must be between 0 and", "got -3")),
    (["predict", "x.png", "--onnx", "m.onnx", "--batch-size", "0"], ("--batch-size", "got 0")),
    (["eval", "-c", "c.yaml", "--weights", "w", "--image-size", "100000"], ("--image-size", "got 100000")),
    (["predict", "x.png", "--onnx", "m.onnx", "--image-size", "0"], ("--image-size", "got 0")),
])
def test_numeric_options_out_of_range_are_one_line(capsys: pytest.CaptureFixture[str], argv: list[str],
                                                   needles: tuple[str, ...]) -> None:
    _main_error(capsys, argv, *needles)
