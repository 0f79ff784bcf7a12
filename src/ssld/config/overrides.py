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


def apply_override(cfg: dict[str, Any], text: str) -> None:
    """Set one override into the raw config dict, creating intermediate mappings when needed."""
    parts, value = parse_override(text)
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
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
        else:
            raise UserError(f"-o {text!r}: {'.'.join(parts[:i])} is a value, not a section")
