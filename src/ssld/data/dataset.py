"""A map-style dataset over image lists with per-sample seeded augmentation, and a collate that skips bad files.

Each sample's augmentation is seeded from ``(seed, epoch, index)``, so it does not depend on which worker loads
it or on what ran before: a run resumed mid-epoch sees exactly the crops an uninterrupted run saw. Cached
images whose ops have a batch form are augmented a whole batch at a time (``load_batch``, ``ssld.data.batched``),
with the same independence from batch, worker and resume.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
from PIL import Image

from ssld.data.lists import Sample

if TYPE_CHECKING:
    from ssld.data.batched import BatchedAugment

log = logging.getLogger("ssld.data")


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit grayscale (``I;16*``) as 8-bit by its high byte; Pillow's RGB conversion would clip every value
    above 255 to white."""
    if img.mode.startswith("I;16"):
        return Image.fromarray((np.asarray(img).astype(np.uint16) >> 8).astype(np.uint8), "L")
    return img


def load_image(path: str) -> Image.Image | None:
    """Decode ``path`` to RGB, or ``None`` when it is missing, empty, truncated or not an image."""
    try:
        with Image.open(path) as img:
            return _to_8bit(img).convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        log.debug("unreadable image %s: %s", path, e)
        return None


def image_size(path: str) -> tuple[int, int] | None:
    """``(w, h)`` from the file's header, without decoding it; ``None`` as :func:`load_image`."""
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def load_image_reduced(path: str, min_side: int, mode: str = "RGB",
                       long_side: bool = False) -> tuple[Image.Image, tuple[int, int]] | None:
    """Decode ``path`` in ``mode`` at a size whose short side (``long_side``: long side) stays at least
    ``min_side``, and its full size ``(w, h)``; ``None`` as :func:`load_image`. A JPEG is decoded at 1/2, 1/4 or
    1/8 scale (its DCT scaling: a 20-megapixel photograph decodes ~10x faster), then box-reduced by an integer
    factor; images under twice ``min_side`` come back as :func:`load_image` gives them. For work that needs only
    a small version of a photograph (hashes, thumbnails, SIFT at a bounded size)."""
    pick = max if long_side else min
    try:
        with Image.open(path) as img:
            size = img.size
            k = pick(size) // max(min_side, 1)
            if k >= 2:
                img.draft(mode, (size[0] // k, size[1] // k))  # JPEG only: a no-op for other formats
            out = _to_8bit(img).convert(mode)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        log.debug("unreadable image %s: %s", path, e)
        return None
    k = pick(out.size) // max(min_side, 1)
    return (out.reduce(k) if k >= 2 else out), size


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A well-mixed 63-bit seed for ``(seed, epoch, index)`` (neighbouring samples get unrelated streams)."""
    return int(np.random.SeedSequence([seed & 0xFFFFFFFF, epoch, index]).generate_state(1, np.uint64)[0] >> 1)


class _SeededRNG:
    """Seed torch, ``random`` and numpy for one sample.

    In the main process the caller's RNG states are put back afterwards; in a DataLoader worker nothing else
    draws from them, so the (costly, ~0.3 ms) save and restore is skipped there.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.restore = torch.utils.data.get_worker_info() is None

    def __enter__(self) -> None:
        if self.restore:
            self._fork = torch.random.fork_rng(devices=[])
            self._fork.__enter__()
            self._py, self._np = random.getstate(), np.random.get_state()
        torch.default_generator.manual_seed(self.seed)  # CPU only: torch.manual_seed also seeds accelerators
        random.seed(self.seed)
        np.random.seed(self.seed % (1 << 32))

    def __exit__(self, *exc: object) -> None:
        if self.restore:
            random.setstate(self._py)
            np.random.set_state(self._np)
            self._fork.__exit__(*exc)


class Skipped(NamedTuple):
    """A sample that could not be read (what the loader's view of the dataset yields instead of ``None``)."""

    index: int


class ImageListDataset(torch.utils.data.Dataset):
    """``ds[i]`` or ``ds[(i, epoch)]`` -> ``{"image", "label", "index"}``, or ``None`` for an unreadable file."""

    def __init__(self, samples: Sequence[Sample], transform: Callable[[Any], torch.Tensor], seed: int = 0):
        self.samples = list(samples)
        self.transform = transform
        self.seed = seed
        self.decoded: list[np.ndarray | None] | None = None  # see cache_decoded()
        self.stacked: np.ndarray | None = None  # the cache as one NHWC array when every image has one shape
        self.readable: np.ndarray | None = None  # per row of ``stacked``: False where the file was unreadable
        self.batched: BatchedAugment | None = None  # see use_batched()

    def cache_decoded(self, progress: bool = False) -> int:
        """Decode every image once into memory (HWC uint8 arrays) and serve those from now on.

        For small datasets read for many epochs (Fashion-MNIST, CIFAR): a 28 px PNG costs ~110 us to decode
        per read. DataLoader workers forked afterwards share the arrays. Unreadable files stay ``None`` (the
        sample is skipped as before; in ``stacked`` its row is zeros and ``readable`` is False). Returns the bytes
        held.
        """
        from tqdm import tqdm

        decoded: list[np.ndarray | None] = []
        for path, _ in tqdm(self.samples, desc="decoding images into memory", unit="img", disable=not progress,
                            leave=False):
            img = load_image(path)
            decoded.append(None if img is None else np.asarray(img))
        good = [a for a in decoded if a is not None]
        shapes = {a.shape for a in good}
        if len(shapes) == 1:
            filler = np.zeros_like(good[0])
            self.readable = np.array([a is not None for a in decoded])
            self.stacked = np.stack([filler if a is None else a for a in decoded])
            self.stacked.flags.writeable = False
            decoded = [row if ok else None for row, ok in zip(self.stacked, self.readable, strict=True)]  # views
        elif len(shapes) > 1:
            log.info("cache_images: the images come in %d sizes (e.g. %s); whole-batch augmentation needs one "
                     "size, so each image is augmented on its own", len(shapes),
                     ", ".join("x".join(map(str, s[:2])) for s in sorted(shapes)[:3]))
        self.decoded = decoded
        return sum(a.nbytes for a in decoded if a is not None)

    def use_batched(self) -> bool:
        """Serve whole batches through ``load_batch`` when the images are cached with one shape and the
        transform has a batch form (``ssld.data.batched``); returns whether it does."""
        from ssld.data.batched import batched_form

        self.batched = batched_form(self.transform) if self.stacked is not None else None
        return self.batched is not None

    def load_batch(self, keys: Sequence[int | tuple[int, int]]) -> dict[str, Any] | None:
        """The collated batch of ``keys`` augmented as a whole, or ``None`` when ``use_batched`` is off."""
        if self.batched is None or self.stacked is None:
            return None
        pairs = [(int(k[0]), int(k[1])) if isinstance(k, tuple) else (int(k), 0) for k in keys]
        index = np.fromiter((i for i, _ in pairs), dtype=np.int64, count=len(pairs))
        epoch = np.fromiter((e for _, e in pairs), dtype=np.int64, count=len(pairs))
        ok = self.readable[index] if self.readable is not None else np.ones(len(index), dtype=bool)
        bad = index[~ok].tolist()  # unreadable files: skipped and reported, as ``collate`` does
        index, epoch = index[ok], epoch[ok]
        return {
            "image": (self.batched(self.stacked[index], self.seed, epoch, index) if len(index)
                      else torch.empty(0, 3, 0, 0)),
            "label": torch.tensor([self.samples[i].label for i in index.tolist()], dtype=torch.long),
            "index": torch.from_numpy(index),
            "bad": bad,
        }

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> list[int]:
        return [s.label for s in self.samples]

    def load(self, key: int | tuple[int, int]) -> dict[str, Any] | Skipped:
        """Like ``ds[key]`` but an unreadable file gives ``Skipped(index)``, so ``collate`` can name it."""
        index, epoch = (int(key[0]), int(key[1])) if isinstance(key, tuple) else (int(key), 0)
        path, label = self.samples[index]
        img = load_image(path) if self.decoded is None else self.decoded[index]
        if img is None:
            return Skipped(index)
        with _SeededRNG(sample_seed(self.seed, epoch, index)):
            image = self.transform(img)
        return {"image": image, "label": label, "index": index}

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any] | None:
        item = self.load(key)
        return None if isinstance(item, Skipped) else item


class LoaderView(torch.utils.data.Dataset):
    """What the DataLoader indexes: the dataset's ``load`` (``Skipped`` markers instead of ``None``)."""

    def __init__(self, dataset: ImageListDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any] | Skipped:
        return self.dataset.load(key)

    def __getitems__(self, keys: list[int | tuple[int, int]]) -> list[dict[str, Any] | Skipped] | dict[str, Any]:
        """A batch at once (the DataLoader calls this when it exists): already collated when the dataset has a
        batched path, else the items one by one."""
        batch = getattr(self.dataset, "load_batch", lambda _: None)(keys)
        return batch if batch is not None else [self.dataset.load(k) for k in keys]


def collate(batch: Sequence[dict[str, Any] | Skipped | None] | dict[str, Any]) -> dict[str, Any]:
    """Stack the readable items; ``bad`` lists the indices of skipped ones (``-1`` where only ``None`` came).

    An all-bad batch gives an image tensor with 0 rows (callers skip it). A batch collated already
    (``ImageListDataset.load_batch``) passes through.
    """
    if isinstance(batch, dict):
        return batch
    good = [b for b in batch if isinstance(b, dict)]
    bad = [b.index if isinstance(b, Skipped) else -1 for b in batch if not isinstance(b, dict)]
    return {
        "image": torch.stack([b["image"] for b in good]) if good else torch.empty(0, 3, 0, 0),
        "label": (torch.stack([b["label"] for b in good]) if good and isinstance(good[0]["label"], torch.Tensor)
                  else torch.tensor([b["label"] for b in good], dtype=torch.long)),  # multi-label rows: tensors
        "index": torch.tensor([b["index"] for b in good], dtype=torch.long),
        "bad": bad,
    }
