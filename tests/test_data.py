"""List files, the seeded dataset, collate, the resumable sampler and build_loader."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ssld.config.schema import DataSplitConfig
from ssld.data import (
    ImageListDataset,
    ResumableSampler,
    Sample,
    build_loader,
    build_transform,
    collate,
    read_image_folder,
    read_list,
    write_list,
)
from ssld.errors import UserError

AUG = [{"RandCropImage": {"size": 12, "scale": [0.2, 1.0]}}, {"RandFlipImage": {"flip_code": 1}},
       {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}]


def _images(root: Path, n: int) -> list[str]:
    """``n`` small random RGB PNGs named img0.png..."""
    rng = np.random.default_rng(1)
    root.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)).save(root / f"img{i}.png")
        names.append(f"img{i}.png")
    return names


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ---- list files -------------------------------------------------------------------------------------------------


def test_read_list_labels_unlabeled_comments(tmp_path: Path) -> None:
    lst = _write(tmp_path / "l.txt", "# header\na/1.png 3\n\nb/2.png\t7\nc/3.png -1\nd/4.png\n  \n")
    got = read_list(lst, tmp_path)
    assert got == [Sample(str(tmp_path / "a/1.png"), 3), Sample(str(tmp_path / "b/2.png"), 7),
                   Sample(str(tmp_path / "c/3.png"), -1), Sample(str(tmp_path / "d/4.png"), -1)]


def test_read_list_bad_label_names_line(tmp_path: Path) -> None:
    lst = _write(tmp_path / "l.txt", "a.png 1\n# c\nb.png cat\n")
    with pytest.raises(UserError, match=rf"^{lst}:3: label 'cat' is not an integer$"):
        read_list(lst, tmp_path)
    with pytest.raises(UserError, match=r"l2.txt:1: expected"):
        read_list(_write(tmp_path / "l2.txt", "a b.png 1\n"), tmp_path)
    with pytest.raises(UserError, match=r"l3.txt:1: label -2 is negative"):
        read_list(_write(tmp_path / "l3.txt", "a.png -2\n"), tmp_path)


def test_read_list_missing_file_or_root(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="list file not found"):
        read_list(tmp_path / "nope.txt", tmp_path)
    with pytest.raises(UserError, match="image root not found"):
        read_list(_write(tmp_path / "l.txt", "a.png 1\n"), tmp_path / "missing")


def test_write_list_round_trip(tmp_path: Path) -> None:
    samples = [Sample(str(tmp_path / "x/a.png"), 2), Sample(str(tmp_path / "b.png"), -1)]
    assert write_list(tmp_path / "out.txt", samples, root=tmp_path) == 2
    assert (tmp_path / "out.txt").read_text() == "x/a.png 2\nb.png\n"
    assert read_list(tmp_path / "out.txt", tmp_path) == samples
    write_list(tmp_path / "pairs.txt", [("p.png", 1), "q.png"])
    assert (tmp_path / "pairs.txt").read_text() == "p.png 1\nq.png\n"
    with pytest.raises(UserError, match="whitespace"):
        write_list(tmp_path / "bad.txt", ["a b.png"])
    assert not (tmp_path / "bad.txt").exists()


def test_image_folder_sorted_classes(tmp_path: Path) -> None:
    _images(tmp_path / "dog", 2)
    _images(tmp_path / "cat", 1)
    (tmp_path / "cat" / "notes.txt").write_text("x")
    got = read_image_folder(tmp_path)
    assert [(Path(s.path).parent.name, s.label) for s in got] == [("cat", 0), ("dog", 1), ("dog", 1)]
    with pytest.raises(UserError, match="no class sub-folders"):
        read_image_folder(tmp_path / "cat")


# ---- dataset and collate ----------------------------------------------------------------------------------------


def test_bad_images_are_none_and_collate_skips_them(tmp_path: Path) -> None:
    names = _images(tmp_path, 2)
    (tmp_path / "zero.png").write_bytes(b"")
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    full = (tmp_path / names[1]).read_bytes()
    (tmp_path / "trunc.png").write_bytes(full[: len(full) // 2])
    paths = [names[0], "zero.png", "junk.png", "trunc.png", "missing.png", names[1]]
    ds = ImageListDataset([Sample(str(tmp_path / p), i) for i, p in enumerate(paths)], build_transform(AUG))
    items = [ds[i] for i in range(len(ds))]
    assert [it is None for it in items] == [False, True, True, True, True, False]
    batch = collate([ds.load((i, 0)) for i in range(len(ds))])
    assert batch["image"].shape == (2, 3, 12, 12)
    assert batch["label"].tolist() == [0, 5] and batch["index"].tolist() == [0, 5]
    assert batch["bad"] == [1, 2, 3, 4]
    assert collate(items)["bad"] == [-1, -1, -1, -1]
    empty = collate([None, ds.load(1)])
    assert empty["image"].shape[0] == 0 and empty["label"].numel() == 0 and empty["bad"] == [-1, 1]


def test_augmentation_seeded_per_sample_and_rng_untouched(tmp_path: Path) -> None:
    names = _images(tmp_path, 3)
    ds = ImageListDataset([Sample(str(tmp_path / n), 0) for n in names], build_transform(AUG), seed=5)
    torch.manual_seed(123)
    random.seed(123)
    np.random.seed(123)
    before = (torch.random.get_rng_state(), random.getstate(), np.random.get_state()[1].copy())
    a = ds[(1, 4)]["image"]
    _ = ds[(2, 4)]
    b = ds[(1, 4)]["image"]
    assert torch.equal(a, b)
    assert not torch.equal(a, ds[(1, 5)]["image"])  # another epoch, another crop
    assert not torch.equal(a, ImageListDataset(ds.samples, ds.transform, seed=6)[(1, 4)]["image"])
    assert torch.equal(torch.random.get_rng_state(), before[0])
    assert random.getstate() == before[1]
    assert np.array_equal(np.random.get_state()[1], before[2])


# ---- sampler ----------------------------------------------------------------------------------------------------


def test_sampler_deterministic_per_epoch() -> None:
    s = ResumableSampler(10, shuffle=True, seed=3)
    s.set_epoch(2)
    first = list(s)
    assert sorted(i for i, _ in first) == list(range(10)) and {e for _, e in first} == {2}
    assert [i for i, _ in ResumableSampler(10, shuffle=True, seed=3)] != [i for i, _ in first]  # epoch 0 differs
    s2 = ResumableSampler(10, shuffle=True, seed=3)
    s2.set_epoch(2)
    assert list(s2) == first
    assert [i for i, _ in ResumableSampler(5, shuffle=False, seed=0)] == [0, 1, 2, 3, 4]


def test_sampler_shards_pad_and_drop() -> None:
    shards = [list(ResumableSampler(10, True, 1, rank=r, world_size=3)) for r in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]
    flat = [i for s in shards for i, _ in s]
    assert set(flat) == set(range(10)) and len(flat) == 12  # two wrapped duplicates
    dropped = [list(ResumableSampler(10, True, 1, rank=r, world_size=3, drop_last=True)) for r in range(3)]
    assert [len(s) for s in dropped] == [3, 3, 3] and len({i for s in dropped for i, _ in s}) == 9
    assert len(ResumableSampler(10, True, 1, rank=2, world_size=3)) == 4


def test_sampler_start_batch_resumes_and_resets() -> None:
    s = ResumableSampler(23, shuffle=True, seed=0, rank=1, world_size=2)
    s.set_epoch(1)
    full = list(s)
    s.set_start_batch(2, 4)
    assert len(s) == len(full) - 8 and list(s) == full[8:]
    s.set_epoch(2)
    assert len(s) == 12
    s.set_start_batch(99, 4)
    assert list(s) == [] and len(s) == 0


# ---- loader -----------------------------------------------------------------------------------------------------


def _split(tmp_path: Path, n: int, **over: object) -> DataSplitConfig:
    names = _images(tmp_path / "img", n)
    write_list(tmp_path / "list.txt", [(f"{name}", i % 3) for i, name in enumerate(names)])
    cfg = {"dataset": {"name": "ImageNetDataset", "image_root": str(tmp_path / "img"),
                       "cls_label_path": str(tmp_path / "list.txt"), "transform_ops": AUG},
           "sampler": {"batch_size": 4, "drop_last": False, "shuffle": True},
           "loader": {"num_workers": 0}}
    for key, value in over.items():
        section, field = key.split("__")
        cfg[section][field] = value  # type: ignore[index]
    return DataSplitConfig.model_validate(cfg)


def _run(loader: torch.utils.data.DataLoader) -> dict[int, torch.Tensor]:
    return {int(i): img for b in loader for i, img in zip(b["index"], b["image"], strict=True)}


def test_augmentation_independent_of_workers_and_resume(tmp_path: Path) -> None:
    split = _split(tmp_path, 10)
    serial, sampler = build_loader(split, train=True, seed=7)
    sampler.set_epoch(3)
    ref = _run(serial)
    assert sorted(ref) == list(range(10))
    two = build_loader(_split(tmp_path, 10, loader__num_workers=2), train=True, seed=7)
    two[1].set_epoch(3)
    got = _run(two[0])
    assert all(torch.equal(ref[i], got[i]) for i in ref)
    resumed, rs = build_loader(split, train=True, seed=7)
    rs.set_epoch(3)
    rs.set_start_batch(1, 4)
    tail = _run(resumed)
    assert len(tail) == 6 and all(torch.equal(ref[i], tail[i]) for i in tail)


def test_eval_loader_never_shuffles_or_drops(tmp_path: Path) -> None:
    loader, _sampler = build_loader(_split(tmp_path, 10, sampler__drop_last=True), train=False, seed=0)
    batches = list(loader)
    assert [b["index"].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0]["label"].tolist() == [0, 1, 2, 0]


def test_loader_refuses_bad_input_before_work(tmp_path: Path) -> None:
    split = _split(tmp_path, 3, sampler__drop_last=True, sampler__batch_size=8)
    with pytest.raises(UserError, match=r"DataLoader.Train.sampler.batch_size: 8 per process .* 3 images"):
        build_loader(split, train=True, seed=0)
    bad_root = _split(tmp_path, 3, dataset__image_root=str(tmp_path / "nope"))
    with pytest.raises(UserError, match=r"DataLoader.Eval.dataset.image_root: image root not found"):
        build_loader(bad_root, train=False, seed=0)
    bad_list = _split(tmp_path, 3, dataset__cls_label_path=str(tmp_path / "nope.txt"))
    with pytest.raises(UserError, match=r"DataLoader.Train.dataset.cls_label_path: list file not found"):
        build_loader(bad_list, train=True, seed=0)
    bad_op = _split(tmp_path, 3, dataset__transform_ops=["Flip"])
    with pytest.raises(UserError, match=r"DataLoader.Train.dataset.transform_ops\[0\]: unknown op 'Flip'"):
        build_loader(bad_op, train=True, seed=0)


def test_image_folder_loader(tmp_path: Path) -> None:
    for c in ("a", "b"):
        _images(tmp_path / c, 2)
    split = DataSplitConfig.model_validate({"dataset": {"name": "ImageFolder", "image_root": str(tmp_path)},
                                            "sampler": {"batch_size": 8}, "loader": {"num_workers": 0}})
    batch = next(iter(build_loader(split, train=False, seed=0)[0]))
    assert batch["label"].tolist() == [0, 0, 1, 1] and batch["image"].shape == (4, 3, 16, 20)


def test_atomic_writes_get_the_usual_file_mode(tmp_path: Path) -> None:
    import os
    import stat

    from ssld.utils.io import write_json

    write_json(tmp_path / "r.json", {"a": 1})
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(tmp_path / "r.json").st_mode) == 0o666 & ~mask
