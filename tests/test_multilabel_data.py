"""MultiLabelDataset lists: PaddleClas's line format, positive ratios, item labels, batches, and the PULC
attribute recipes' transform ops (Padv2, RandomCropImage, RandomErasing with arithmetic strings)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ssld.config.schema import DataSplitConfig
from ssld.data.dataset import collate
from ssld.data.loader import build_dataset
from ssld.data.multilabel import (
    MultiLabelListDataset,
    positive_ratio,
    random_targets,
    read_multilabel_list,
)
from ssld.data.transforms import build_transform
from ssld.errors import UserError


def _images(root: Path, names: list[str], size: tuple[int, int] = (12, 10)) -> None:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(root / name)


def _list(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "list.txt"
    p.write_text(text)
    return p


def test_reads_paddleclas_lines(tmp_path: Path) -> None:
    _images(tmp_path, ["a b.png", "c.png", "d.png"])
    lp = _list(tmp_path, "# comment\na b.png\t1,0,1\n\nc.png\t0,0,-1\nd.png 1,1,0\n")  # tab, spaces in paths
    samples, targets = read_multilabel_list(lp, tmp_path, 3)
    assert [Path(s.path).name for s in samples] == ["a b.png", "c.png", "d.png"]
    assert targets.tolist() == [[1, 0, 1], [0, 0, -1], [1, 1, 0]]
    assert [s.label for s in samples] == [0, 0, 0]


def test_all_unknown_row_is_an_unlabeled_sample(tmp_path: Path) -> None:
    _images(tmp_path, ["a.png"])
    samples, _ = read_multilabel_list(_list(tmp_path, "a.png\t-1,-1\n"), tmp_path, 2)
    assert samples[0].label == -1


@pytest.mark.parametrize(("text", "message"), [
    ("a.png\t1,0\n", "list.txt:1: 2 labels, but Arch.class_num is 3 (one label per class)"),
    ("a.png\t1,2,0\n", "list.txt:1: label 2 is not 0, 1 or -1"),
    ("a.png\t1,x,0\n", "list.txt:1: labels '1,x,0' are not comma-separated integers"),
    ("a.png\n", "list.txt:1: expected '<path><TAB><labels>'"),
    ("a.png\t1,0,0\t7\n", "list.txt:1: expected '<path><TAB><labels>'"),
])
def test_malformed_lines_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        read_multilabel_list(_list(tmp_path, text), tmp_path, 3)


def test_rows_must_agree_without_a_class_count(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="list.txt:2: 2 labels, but the first line has 3"):
        read_multilabel_list(_list(tmp_path, "a.png\t1,0,0\nb.png\t1,0\n"), tmp_path)


def test_positive_ratio_counts_known_entries() -> None:
    targets = np.array([[1, 0, -1], [0, 0, 1], [1, -1, -1], [1, 0, 0]], dtype=np.int8)
    assert positive_ratio(targets).tolist() == pytest.approx([3 / 4, 0 / 3, 1 / 2])
    zero_one = np.array([[1, 0], [0, 0], [1, 1]], dtype=np.int8)  # PaddleClas: the per-class mean of the labels
    assert positive_ratio(zero_one).tolist() == pytest.approx(zero_one.mean(0).tolist())


def test_items_and_batches_carry_targets_and_ratios(tmp_path: Path) -> None:
    _images(tmp_path, ["a.png", "b.png", "c.png"])
    samples, targets = read_multilabel_list(_list(tmp_path, "a.png\t1,0\nb.png\t0,1\nc.png\t1,-1\n"), tmp_path, 2)
    plain = MultiLabelListDataset(samples, targets, build_transform([]), label_ratio=False)
    assert plain[2]["label"].tolist() == [1.0, -1.0]
    ds = MultiLabelListDataset(samples, targets, build_transform([]), label_ratio=True)
    assert ds[0]["label"].flatten().tolist() == pytest.approx([1.0, 0.0, 2 / 3, 1 / 2])
    batch = collate([ds.load(0), ds.load(2)])
    assert batch["label"].shape == (2, 2, 2) and batch["label"].dtype == torch.float32
    assert batch["label"][:, 0].tolist() == [[1.0, 0.0], [1.0, -1.0]]


def test_cached_batched_path_gives_the_same_labels(tmp_path: Path) -> None:
    _images(tmp_path, ["a.png", "b.png", "c.png"])
    samples, targets = read_multilabel_list(_list(tmp_path, "a.png\t1,0\nb.png\t0,1\nc.png\t1,1\n"), tmp_path, 2)
    flip = build_transform([{"RandFlipImage": {"flip_code": 1}}])
    ds = MultiLabelListDataset(samples, targets, flip, label_ratio=True)
    ds.cache_decoded()
    assert ds.use_batched()
    batch = ds.load_batch([(2, 0), (0, 0)])
    assert batch["label"].tolist() == [ds[2]["label"].tolist(), ds[0]["label"].tolist()]


def test_build_dataset_from_a_config_split(tmp_path: Path) -> None:
    _images(tmp_path / "img", ["a.png", "b.png"])
    lp = _list(tmp_path, "a.png\t1,0,0\nb.png\t0,1,1\n")
    split = DataSplitConfig.model_validate({"dataset": {
        "name": "MultiLabelDataset", "image_root": str(tmp_path / "img"), "cls_label_path": str(lp),
        "label_ratio": True, "transform_ops": [{"ResizeImage": {"size": [8, 6]}}]}})
    ds = build_dataset(split, train=True, seed=0, num_classes=3)
    assert isinstance(ds, MultiLabelListDataset)
    item = ds[1]
    assert item["image"].shape == (3, 6, 8) and item["label"].tolist() == [[0.0, 1.0, 1.0], [0.5, 0.5, 0.5]]
    with pytest.raises(UserError, match="list.txt:1: 3 labels, but Arch.class_num is 4"):
        build_dataset(split, train=True, seed=0, num_classes=4)
    missing = split.model_copy(update={"dataset": split.dataset.model_copy(update={"cls_label_path": None})})
    with pytest.raises(UserError, match=r"DataLoader.Train.dataset.cls_label_path: required for MultiLabelDataset"):
        build_dataset(missing, train=True, seed=0)


def test_random_targets_for_the_check_step() -> None:
    labels = random_targets(4, 5, True, torch.Generator().manual_seed(0))
    assert labels.shape == (4, 2, 5)
    assert (labels[2:, 0] == -1).all() and set(labels[:2, 0].flatten().tolist()) <= {0.0, 1.0}
    assert labels[0, 1].tolist() == pytest.approx(labels[:2, 0].mean(0).tolist())
    assert random_targets(4, 5, False, torch.Generator().manual_seed(0)).shape == (4, 5)


def test_padv2_places_the_image_on_a_canvas() -> None:
    img = Image.fromarray(np.full((4, 6, 3), 200, dtype=np.uint8))  # 6 wide, 4 high
    centred = build_transform([{"Padv2": {"size": [10, 8], "pad_mode": 1, "fill_value": 0}}])(img)
    assert centred.shape == (3, 8, 10)
    inside = (centred[0] > 0).nonzero()
    assert inside[:, 0].min() == 2 and inside[:, 0].max() == 5 and inside[:, 1].min() == 2 and inside[:, 1].max() == 7
    corner = build_transform([{"Padv2": {"size": [10, 8], "pad_mode": 2}}])(img)  # bottom right, grey fill
    assert corner[0, 0, 0] == pytest.approx(128 / 255) and corner[0, 7, 9] == pytest.approx(200 / 255)
    divisor = build_transform([{"Padv2": {"size_divisor": 4}}])(img)
    assert divisor.shape == (3, 4, 8)
    with pytest.raises(UserError, match=r"transform_ops\[0\].Padv2: pad_mode -1 needs offsets"):
        build_transform([{"Padv2": {"size": 8, "pad_mode": -1}}])


def test_pulc_attribute_train_ops_give_the_network_size() -> None:
    ops = [{"DecodeImage": {"to_rgb": True, "channel_first": False}}, {"ResizeImage": {"size": [12, 16]}},
           {"TimmAutoAugment": {"prob": 0.8, "config_str": "rand-m9-mstd0.5-inc1", "interpolation": "bicubic",
                                "img_size": [12, 16]}},
           {"Padv2": {"size": [16, 20], "pad_mode": 1, "fill_value": 0}}, {"RandomCropImage": {"size": [12, 16]}},
           {"RandFlipImage": {"flip_code": 1}},
           {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                               "order": ""}},
           {"RandomErasing": {"EPSILON": 1.0, "sl": 0.02, "sh": "1.0/3.0", "r1": 0.3, "attempt": 10,
                              "use_log_aspect": True, "mode": "pixel"}}]
    t = build_transform(ops)
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 25, 3), dtype=np.uint8))
    for _ in range(3):
        assert t(img).shape == (3, 16, 12)
    assert build_transform(ops, image_size=8)(img).shape == (3, 8, 8)  # RandomCropImage is the final crop
