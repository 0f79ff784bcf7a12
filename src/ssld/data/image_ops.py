"""PaddleClas's image ops, each a builder of torchvision v2 / timm transforms (``OPS``), and numpy versions of the
CIFAR-style ones (``ARRAY_OPS``, see ``ssld.data.array_ops``). ``ssld.data.transforms`` turns a config's
``transform_ops`` list into one pipeline of them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

from ssld.data.array_ops import (
    ArrayPad,
    ArrayRandomCrop,
    ArrayRandomFlip,
    FitSize,
    ScaleUp,
    _ltrb,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_INTERP = {
    "nearest": v2.InterpolationMode.NEAREST,
    "bilinear": v2.InterpolationMode.BILINEAR,
    "bicubic": v2.InterpolationMode.BICUBIC,
    "area": v2.InterpolationMode.BOX,
    "box": v2.InterpolationMode.BOX,
    "lanczos": v2.InterpolationMode.LANCZOS,
    "hamming": v2.InterpolationMode.HAMMING,
}
# What each builder returns: (stage, transforms). "image" ops need the PIL image, "normalize" is the
# PIL -> float tensor boundary, "tensor" ops need the float tensor.
Built = tuple[str, list[Callable[[Any], Any]]]


def _number(v: Any) -> float:
    """A number, or a PaddleClas arithmetic string such as ``'1.0/255.0'``."""
    if isinstance(v, str):
        num, _, den = v.partition("/")
        return float(num) / (float(den) if den else 1.0)
    return float(v)


def _interp(name: str | None) -> v2.InterpolationMode:
    if name is None:
        return v2.InterpolationMode.BILINEAR
    if str(name).lower() not in _INTERP:
        raise ValueError(f"interpolation '{name}' is not one of {sorted(_INTERP)}")
    return _INTERP[str(name).lower()]


def _hw(size: int | Sequence[int]) -> int | list[int]:
    """PaddleClas sizes are ``int`` or ``[w, h]``; torchvision wants ``int`` or ``[h, w]``."""
    if isinstance(size, int) and size > 0:
        return size
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size):
        return [int(size[1]), int(size[0])]
    raise ValueError(f"size must be a positive int or [width, height], got {size!r}")


def _bgr(img: Image.Image) -> Image.Image:
    """Swap R and B (PaddleClas ``DecodeImage(to_rgb=False)`` keeps OpenCV's BGR order)."""
    r, g, b = img.split()
    return Image.merge("RGB", (b, g, r))


def _decode(to_rgb: bool = True, channel_first: bool = False, to_np: bool = False, backend: str | None = None) -> Built:
    """Decoding is the dataset's job (Pillow); only the channel order matters here (the output is always CHW)."""
    return "image", ([] if to_rgb else [_bgr])


def _rand_crop(size: int | Sequence[int], scale: Sequence[float] | None = None, ratio: Sequence[float] | None = None,
               interpolation: str | None = None, use_log_aspect: bool = False, backend: str | None = None) -> Built:
    """RandomResizedCrop (torchvision always samples the aspect ratio log-uniformly)."""
    return "image", [v2.RandomResizedCrop(_hw(size), scale=tuple(scale or (0.08, 1.0)),
                                          ratio=tuple(ratio or (3 / 4, 4 / 3)), interpolation=_interp(interpolation))]


def _rand_flip(flip_code: int = 1) -> Built:
    """cv2 flip codes, applied with probability 0.5: 1 horizontal, 0 vertical, -1 both."""
    if flip_code == 1:
        return "image", [v2.RandomHorizontalFlip()]
    if flip_code == 0:
        return "image", [v2.RandomVerticalFlip()]
    if flip_code == -1:
        return "image", [v2.RandomApply([v2.RandomHorizontalFlip(1.0), v2.RandomVerticalFlip(1.0)], p=0.5)]
    raise ValueError(f"flip_code must be 1, 0 or -1, got {flip_code}")


def _resize(size: int | Sequence[int] | None = None, resize_short: int | None = None,
            interpolation: str | None = None, backend: str | None = None, return_numpy: bool = True) -> Built:
    """``resize_short``: shorter side to that length; ``size``: exactly that size."""
    if (size is None) == (resize_short is None):
        raise ValueError("give exactly one of 'size' and 'resize_short'")
    if size is None:
        target: int | list[int] = int(resize_short)  # type: ignore[arg-type]
    else:
        target = [size, size] if isinstance(size, int) else _hw(size)  # type: ignore[assignment]
    return "image", [v2.Resize(target, interpolation=_interp(interpolation))]


def _crop(size: int | Sequence[int]) -> Built:
    return "image", [v2.CenterCrop(_hw(size))]


class ToNormalizedTensor:
    """A PIL image, HWC uint8 array or CHW tensor -> float32 CHW tensor ``(x * scale - mean) / std`` of its 0-255
    pixels.

    One fused step instead of torchvision's ``ToImage`` + ``ToDtype`` + ``Normalize``, whose per-call dispatch
    costs about 300 us on a 28 px image (the bulk of a small image's loading time); this costs about 45 us and
    gives the same values up to float rounding.
    """

    def __init__(self, scale: float = 1 / 255, mean: Sequence[float] = (0.0, 0.0, 0.0),
                 std: Sequence[float] = (1.0, 1.0, 1.0)) -> None:
        m, s = torch.tensor([float(v) for v in mean]), torch.tensor([float(v) for v in std])
        if bool((m == m[0]).all() and (s == s[0]).all()):  # one value for all channels fits any channel count
            m, s = m[:1], s[:1]
        self.gain = float(scale) / s.view(-1, 1, 1)  # x * gain - offset == (x * scale - mean) / std
        self.offset = (m / s).view(-1, 1, 1)

    def __call__(self, img: Image.Image | np.ndarray | torch.Tensor) -> torch.Tensor:
        if isinstance(img, torch.Tensor):  # a tensor op ran earlier: CHW, uint8 0-255 or float 0-1
            x = img.float() if img.dtype == torch.uint8 else img.float() * 255.0
        else:  # HWC (or HW for one channel) as a writable, contiguous copy
            arr = np.require(img, requirements=("C", "W")) if isinstance(img, np.ndarray) else np.array(img)
            x = torch.from_numpy(arr[:, :, None] if arr.ndim == 2 else arr).permute(2, 0, 1)
            x = x.to(torch.float32, memory_format=torch.contiguous_format)
        return x.mul_(self.gain).sub_(self.offset)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(gain={self.gain.flatten().tolist()}, offset={self.offset.flatten().tolist()})"


def _normalize(scale: float | str | None = None, mean: Sequence[float] | None = None,
               std: Sequence[float] | None = None, order: str = "chw", output_fp16: bool = False,
               channel_num: int = 3) -> Built:
    """``(x * scale - mean) / std`` on raw 0-255 pixels, as a float CHW tensor (``order`` is always CHW)."""
    if order not in ("chw", "hwc", ""):
        raise ValueError(f"order must be 'chw' or 'hwc', got '{order}'")
    if output_fp16 or channel_num != 3:
        raise ValueError("only output_fp16: false and channel_num: 3 are supported (AMP handles precision)")
    if std is not None and any(_number(s) == 0 for s in std):
        raise ValueError(f"std must not contain 0 (it divides), got {list(std)}")
    return "normalize", [ToNormalizedTensor(_number(1 / 255 if scale is None else scale), mean or IMAGENET_MEAN,
                                            std or IMAGENET_STD)]


def _noop() -> Built:
    return "image", []


def _auto_augment() -> Built:
    """PaddleClas ``ImageNetPolicy`` is the original AutoAugment ImageNet policy."""
    return "image", [v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET)]


def _rand_augment(num_layers: int = 2, magnitude: int = 5, fillcolor: Sequence[int] = (128, 128, 128)) -> Built:
    """PaddleClas magnitudes run 0..10, hence 11 bins."""
    if not 0 <= magnitude <= 10:
        raise ValueError(f"magnitude must be in 0..10, got {magnitude}")
    return "image", [v2.RandAugment(num_ops=num_layers, magnitude=magnitude, num_magnitude_bins=11,
                                    fill=list(fillcolor))]


def _timm_auto_augment(config_str: str = "rand-m9-mstd0.5-inc1", interpolation: str = "bicubic",
                       img_size: int | Sequence[int] = 224, mean: Sequence[float] = IMAGENET_MEAN,
                       prob: float = 1.0) -> Built:
    """timm RandAugment / AutoAugment / AugMix from a config string (PIL images only)."""
    from timm.data.auto_augment import (
        augment_and_mix_transform,
        auto_augment_transform,
        rand_augment_transform,
    )
    from timm.data.transforms import str_to_pil_interp

    side = img_size if isinstance(img_size, int) else min(img_size)
    hparams = {"translate_const": int(side * 0.45), "img_mean": tuple(min(255, round(255 * x)) for x in mean),
               "interpolation": str_to_pil_interp(interpolation)}
    if config_str.startswith("rand"):
        t = rand_augment_transform(config_str, hparams)
    elif config_str.startswith("augmix"):
        t = augment_and_mix_transform(config_str, hparams)
    else:
        t = auto_augment_transform(config_str, hparams)
    return "image", [t if prob >= 1.0 else v2.RandomApply([t], p=prob)]


def _random_erasing(EPSILON: float = 0.5, sl: float = 0.02, sh: float = 0.4, r1: float = 0.3,
                    mean: Sequence[float] = (0.0, 0.0, 0.0), attempt: int = 100, use_log_aspect: bool = False,
                    mode: str = "const") -> Built:
    """``const`` fills with ``mean`` (torchvision); ``rand``/``pixel`` fill with normal noise (timm). Numbers may
    be PaddleClas arithmetic strings (``sh: 1.0/3.0``)."""
    EPSILON, sl, sh, r1 = (_number(v) for v in (EPSILON, sl, sh, r1))
    if mode == "const":
        return "tensor", [v2.RandomErasing(p=EPSILON, scale=(sl, sh), ratio=(r1, 1 / r1), value=list(mean))]
    if mode in ("rand", "pixel"):
        from timm.data.random_erasing import RandomErasing

        return "tensor", [RandomErasing(probability=EPSILON, min_area=sl, max_area=sh, min_aspect=r1, mode=mode,
                                        device="cpu")]
    raise ValueError(f"mode must be 'const', 'rand' or 'pixel', got '{mode}'")


def _pad(padding: int | Sequence[int], fill: int | Sequence[int] = 0, padding_mode: str = "constant") -> Built:
    _ltrb(padding)  # the same checks as the array version (no negative padding)
    return "image", [v2.Pad(padding, fill=fill, padding_mode=padding_mode)]


class PadTo:
    """PaddleClas ``Padv2``: place the image on a ``(h, w)`` canvas of ``fill`` (or one padded up to a multiple of
    ``divisor``), at the top left (``mode`` 0), centred (1), bottom right (2) or at ``offsets`` ``[x, y]`` (-1).
    A side already longer than the canvas is kept whole (PaddleClas stops on an assertion there)."""

    def __init__(self, size: tuple[int, int] | None, divisor: int, mode: int, offsets: Sequence[int] | None,
                 fill: tuple[int, int, int]) -> None:
        self.size, self.divisor, self.mode, self.offsets, self.fill = size, divisor, mode, offsets, fill

    def __call__(self, img: Image.Image | np.ndarray) -> Image.Image:
        img = to_pil(img)
        w0, h0 = img.size
        h, w = self.size or (-(-h0 // self.divisor) * self.divisor, -(-w0 // self.divisor) * self.divisor)
        h, w = max(h, h0), max(w, w0)
        if (h, w) == (h0, w0):
            return img
        x, y = {0: (0, 0), 1: ((w - w0) // 2, (h - h0) // 2), 2: (w - w0, h - h0)}.get(
            self.mode, tuple(self.offsets or (0, 0)))
        canvas = Image.new("RGB", (w, h), self.fill)
        canvas.paste(img.convert("RGB"), (int(x), int(y)))
        return canvas

    def __repr__(self) -> str:
        return f"PadTo(size={self.size}, divisor={self.divisor}, mode={self.mode}, fill={self.fill})"


def _padv2(size: int | Sequence[int] | None = None, size_divisor: int = 32, pad_mode: int = 0,
           offsets: Sequence[int] | None = None, fill_value: float | Sequence[float] = (127.5, 127.5, 127.5)) -> Built:
    """PaddleClas ``Padv2`` (``size`` is ``int`` or ``[w, h]``; ``fill_value`` rounded to 8-bit pixels)."""
    if pad_mode not in (-1, 0, 1, 2):
        raise ValueError(f"pad_mode must be -1, 0, 1 or 2, got {pad_mode}")
    if pad_mode == -1 and not (isinstance(offsets, (list, tuple)) and len(offsets) == 2
                               and all(isinstance(v, int) and v >= 0 for v in offsets)):
        raise ValueError(f"pad_mode -1 needs offsets [x, y] (non-negative integers), got {offsets!r}")
    if not isinstance(size_divisor, int) or size_divisor < 1:
        raise ValueError(f"size_divisor must be a positive integer, got {size_divisor!r}")
    hw = None if size is None else _hw(size)
    fills = [fill_value] * 3 if isinstance(fill_value, (int, float, str)) else list(fill_value)
    if len(fills) != 3:
        raise ValueError(f"fill_value must be one number or three, got {fill_value!r}")
    fill = tuple(min(255, max(0, round(_number(v)))) for v in fills)
    return "image", [PadTo(None if hw is None else ((hw, hw) if isinstance(hw, int) else (hw[0], hw[1])),
                           size_divisor, pad_mode, offsets, fill)]  # type: ignore[arg-type]


def _random_crop_image(size: int | Sequence[int]) -> Built:
    """PaddleClas ``RandomCropImage``: a random ``size`` crop without padding (``size`` is ``int`` or ``[w, h]``;
    an image smaller than it is scaled up to cover it, where PaddleClas fails)."""
    return _random_crop(size)


def _random_crop(size: int | Sequence[int], padding: int | Sequence[int] | None = None, pad_if_needed: bool = False,
                 fill: int | Sequence[int] = 0, padding_mode: str = "constant") -> Built:
    """CIFAR-style random crop (``size`` is ``int`` or ``[w, h]`` like the PaddleClas ops); an image smaller than
    the crop after padding is scaled up to cover it (``pad_if_needed`` pads it instead)."""
    hw = _hw(size)
    if padding:
        _ltrb(padding)
    if pad_if_needed:
        return "image", [v2.RandomCrop(hw, padding=padding, pad_if_needed=True, fill=fill, padding_mode=padding_mode)]
    h, w = (hw, hw) if isinstance(hw, int) else hw
    pad = [v2.Pad(padding, fill=fill, padding_mode=padding_mode)] if padding else []
    return "image", [*pad, ScaleUp(h, w), v2.RandomCrop(hw)]


def _fit_size(h: int, w: int) -> Built:
    """Internal (added by ``build_transform``'s ``fit_size``): resize images of another size to ``h x w``."""
    return "image", [FitSize(h, w)]


def _grayscale(num_output_channels: int = 3) -> Built:
    return "image", [v2.Grayscale(num_output_channels)]


def to_pil(img: Image.Image | np.ndarray) -> Image.Image:
    """Cached images arrive as HWC uint8 arrays; PIL-based ops need an image."""
    if isinstance(img, np.ndarray):
        return Image.fromarray(img[:, :, 0] if img.ndim == 3 and img.shape[2] == 1 else img)
    return img


def _array_pad(padding: int | Sequence[int], fill: int | Sequence[int] = 0, padding_mode: str = "constant") -> Built:
    return "image", [ArrayPad(padding, fill, padding_mode)]


def _array_random_crop(size: int | Sequence[int], padding: int | Sequence[int] | None = None,
                       pad_if_needed: bool = False, fill: int | Sequence[int] = 0,
                       padding_mode: str = "constant") -> Built:
    return "image", [ArrayRandomCrop(_hw(size), padding, pad_if_needed, fill, padding_mode)]


def _array_flip(flip_code: int = 1) -> Built:
    axes = {1: "horizontal", 0: "vertical", -1: "both"}
    if flip_code not in axes:
        raise ValueError(f"flip_code must be 1, 0 or -1, got {flip_code}")
    return "image", [ArrayRandomFlip(axes[flip_code])]


# numpy versions of the CIFAR-style image ops (ssld.data.array_ops: torchvision's per-call overhead dominates
# small images); used when every image op of a pipeline has one, with the same arguments as the PIL version
ARRAY_OPS: dict[str, Callable[..., Built]] = {
    "Pad": _array_pad, "RandomCrop": _array_random_crop, "RandFlipImage": _array_flip, "ToCHWImage": _noop,
    "FitSize": _fit_size,
}
# ops that build_transform adds itself (not accepted in a config's transform_ops); they work on PIL and arrays
INTERNAL_OPS: dict[str, Callable[..., Built]] = {"FitSize": _fit_size}

OPS: dict[str, Callable[..., Built]] = {
    "DecodeImage": _decode, "RandCropImage": _rand_crop, "RandFlipImage": _rand_flip, "ResizeImage": _resize,
    "CropImage": _crop, "NormalizeImage": _normalize, "ToCHWImage": _noop, "AutoAugment": _auto_augment,
    "RandAugment": _rand_augment, "TimmAutoAugment": _timm_auto_augment, "RandomErasing": _random_erasing,
    "Pad": _pad, "RandomCrop": _random_crop, "Grayscale": _grayscale, "Padv2": _padv2,
    "RandomCropImage": _random_crop_image,
}
