"""Fashion-MNIST export: real PNGs with the right labels, list files, idempotence, bad input."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ssld.cli import main
from ssld.data import read_list
from ssld.data.fashion_mnist import (
    CLASSES,
    DEFAULT_IDX_DIR,
    export,
    find_idx_files,
    read_idx,
)
from ssld.errors import UserError

LISTS = ("train_labeled.txt", "unlabeled.txt", "unlabeled_truth.txt", "val.txt", "train_full.txt")


def _idx(path: Path, arr: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


@pytest.fixture
def tiny_idx(tmp_path: Path) -> Path:
    """A raw (uncompressed) IDX set: 10 train images per class, 4 test per class; pixel value encodes the index."""
    d = tmp_path / "idx"
    d.mkdir()
    for split, per in (("train", 10), ("t10k", 4)):
        labels = np.tile(np.arange(10), per)
        images = np.zeros((len(labels), 28, 28), np.uint8)
        images[:, 0, 0] = np.arange(len(labels))
        images[:, 1, :] = labels[:, None] * 20
        _idx(d / f"{split}-images-idx3-ubyte", images, gz=False)
        _idx(d / f"{split}-labels-idx1-ubyte", labels, gz=False)
    return d


def _check_pngs_match_labels(out: Path, name: str) -> list[tuple[str, int]]:
    samples = read_list(out / name, out)
    for s in samples:
        px = np.asarray(Image.open(s.path))
        assert px.shape == (28, 28) and px[1, 0] == s.label * 20, s
    return [(Path(s.path).relative_to(out).as_posix(), s.label) for s in samples]


def test_export_tiny_idx(tiny_idx: Path, tmp_path: Path) -> None:
    out = tmp_path / "fm"
    meta = export(out, labeled_per_class=3, seed=1, idx_dir=tiny_idx, pool_size=50, val_size=20)
    assert meta["counts"] == {"train_labeled": 30, "unlabeled": 50, "val": 20, "train_full": 80}
    labeled = _check_pngs_match_labels(out, "train_labeled.txt")
    assert np.bincount([lab for _, lab in labeled]).tolist() == [3] * 10
    val = _check_pngs_match_labels(out, "val.txt")
    assert np.bincount([lab for _, lab in val]).tolist() == [2] * 10
    truth = _check_pngs_match_labels(out, "unlabeled_truth.txt")
    unl = read_list(out / "unlabeled.txt", out)
    assert [s.label for s in unl] == [-1] * 50
    assert [Path(s.path).relative_to(out).as_posix() for s in unl] == [p for p, _ in truth]
    assert not {p for p, _ in labeled} & {p for p, _ in truth}
    assert sorted(_check_pngs_match_labels(out, "train_full.txt")) == sorted(labeled + truth)
    assert (out / "labels.txt").read_text().splitlines() == list(CLASSES)
    assert len(list((out / "images" / "train").iterdir())) == 80
    assert json.loads((out / "meta.json").read_text())["params"]["pool_size"] == 50


def test_export_is_seeded_and_idempotent(tiny_idx: Path, tmp_path: Path) -> None:
    a = export(tmp_path / "a", 2, seed=0, idx_dir=tiny_idx)
    first = (tmp_path / "a" / "train_labeled.txt").read_text()
    stamp = (tmp_path / "a" / "train_labeled.txt").stat().st_mtime_ns
    assert export(tmp_path / "a", 2, seed=0, idx_dir=tiny_idx) == a
    assert (tmp_path / "a" / "train_labeled.txt").stat().st_mtime_ns == stamp  # not rewritten
    export(tmp_path / "a", 2, seed=1, idx_dir=tiny_idx)
    assert (tmp_path / "a" / "train_labeled.txt").read_text() != first
    assert a["counts"] == {"train_labeled": 20, "unlabeled": 80, "val": 40, "train_full": 100}


def test_killed_export_is_not_complete(tiny_idx: Path, tmp_path: Path) -> None:
    export(tmp_path / "a", 2, idx_dir=tiny_idx)
    (tmp_path / "a" / "meta.json").unlink()
    (tmp_path / "a" / "val.txt").write_text("")
    export(tmp_path / "a", 2, idx_dir=tiny_idx)
    assert len(read_list(tmp_path / "a" / "val.txt", tmp_path / "a")) == 40


def test_bad_input(tiny_idx: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"^Fashion-MNIST IDX files not found in .*nope: run `apt-get install -y "
                                        r"dataset-fashion-mnist` or pass --idx-dir$"):
        export(tmp_path / "o", 2, idx_dir=tmp_path / "nope")
    with pytest.raises(UserError, match="--labeled-per-class"):
        export(tmp_path / "o", 0, idx_dir=tiny_idx)
    with pytest.raises(UserError, match="--pool-size: 500 is more than the 80"):
        export(tmp_path / "o", 2, idx_dir=tiny_idx, pool_size=500)
    assert not (tmp_path / "o" / "meta.json").exists()
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in tiny_idx.iterdir():
        (broken / f.name).write_bytes(f.read_bytes()[:3])
    with pytest.raises(UserError, match="cannot read IDX file"):
        export(tmp_path / "o", 2, idx_dir=broken)


def test_export_modules_do_not_import_torch() -> None:
    code = "import sys, ssld.data.fashion_mnist, ssld.data.lists; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_cli_exit_codes(tiny_idx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fm"
    assert main(["data", "fashion-mnist", "--out", str(out), "--labeled-per-class", "1", "--idx-dir",
                 str(tiny_idx), "--val-size", "10"]) == 0
    assert "train_labeled 10" in capsys.readouterr().out
    (out / "images" / "train" / "00000.png").write_bytes(b"")
    write = out / "mixed.txt"
    write.write_text("images/train/00000.png 0\nimages/train/00001.png\n")
    assert main(["data", "check-list", str(write), "--root", str(out)]) == 1
    text = capsys.readouterr().out
    assert "2 images, 1 labeled, 1 unlabeled" in text and "unreadable: 1" in text
    assert main(["data", "fashion-mnist", "--out", str(out), "--labeled-per-class", "1", "--idx-dir",
                 str(tmp_path / "none")]) == 2


@pytest.mark.skipif(not Path(DEFAULT_IDX_DIR).is_dir(), reason="dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_small_pool(tmp_path: Path) -> None:
    files = find_idx_files()
    train_y, test_y = read_idx(files["train_y"]), read_idx(files["test_y"])
    assert read_idx(files["train_x"]).shape == (60000, 28, 28) and len(train_y) == 60000
    out = tmp_path / "fm"
    export(out, labeled_per_class=2, seed=0, pool_size=30, val_size=20)
    for name in LISTS:
        for s in read_list(out / name, out):
            img = Image.open(s.path)
            assert img.size == (28, 28)
            idx = int(Path(s.path).stem)
            if s.label >= 0:
                assert (train_y if "/train/" in s.path else test_y)[idx] == s.label
    assert len(read_list(out / "val.txt", out)) == 20


def test_teacher_extra_images_are_outside_the_labeled_set_and_the_pool(tiny_idx: Path, tmp_path: Path) -> None:
    out = tmp_path / "fm"
    plain = export(tmp_path / "plain", labeled_per_class=3, seed=1, idx_dir=tiny_idx, pool_size=20)
    meta = export(out, labeled_per_class=3, seed=1, idx_dir=tiny_idx, pool_size=20, teacher_extra_per_class=2)
    assert meta["counts"] == {**plain["counts"], "teacher_extra": 20}
    for name in ("train_labeled.txt", "unlabeled.txt"):  # the student's data does not change
        assert (out / name).read_text() == (tmp_path / "plain" / name).read_text()
    teacher = _check_pngs_match_labels(out, "train_teacher.txt")
    labeled = _check_pngs_match_labels(out, "train_labeled.txt")
    pool = {p for p, _ in _check_pngs_match_labels(out, "unlabeled_truth.txt")}
    extra = [t for t in teacher if t not in labeled]
    assert set(labeled) <= set(teacher) and len(extra) == 20 and not {p for p, _ in extra} & pool
    assert np.bincount([lab for _, lab in extra]).tolist() == [2] * 10
    with pytest.raises(UserError, match="teacher_extra_per_class: 8 per class is more than"):
        export(tmp_path / "x", labeled_per_class=3, seed=1, idx_dir=tiny_idx, pool_size=20, teacher_extra_per_class=8)
