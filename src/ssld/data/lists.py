"""Image lists: PaddleClas list files (``relative/path.png 3``) and folder-per-class trees, read and written.

A list line is ``<relative path> [label]`` separated by a space or tab; a line without a label, or with ``-1``,
is an unlabeled image (label ``-1``). Blank lines and ``#`` comments are skipped. Paths cannot contain spaces.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from ssld.errors import UserError
from ssld.utils.io import atomic_write_text

UNLABELED = -1
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class Sample(NamedTuple):
    """One image: ``path`` already joined with the image root; ``label == -1`` means unlabeled."""

    path: str
    label: int


def list_lines(list_path: str | os.PathLike[str], image_root: str | os.PathLike[str],
               line_format: str) -> tuple[Path, Path, list[tuple[int, str]]]:
    """``(list path, image root, [(line number, stripped line)])`` of a list file's non-blank, non-comment lines,
    after one-line UserErrors for a missing, unreadable or non-text list or a missing root (``line_format``, e.g.
    ``'path label' lines``, says what the list should hold)."""
    lp, root = Path(list_path), Path(image_root)
    if lp.is_dir():
        raise UserError(f"{lp}: is a directory, not a list file of {line_format}")
    if not lp.is_file():
        raise UserError(f"{lp}: list file not found")
    if not root.is_dir():
        raise UserError(f"{root}: image root not found (list {lp})")
    try:
        text = lp.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{lp}: not a text list file (byte {e.start} is not UTF-8 text)") from None
    except OSError as e:
        raise UserError(f"{lp}: cannot read list file: {e.strerror or e}") from None
    stripped = ((n, raw.strip()) for n, raw in enumerate(text.splitlines(), start=1))
    return lp, root, [(n, line) for n, line in stripped if line and not line.startswith("#")]


def read_list(list_path: str | os.PathLike[str], image_root: str | os.PathLike[str], num_classes: int | None = None,
              classes_key: str = "--class-num") -> list[Sample]:
    """Parse a PaddleClas list file; relative paths are joined onto ``image_root``.

    Raises UserError for a missing list file or root, and ``<file>:<line>: ...`` for a malformed line or, given
    ``num_classes`` (named ``classes_key`` in the message, e.g. ``Arch.class_num``), a label outside
    ``0..num_classes-1`` (a network with that many outputs could not score it).
    """
    lp, root, lines = list_lines(list_path, image_root, "'path label' lines")
    samples: list[Sample] = []
    for lineno, line in lines:
        parts = line.split()
        if len(parts) > 2:
            raise UserError(f"{lp}:{lineno}: expected '<path> [label]', got {len(parts)} fields (no spaces in paths)")
        label = UNLABELED
        if len(parts) == 2:
            try:
                label = int(parts[1])
            except ValueError:
                raise UserError(f"{lp}:{lineno}: label '{parts[1]}' is not an integer") from None
            if label < UNLABELED:
                raise UserError(f"{lp}:{lineno}: label {label} is negative (use -1 or no label for unlabeled)")
            if num_classes is not None and label >= num_classes:
                raise UserError(f"{lp}:{lineno}: label {label} is out of range for {classes_key} {num_classes} "
                                f"(labels are 0..{num_classes - 1}, or -1 for unlabeled)")
        samples.append(Sample(os.path.join(root, parts[0]), label))
    return samples


def read_image_folder(root: str | os.PathLike[str]) -> list[Sample]:
    """Folder-per-class tree (like torchvision ImageFolder): class ``i`` is the i-th sub-folder in sorted order."""
    r = Path(root)
    if not r.is_dir():
        raise UserError(f"{r}: image root not found")
    classes = sorted(d.name for d in r.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise UserError(f"{r}: no class sub-folders (ImageFolder expects <root>/<class>/<image>)")
    samples: list[Sample] = []
    for label, name in enumerate(classes):
        for dirpath, dirnames, filenames in os.walk(r / name, followlinks=True):
            dirnames.sort()
            for f in sorted(filenames):
                if f.lower().endswith(IMAGE_EXTENSIONS):
                    samples.append(Sample(os.path.join(dirpath, f), label))
    return samples


def write_list(
    path: str | os.PathLike[str],
    entries: Iterable[Sample | tuple[str, int] | str],
    root: str | os.PathLike[str] | None = None,
) -> int:
    """Write a list file atomically; returns the number of lines.

    ``entries`` are samples, ``(path, label)`` pairs or bare paths (unlabeled). With ``root``, paths are written
    relative to it (so ``read_list(path, root)`` gives them back). Unlabeled entries are written without a label.
    """
    lines: list[str] = []
    for entry in entries:
        p, label = (entry, UNLABELED) if isinstance(entry, str) else (entry[0], int(entry[1]))
        rel = os.path.relpath(p, root) if root is not None else str(p)
        if any(c.isspace() for c in rel):
            raise UserError(f"{path}: cannot write path with whitespace to a list file: {rel!r}")
        lines.append(rel if label == UNLABELED else f"{rel} {label}")
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)
