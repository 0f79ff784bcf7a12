"""Load a YAML config, apply ``-o`` overrides, validate it, and turn every mistake into one line.

Errors name the file, the line (when the key came from the file) and the key path, e.g.
``configs/x.yaml:12: Arch.models[1].Student.name: unknown model 'MobileNetV3_smal_x1_0'; did you mean ...``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ssld.config.overrides import apply_override
from ssld.config.schema import SSLDConfig
from ssld.errors import UserError

KeyPath = tuple[str | int, ...]


def _line_map(node: yaml.Node, path: KeyPath = (), out: dict[KeyPath, int] | None = None) -> dict[KeyPath, int]:
    """Map each key path of a composed YAML tree to its 1-based line number."""
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            sub = (*path, k.value)
            out[sub] = k.start_mark.line + 1
            _line_map(v, sub, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _line_map(v, (*path, i), out)
    return out


def format_path(loc: KeyPath) -> str:
    """``('Arch', 'models', 1, 'Student', 'name')`` -> ``Arch.models[1].Student.name``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def read_yaml(path: str | Path) -> tuple[dict[str, Any], dict[KeyPath, int]]:
    """Read a YAML mapping and its key-to-line map; one-line errors for missing files and syntax errors."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: config file not found")
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{p}: cannot read config: {e}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark else str(p)
        raise UserError(f"{where}: YAML syntax error: {getattr(e, 'problem', None) or e}") from None
    if data is None:
        raise UserError(f"{p}: config file is empty")
    if not isinstance(data, dict):
        raise UserError(f"{p}: a config must be a mapping of sections (Global, Arch, ...)")
    return data, _line_map(node) if node is not None else {}


def _locate(lines: dict[KeyPath, int], loc: KeyPath) -> int | None:
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def validation_error_line(err: ValidationError, source: str, lines: dict[KeyPath, int]) -> str:
    """The first pydantic error as ``file:line: Key.path: message``."""
    first = err.errors()[0]
    loc = tuple(x for x in first["loc"] if not (isinstance(x, str) and x.startswith("function-")))
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = f"unknown key '{loc[-1]}'"
        parent = loc[:-1]
        if parent:
            from ssld.config.suggest import suggest_key

            hint = suggest_key(parent, str(loc[-1]))
            msg += f"; did you mean '{hint}'?" if hint else ""
    elif first["type"] == "missing":
        msg = "required key is missing"
    line = _locate(lines, loc)
    where = f"{source}:{line}" if line else source
    return f"{where}: {format_path(loc) or '(top level)'}: {msg}"


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = (), check_names: bool = True) -> SSLDConfig:
    """Read, override and validate a config. Raises :class:`UserError` with one line on any mistake."""
    data, lines = read_yaml(path)
    for text in overrides:
        apply_override(data, text)
    try:
        cfg = SSLDConfig.model_validate(data)
    except ValidationError as e:
        raise UserError(validation_error_line(e, str(path), lines)) from None
    if check_names:
        from ssld.config.semantic import check_semantics

        check_semantics(cfg, str(path), lines)
    return cfg
