"""Real photographs (scikit-image's samples) and edited copies of them, for the near-duplicate tests."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

REF_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins")
OTHER_PHOTOS = ("hubble_deep_field", "immunohistochemistry", "brick", "gravel", "grass", "page", "text", "moon",
                "cell", "clock", "retina")


def _photo(name: str, max_side: int = 192) -> Image.Image:
    import skimage.data

    img = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
    img.thumbnail((max_side, max_side), Image.BICUBIC)
    return img


def edited_copies(img: Image.Image) -> dict[str, Image.Image]:
    """The edits the dedup benchmark plants: resize, JPEG, crop 10%, flip, brightness +-20%, rotation 10 deg."""
    from PIL import ImageEnhance, ImageOps

    w, h = img.size
    return {
        "resize": img.resize((int(w * 0.6), int(h * 0.6)), Image.BILINEAR),
        "crop": img.crop((int(0.05 * w), int(0.05 * h), int(0.95 * w), int(0.95 * h))),
        "flip": ImageOps.mirror(img),
        "bright": ImageEnhance.Brightness(img).enhance(1.2),
        "dark": ImageEnhance.Brightness(img).enhance(0.8),
        "rotate": img.rotate(10, resample=Image.BILINEAR),
        "flip_rotate": ImageOps.mirror(img).rotate(-8, resample=Image.BILINEAR),
    }


def write_photo_fixture(root: Path) -> dict[str, list[str]]:
    """Reference photos, their edited copies (some saved as JPEG quality 50-90) and unrelated photos in the pool.

    Returns the relative paths: ``ref``, ``copies`` (pool), ``others`` (pool) and ``copy_source`` pairs.
    """
    (root / "ref").mkdir(parents=True, exist_ok=True)
    (root / "pool").mkdir(parents=True, exist_ok=True)
    out: dict[str, list[str]] = {"ref": [], "copies": [], "others": [], "copy_source": []}
    for name in REF_PHOTOS:
        img = _photo(name)
        img.save(root / "ref" / f"{name}.png")
        out["ref"].append(f"ref/{name}.png")
        for j, (edit, copy) in enumerate(edited_copies(img).items()):
            ext = "jpg" if j % 2 else "png"
            rel = f"pool/{name}_{edit}.{ext}"
            copy.save(root / rel, **({"quality": 50 + 10 * (j % 5)} if ext == "jpg" else {}))
            out["copies"].append(rel)
            out["copy_source"].append(f"ref/{name}.png")
    for name in OTHER_PHOTOS:
        rel = f"pool/{name}.png"
        _photo(name).save(root / rel)
        out["others"].append(rel)
    return out
