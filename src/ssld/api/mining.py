"""``ssld.label``, ``ssld.dedup``, ``ssld.select``: the mining steps on lists of image paths, from Python.

Each is :mod:`ssld.mining.jobs` (what ``ssld label``, ``ssld dedup`` and ``ssld select`` call) with Python
arguments: a list of paths (or a list file), the teacher's config as a YAML path or an ``SSLDConfig`` (its
``Arch`` is the teacher, its ``DataLoader.Eval`` the preprocessing), and result objects back. A list of paths is
written as a list file into the output folder, so a rerun resumes (label) against the same source list.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ssld.config.schema import SSLDConfig
from ssld.errors import UserError

Images = Sequence[str | os.PathLike[str]] | str | os.PathLike[str]


def _config(config: str | os.PathLike[str] | SSLDConfig) -> tuple[SSLDConfig, str]:
    if isinstance(config, SSLDConfig):
        return config, "the config"
    from ssld.config import load_config

    return load_config(config), str(config)


def _list_file(images: Images, folder: Path, name: str, fn: str, arg: str) -> Path:
    """A list file of ``images``: the file itself when a path to one is given, else ``folder/name`` (unlabeled
    lines, ``path -1``)."""
    if isinstance(images, (str, os.PathLike)):
        if not Path(images).is_file():
            raise UserError(f"ssld.{fn}: {arg}: list file not found: {images} (or pass a list of image paths)")
        return Path(images)
    paths = [str(p) for p in images]
    if not paths:
        raise UserError(f"ssld.{fn}: {arg}: no images")
    if any(p.strip() != p or "\n" in p for p in paths):
        raise UserError(f"ssld.{fn}: {arg}: image paths with leading/trailing spaces or newlines cannot be listed")
    from ssld.utils.io import atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    atomic_write_text(target, "".join(f"{p} -1\n" for p in paths))
    return target


_OPTIONS = {"--list": "images", "--pool": "pool", "--ref": "reference"}  # the CLI options the jobs' messages name


def _named(fn: str, err: UserError) -> UserError:
    """The job's message with its leading CLI option written as this function's argument."""
    text = str(err)
    if text.startswith("--"):
        option, rest = re.match(r"(--[\w-]+)(.*)", text, re.DOTALL).groups()  # type: ignore[union-attr]
        text = _OPTIONS.get(option, option.removeprefix("--").replace("-", "_")) + rest
    return UserError(f"ssld.{fn}: {text}")


def label(images: Images, config: str | os.PathLike[str] | SSLDConfig, out: str | os.PathLike[str], *,
          root: str | os.PathLike[str] = ".", weights: str | None = None, topk: int = 10, full: bool = False,
          embed: bool = True, batch_size: int | None = None) -> Any:
    """Soft-label ``images`` with the config's teacher (``weights``, or its pretrained path) into the store
    ``out``; returns ``ssld.mining.jobs.LabelResult`` (``store``, ``count``, ``skipped``; None on ranks > 0).
    Store rows are keyed by path relative to ``root``, as ``distill(soft_labels=...)`` looks them up."""
    from ssld.mining.jobs import label_images

    cfg, name = _config(config)
    source = _list_file(images, Path(out), "images.txt", "label", "images")
    try:
        return label_images(source, root, cfg, out, weights=weights, topk=topk, full=full, embed=embed,
                            batch_size=batch_size, config_name=name)
    except UserError as e:
        raise _named("label", e) from None


def dedup(pool: Images, reference: Images, config: str | os.PathLike[str] | SSLDConfig | None,
          out: str | os.PathLike[str], *, root: str | os.PathLike[str] = ".", weights: str | None = None,
          store: str | os.PathLike[str] | None = None, batch_size: int | None = None) -> Any:
    """Remove the ``pool`` images that copy a ``reference`` image (e.g. the validation set); returns
    ``ssld.mining.jobs.DedupResult`` (``kept_list``, ``removed``, ``report``). ``store``: a store ``label`` wrote
    with embeddings for the pool, so the teacher does not run over it again. ``config=None``: no teacher, the
    weight-free rules only (``ssld dedup --no-teacher``)."""
    from ssld.mining.jobs import dedup_images

    cfg, name = _config(config) if config is not None else (None, "the config")
    pool_list = _list_file(pool, Path(out), "pool.txt", "dedup", "pool")
    ref_list = _list_file(reference, Path(out), "reference.txt", "dedup", "reference")
    try:
        return dedup_images(pool_list, ref_list, root, cfg, out, weights=weights, store=store,
                            batch_size=batch_size, config_name=name)
    except UserError as e:
        raise _named("dedup", e) from None


def select(store: str | os.PathLike[str], k: int, out: str | os.PathLike[str], *,
           keep: str | os.PathLike[str] | None = None, min_score: float = 0.0, assign_label: bool = False,
           merge: str | os.PathLike[str] | None = None) -> Any:
    """The ``k`` most confident images per class of ``store`` (only those of ``keep``, e.g. ``dedup``'s
    ``kept_list``) as a list file ``out``; ``merge`` (a labeled list) also writes it followed by the selection.
    Returns ``ssld.mining.jobs.SelectResult`` (``out``, ``stats``, ``merged``)."""
    from ssld.mining.jobs import select_images

    try:
        return select_images(store, k, out, keep=keep, min_score=min_score, assign_label=assign_label,
                             merge=merge)
    except UserError as e:
        raise _named("select", e) from None
