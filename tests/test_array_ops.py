"""The numpy pad/crop/flip ops match torchvision's, and a decoded-image cache changes no sample."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from ssld.data import ImageListDataset
from ssld.data.array_ops import ArrayPad, ArrayRandomCrop, ArrayRandomFlip
from ssld.data.lists import Sample
from ssld.data.transforms import build_transform

CIFAR_OPS = [{"DecodeImage": {"to_rgb": True}}, {"Pad": {"padding": 2}}, {"RandomCrop": {"size": 8}},
             {"RandFlipImage": {"flip_code": 1}}, {"NormalizeImage": {"mean": [0.5] * 3, "std": [0.25] * 3}}]


def _img(h: int = 6, w: int = 8, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric"])
@pytest.mark.parametrize("padding", [2, [1, 3], [1, 2, 3, 4]])
def test_pad_matches_torchvision(mode: str, padding: int | list[int]) -> None:
    img = _img()
    ref = np.asarray(v2.Pad(padding, fill=7, padding_mode=mode)(img))
    np.testing.assert_array_equal(ArrayPad(padding, fill=7, padding_mode=mode)(img), ref)


def test_random_crop_reaches_every_window_of_the_padded_image() -> None:
    arr = np.asarray(_img(4, 4))
    padded = ArrayPad(1)(arr)
    crop = ArrayRandomCrop(4, padding=1)
    seen = set()
    np.random.seed(0)
    for _ in range(400):
        out = crop(arr)
        hits = [(t, left) for t in range(3) for left in range(3)
                if np.array_equal(padded[t:t + 4, left:left + 4], out)]
        assert hits, "the crop is not a window of the padded image"
        seen.update(hits)
    assert len(seen) == 9


def test_crop_larger_than_image_scales_it_up_unless_padded_as_needed() -> None:
    small = np.asarray(_img(4, 4))
    up = ArrayRandomCrop(9)(small)
    assert up.shape == (9, 9, 3)
    assert np.array_equal(up, np.asarray(Image.fromarray(small).resize((9, 9), Image.Resampling.BILINEAR)))
    padded = ArrayRandomCrop(9, pad_if_needed=True)(small)
    assert padded.shape == (9, 9, 3) and (padded == 0).any()  # zero padding, the image itself unscaled


def test_flip_is_a_mirror_half_of_the_time() -> None:
    arr = np.asarray(_img())
    np.random.seed(0)
    outs = [ArrayRandomFlip("horizontal")(arr) for _ in range(200)]
    flipped = sum(np.array_equal(o, arr[:, ::-1]) for o in outs)
    assert all(np.array_equal(o, arr) or np.array_equal(o, arr[:, ::-1]) for o in outs)
    assert 70 < flipped < 130


def test_cifar_recipe_runs_on_arrays_and_other_recipes_on_pil() -> None:
    fast = build_transform(CIFAR_OPS)
    assert any(isinstance(t, ArrayRandomCrop) for t in fast.transforms)
    slow = build_transform([{"RandCropImage": {"size": 8}}, "NormalizeImage"])
    assert not any(isinstance(t, ArrayRandomCrop) for t in slow.transforms)
    arr = np.asarray(_img(12, 12))
    assert slow(arr).shape == slow(Image.fromarray(arr)).shape == (3, 8, 8)  # arrays reach PIL ops as images


def test_cached_dataset_gives_the_same_samples(tmp_path) -> None:
    samples = []
    for i in range(6):
        path = tmp_path / f"{i}.png"
        _img(10, 10, seed=i).save(path)
        samples.append(Sample(str(path), i % 3))
    (tmp_path / "bad.png").write_bytes(b"not a png")
    samples.append(Sample(str(tmp_path / "bad.png"), 0))
    for ops in (CIFAR_OPS, [{"RandCropImage": {"size": 8}}, "NormalizeImage"]):
        plain = ImageListDataset(samples, build_transform(ops), seed=3)
        cached = ImageListDataset(samples, build_transform(ops), seed=3)
        assert cached.cache_decoded() == 6 * 10 * 10 * 3
        for key in [(i, epoch) for i in range(6) for epoch in (0, 1)]:
            torch.testing.assert_close(cached[key]["image"], plain[key]["image"], rtol=0, atol=0)
        assert cached[6] is None and plain[6] is None
