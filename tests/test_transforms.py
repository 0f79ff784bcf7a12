"""PaddleClas transform op lists -> torchvision v2 / timm pipelines: mapping, order, errors, size override."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from ssld.data.transforms import build_transform
from ssld.errors import UserError

IMAGENET_TRAIN = [
    {"DecodeImage": {"to_rgb": True, "channel_first": False}},
    {"RandCropImage": {"size": 32}},
    {"RandFlipImage": {"flip_code": 1}},
    {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                        "order": ""}},
    "ToCHWImage",
]


@pytest.fixture
def photo() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))


def _types(t: v2.Compose) -> list[str]:
    """The op classes in order (the array-to-PIL adapter, a plain function, left out)."""
    return [type(x).__name__ for x in t.transforms if not inspect.isfunction(x)]


def test_imagenet_train_ops_map_in_order(photo: Image.Image) -> None:
    t = build_transform(IMAGENET_TRAIN)
    assert _types(t) == ["RandomResizedCrop", "RandomHorizontalFlip", "ToNormalizedTensor"]
    x = t(photo)
    assert type(x) is torch.Tensor and x.dtype == torch.float32 and x.shape == (3, 32, 32)


def test_eval_ops_and_string_scale_match_paddle_formula(photo: Image.Image) -> None:
    ops = [{"ResizeImage": {"resize_short": 40}}, {"CropImage": {"size": 32}},
           {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}}]
    x = build_transform(ops)(photo)
    ref = v2.Compose([v2.Resize(40), v2.CenterCrop(32)])(photo)
    raw = torch.from_numpy(np.asarray(ref, dtype=np.float32)).permute(2, 0, 1)
    expected = (raw * (1 / 255) - torch.tensor([0.5, 0.4, 0.3])[:, None, None]) / torch.tensor([0.2, 0.25, 0.3])[
        :, None, None]
    assert torch.allclose(x, expected, atol=1e-5)


def test_scale_one_means_raw_pixels(photo: Image.Image) -> None:
    x = build_transform([{"NormalizeImage": {"scale": 1.0, "mean": [0, 0, 0], "std": [1, 1, 1]}}])(photo)
    assert torch.allclose(x, torch.from_numpy(np.asarray(photo, dtype=np.float32)).permute(2, 0, 1), atol=1e-3)


def test_no_normalize_gives_unit_range_float(photo: Image.Image) -> None:
    x = build_transform([{"CropImage": {"size": 16}}])(photo)
    assert x.dtype == torch.float32 and x.shape == (3, 16, 16) and 0 <= x.min() and x.max() <= 1


def test_resize_size_is_width_height(photo: Image.Image) -> None:
    assert build_transform([{"ResizeImage": {"size": [20, 10]}}])(photo).shape == (3, 10, 20)
    assert build_transform([{"ResizeImage": {"size": 12}}])(photo).shape == (3, 12, 12)


def test_flip_codes(photo: Image.Image) -> None:
    assert build_transform([{"RandFlipImage": {"flip_code": 0}}]).transforms[0].axes == (0,)
    assert build_transform([{"RandFlipImage": {"flip_code": -1}}]).transforms[0].axes == (0, 1)
    mixed = [{"RandFlipImage": {"flip_code": 0}}, {"ResizeImage": {"size": 8}}]  # not all array ops: PIL
    assert _types(build_transform(mixed))[0] == "RandomVerticalFlip"
    mixed[0]["RandFlipImage"]["flip_code"] = -1
    assert _types(build_transform(mixed))[0] == "RandomApply"
    with pytest.raises(UserError, match=r"transform_ops\[0\]\.RandFlipImage: flip_code"):
        build_transform([{"RandFlipImage": {"flip_code": 2}}])


def test_bgr_decode_swaps_channels(photo: Image.Image) -> None:
    rgb = build_transform([{"DecodeImage": {"to_rgb": True}}])(photo)
    bgr = build_transform([{"DecodeImage": {"to_rgb": False}}])(photo)
    assert torch.equal(rgb.flip(0), bgr)


@pytest.mark.parametrize("op", ["AutoAugment", {"RandAugment": {"num_layers": 2, "magnitude": 5}},
                                {"TimmAutoAugment": {"config_str": "rand-m9-mstd0.5-inc1", "img_size": 32}},
                                {"TimmAutoAugment": {"config_str": "original-mstd0.5", "img_size": 32}}])
def test_auto_augment_family_runs_on_pil(photo: Image.Image, op: object) -> None:
    t = build_transform([op, "NormalizeImage"])
    assert _types(t)[1] == "ToNormalizedTensor"  # augmentation stays on the PIL side of the boundary
    assert t(photo).shape == (3, 48, 64)


@pytest.mark.parametrize("mode,cls", [("const", "RandomErasing"), ("pixel", "RandomErasing")])
def test_random_erasing_goes_after_normalize(photo: Image.Image, mode: str, cls: str) -> None:
    t = build_transform([*IMAGENET_TRAIN, {"RandomErasing": {"EPSILON": 1.0, "sl": 0.2, "sh": 0.4, "r1": 0.3,
                                                              "mode": mode}}])
    names = _types(t)
    assert names.index("ToNormalizedTensor") < names.index(cls)
    torch.manual_seed(0)
    x = t(photo)
    assert x.shape == (3, 32, 32)
    if mode == "const":
        assert (x == 0).all(dim=0).sum() >= 0.2 * 32 * 32 * 0.9  # an erased (zero) block of >= sl area


def test_random_erasing_alone_still_converts(photo: Image.Image) -> None:
    t = build_transform([{"RandomErasing": {"EPSILON": 0.0}}])
    assert _types(t)[0] == "ToNormalizedTensor" and t(photo).dtype == torch.float32


def test_cifar_style_extras(photo: Image.Image) -> None:
    t = build_transform([{"Grayscale": {}}, {"Pad": {"padding": 4}}, {"RandomCrop": {"size": 28}}, "NormalizeImage"])
    x = t(photo)
    assert x.shape == (3, 28, 28)
    assert torch.allclose(x[0] * 0.229 + 0.485, x[1] * 0.224 + 0.456, atol=1e-5)  # gray: equal channels


def test_image_size_override_scales_resize_and_crop(photo: Image.Image) -> None:
    t = build_transform([{"ResizeImage": {"resize_short": 256}}, {"CropImage": {"size": 224}}], image_size=256)
    ops = [x for x in t.transforms if not inspect.isfunction(x)]
    assert ops[0].size == [round(256 * 256 / 224)] and ops[1].size == (256, 256)
    assert build_transform(IMAGENET_TRAIN, image_size=40)(photo).shape == (3, 40, 40)
    assert build_transform(["NormalizeImage"], image_size=20)(photo).shape == (3, 20, 20)


def test_unknown_op_suggests() -> None:
    with pytest.raises(UserError, match=r"transform_ops\[1\]: unknown op 'RandCropImg'; did you mean 'RandCropImage'"):
        build_transform(["DecodeImage", {"RandCropImg": {"size": 3}}])


def test_bad_kwargs_name_the_op() -> None:
    with pytest.raises(UserError, match=r"transform_ops\[0\]\.RandCropImage: unknown argument 'sise'; did you mean "
                                        r"'size'"):
        build_transform([{"RandCropImage": {"sise": 3}}])
    with pytest.raises(UserError, match=r"^transform_ops\[0\]\.CropImage: missing required argument 'size'$"):
        build_transform(["CropImage"])
    with pytest.raises(UserError, match=r"transform_ops\[0\]\.ResizeImage: interpolation 'cubic'"):
        build_transform([{"ResizeImage": {"size": 3, "interpolation": "cubic"}}])
    with pytest.raises(UserError, match=r"transform_ops\[0\]: expected"):
        build_transform([{"A": {}, "B": {}}])


def test_image_op_after_normalize_is_refused() -> None:
    with pytest.raises(UserError, match=r"transform_ops\[1\]: TimmAutoAugment .* before NormalizeImage"):
        build_transform(["NormalizeImage", {"TimmAutoAugment": {}}])
