"""``-o Section.key=value`` overrides, as PaddleClas ``tools/train.py -o`` (list indices too: ``models.0``)."""

from __future__ import annotations

from typing import Any

import yaml

from ssld.errors import UserError


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``A.b.0.c=value`` into a key path and a YAML-parsed value."""
    if "=" not in text:
        raise UserError(f"-o {text!r}: expected KEY.PATH=VALUE, e.g. -o Global.epochs=10")
    key, _, raw = text.partition("=")
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise UserError(f"-o {text!r}: empty key path")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return parts, value


def _own(container: Any, key: Any) -> Any:
    """``container[key]`` replaced by a shallow copy of itself (when a mapping or list) and returned: a YAML alias
    shares one object between places, and ``-o`` must change only the place it names."""
    child = container[key]
    if isinstance(child, dict):
        container[key] = dict(child)
    elif isinstance(child, list):
        container[key] = list(child)
    return container[key]


def apply_override(cfg: dict[str, Any], text: str) -> None:
    """Set one ``-o KEY.PATH=VALUE`` override into the raw config dict (see :func:`set_path`)."""
    parts, value = parse_override(text)
    set_path(cfg, parts, value, text)


def set_path(cfg: dict[str, Any], parts: list[str], value: Any, text: str | None = None) -> None:
    """Set ``value`` at the key path ``parts`` of a raw config dict, creating intermediate mappings when needed
    (only the mappings and lists on the path are copied, so a YAML alias elsewhere keeps its value). ``text`` is
    the override as the user wrote it, for error messages."""
    text = text if text is not None else ".".join(parts)
    node: Any = cfg
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
                raise UserError(f"-o {text!r}: {where}: not a valid index into a list of {len(node)}")
            if last:
                node[int(part)] = value
            else:
                node = _own(node, int(part))
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = {}
                node = _own(node, part)
        else:
            raise UserError(f"-o {text!r}: {'.'.join(parts[:i])} is a value, not a section")
