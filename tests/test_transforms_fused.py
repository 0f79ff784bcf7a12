"""The fused ``NormalizeImage`` gives torchvision's ToImage + ToDtype + Normalize values (it replaced them)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from ssld.data.image_ops import ToNormalizedTensor
from ssld.data.transforms import build_transform


def _images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    rgb = [Image.fromarray(rng.integers(0, 256, (13, 17, 3), dtype=np.uint8)) for _ in range(4)]
    return [*rgb, Image.fromarray(rng.integers(0, 256, (9, 11), dtype=np.uint8))]  # and one grayscale


@pytest.mark.parametrize("scale", [1 / 255, 1 / 127.5])
def test_normalize_matches_torchvision_chain(scale: float) -> None:
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    ours = build_transform([{"NormalizeImage": {"scale": scale, "mean": mean, "std": std}}])
    k = scale * 255
    ref = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
                      v2.Normalize([m / k for m in mean], [s / k for s in std])])
    for img in _images()[:4]:
        out = ours(img)
        assert type(out) is torch.Tensor and out.dtype == torch.float32 and out.is_contiguous()
        torch.testing.assert_close(out, ref(img).as_subclass(torch.Tensor), rtol=0, atol=1e-5)


def test_without_normalize_gives_unit_floats_and_keeps_grayscale_channels() -> None:
    gray = _images()[-1]
    out = build_transform([])(gray)
    assert out.shape == (1, 9, 11)
    torch.testing.assert_close(out, torch.from_numpy(np.array(gray)).float()[None] / 255)


def test_tensor_input_is_read_as_unit_floats_or_bytes() -> None:
    t = ToNormalizedTensor(1 / 255, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    x8 = torch.tensor([0, 255], dtype=torch.uint8).view(1, 1, 2).expand(3, 1, 2)
    torch.testing.assert_close(t(x8), torch.tensor([-2.0, 2.0]).view(1, 1, 2).expand(3, 1, 2))
    torch.testing.assert_close(t(x8.float() / 255), t(x8))


def test_erasing_before_normalize_normalizes_once() -> None:
    img = _images()[0]
    both = build_transform([{"RandomErasing": {"EPSILON": 0.0}}, {"NormalizeImage": {}}])(img)
    torch.testing.assert_close(both, build_transform([{"NormalizeImage": {}}])(img), rtol=0, atol=1e-5)


def test_read_only_cached_array_is_copied_without_warning() -> None:
    """``cache_images`` serves read-only arrays; with no Pad/Crop before it, normalize gets one as is."""
    arr = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    arr.flags.writeable = False
    norm = ToNormalizedTensor()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch.from_numpy warns on non-writable arrays
        out = norm(arr)
        flipped = norm(np.flip(arr, 1))  # a negative-stride view, which torch.from_numpy rejects
    torch.testing.assert_close(out, torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255)
    torch.testing.assert_close(flipped, out.flip(2))
