"""Whole-batch augmentation (``ssld.data.batched``): the same ops as the per-sample chain, per-sample randomness
that does not depend on the batch, and the DataLoader path that uses it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from ssld.data.batched import batched_form, uniform
from ssld.data.dataset import ImageListDataset, LoaderView, collate
from ssld.data.lists import Sample
from ssld.data.sampler import ResumableSampler
from ssld.data.transforms import build_transform

MEAN, STD = 0.286, 0.353
RECIPE = [{"DecodeImage": {"to_rgb": True, "channel_first": False}}, {"Pad": {"padding": 2}},
          {"RandomCrop": {"size": 8}}, {"RandFlipImage": {"flip_code": 1}},
          {"NormalizeImage": {"scale": "1.0/255.0", "mean": [MEAN] * 3, "std": [STD] * 3, "order": ""}}]


def _batch(n: int = 16, size: int = 8) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _by_hand(img: np.ndarray, seed: int, epoch: int, index: int) -> torch.Tensor:
    """Pad 2, crop 8 at the drawn offsets, flip when drawn, normalize: the recipe written out for one image."""
    e, i = np.array([epoch]), np.array([index])
    padded = np.zeros((img.shape[0] + 4, img.shape[1] + 4, 3), np.uint8)
    padded[2:-2, 2:-2] = img
    top = int(uniform(seed, e, i, 0)[0] * 5)
    left = int(uniform(seed, e, i, 1)[0] * 5)
    out = padded[top:top + 8, left:left + 8]
    if uniform(seed, e, i, 2)[0] < 0.5:
        out = out[:, ::-1]
    x = torch.from_numpy(out.copy()).permute(2, 0, 1).float()
    return (x / 255 - MEAN) / STD


def test_batch_equals_the_recipe_applied_image_by_image() -> None:
    aug = batched_form(build_transform(RECIPE))
    assert aug is not None
    images = _batch()
    idx, ep = np.arange(100, 116), np.full(16, 3)
    out = aug(images, 7, ep, idx)
    assert out.shape == (16, 3, 8, 8) and out.dtype == torch.float32 and out.is_contiguous()
    for k in range(16):
        torch.testing.assert_close(out[k], _by_hand(images[k], 7, 3, int(idx[k])), rtol=0, atol=1e-5)


def test_a_sample_is_augmented_the_same_in_any_batch_and_differently_in_another_epoch() -> None:
    aug = batched_form(build_transform(RECIPE))
    assert aug is not None
    images = _batch()
    whole = aug(images, 0, np.zeros(16, np.int64), np.arange(16))
    part = aug(images[[9, 4]], 0, np.zeros(2, np.int64), np.array([9, 4]))
    torch.testing.assert_close(part, whole[[9, 4]], rtol=0, atol=0)
    later = aug(images, 0, np.ones(16, np.int64), np.arange(16))
    assert not torch.equal(later, whole)


def test_draws_cover_every_offset_and_flip_half_the_time() -> None:
    idx = np.arange(20000)
    crops = (uniform(0, np.zeros_like(idx), idx, 0) * 5).astype(int)
    flips = uniform(0, np.zeros_like(idx), idx, 2) < 0.5
    counts = np.bincount(crops, minlength=5)
    assert counts.min() > 3600 and counts.max() < 4400  # uniform over 0..4 (expected 4,000 each)
    assert 0.48 < flips.mean() < 0.52


@pytest.mark.parametrize("op", [{"RandomErasing": {"EPSILON": 0.5}}, {"ResizeImage": {"size": 8}},
                                {"Pad": {"padding": 2, "padding_mode": "reflect"}}])
def test_chains_without_a_batch_form_stay_per_sample(op: dict) -> None:
    ops = [RECIPE[0], op, RECIPE[-1]] if "RandomErasing" not in op else [*RECIPE, op]
    assert batched_form(build_transform(ops)) is None


def _png_dataset(tmp_path: Path, n: int = 10) -> ImageListDataset:
    images = _batch(n)
    samples = []
    for i, img in enumerate(images):
        path = tmp_path / f"{i}.png"
        Image.fromarray(img).save(path)
        samples.append(Sample(str(path), i % 3))
    return ImageListDataset(samples, build_transform(RECIPE), seed=5)


def test_loader_serves_collated_batches_and_resumes_mid_epoch(tmp_path: Path) -> None:
    ds = _png_dataset(tmp_path)
    ds.cache_decoded()
    assert ds.use_batched()

    def epoch(start: int = 0) -> list[dict]:
        sampler = ResumableSampler(len(ds), shuffle=True, seed=5)
        sampler.set_epoch(2)
        sampler.set_start_batch(start, 4)
        return list(DataLoader(LoaderView(ds), batch_size=4, sampler=sampler, collate_fn=collate))

    full = epoch()
    assert [len(b["index"]) for b in full] == [4, 4, 2]
    for b in full:
        assert b["label"].tolist() == [ds.samples[i].label for i in b["index"].tolist()]
        for k, i in enumerate(b["index"].tolist()):
            torch.testing.assert_close(b["image"][k], _by_hand(ds.stacked[i], 5, 2, i), rtol=0, atol=1e-5)
    resumed = epoch(start=1)
    for a, b in zip(full[1:], resumed, strict=True):
        assert torch.equal(a["index"], b["index"]) and torch.equal(a["image"], b["image"])


def test_images_of_different_sizes_keep_the_per_sample_path(tmp_path: Path) -> None:
    ds = _png_dataset(tmp_path, n=3)
    Image.fromarray(np.zeros((9, 8, 3), np.uint8)).save(ds.samples[0].path)
    ds.cache_decoded()
    assert ds.stacked is None and not ds.use_batched()
    assert ds.load_batch([0, 1]) is None
    assert len(collate([ds.load(0), ds.load(1)])["index"]) == 2
