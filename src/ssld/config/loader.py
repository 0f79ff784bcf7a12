"""Load a YAML config, apply ``-o`` overrides, validate it, and turn every mistake into one line.

Errors name the file, the line (when the key came from the file) and the key path, e.g.
``configs/x.yaml:12: Arch.models[1].Student.name: unknown model 'MobileNetV3_smal_x1_0'; did you mean ...``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ssld.config.overrides import apply_override, parse_override
from ssld.config.schema import SSLDConfig
from ssld.errors import UserError

KeyPath = tuple[str | int, ...]
log = logging.getLogger("ssld.config")


class KeyLines(dict[KeyPath, int]):
    """Key path -> line in the config file, plus the ``-o`` overrides applied on top of it (``(key path, text)``):
    a key that came from the command line is cited as its ``-o`` option, not as a line of the file."""

    def __init__(self, lines: dict[KeyPath, int], overrides: list[tuple[KeyPath, str]] | None = None) -> None:
        super().__init__(lines)
        self.overrides = list(overrides or [])


def _line_map(node: yaml.Node, path: KeyPath = (), out: dict[KeyPath, int] | None = None,
              seen: set[int] | None = None, dups: list[tuple[KeyPath, int, int]] | None = None) -> dict[KeyPath, int]:
    """Map each key path of a composed YAML tree to its 1-based line number (an aliased node is walked once);
    a key set twice in one mapping goes to ``dups`` as ``(path, first line, second line)``."""
    out = {} if out is None else out
    seen = set() if seen is None else seen
    out.setdefault(path, node.start_mark.line + 1)
    if id(node) in seen:
        return out
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            sub = (*path, k.value)
            if sub in out and dups is not None:
                dups.append((sub, out[sub], k.start_mark.line + 1))
            out[sub] = k.start_mark.line + 1
            _line_map(v, sub, out, seen, dups)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _line_map(v, (*path, i), out, seen, dups)
    return out


def _self_containing(root: yaml.Node) -> yaml.Node | None:
    """A mapping or list that contains itself through an alias (``a: &a [*a]``), or None."""
    on_path: set[int] = set()
    done: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        if leaving:
            on_path.discard(id(node))
            done.add(id(node))
            continue
        if id(node) in on_path:
            return node
        if id(node) in done or not isinstance(node, yaml.CollectionNode):
            continue
        on_path.add(id(node))
        stack.append((node, True))
        children = [x for pair in node.value for x in pair] if isinstance(node, yaml.MappingNode) else node.value
        stack.extend((c, False) for c in children)
    return None


def where(source: str, lines: dict[KeyPath, int], loc: KeyPath) -> str:
    """Where the value at ``loc`` came from: ``-o 'KEY=VALUE'`` when it (or a section above it) was set on the
    command line; ``file:line`` of the key (or of its nearest section in the file), followed by
    ``(with -o '...')`` when overrides changed keys inside it; just the override when the key is not in the file."""
    loc_s = tuple(str(x) for x in loc)
    overrides = [(tuple(str(x) for x in p), text) for p, text in getattr(lines, "overrides", ())]
    above = [(len(p), i, text) for i, (p, text) in enumerate(overrides) if loc_s[:len(p)] == p]
    if above:
        return f"-o {max(above)[2]!r}"
    inside = [text for p, text in overrides if p[:len(loc_s)] == loc_s]
    if inside and loc not in lines:
        return f"-o {inside[-1]!r}"
    line = _locate(lines, loc)
    file = f"{source}:{line}" if line else source
    return file + (f" (with -o {inside[-1]!r})" if inside else "")


def format_path(loc: KeyPath) -> str:
    """``('Arch', 'models', 1, 'Student', 'name')`` -> ``Arch.models[1].Student.name``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def read_yaml(path: str | Path) -> tuple[dict[str, Any], dict[KeyPath, int]]:
    """Read a YAML mapping and its key-to-line map; one-line errors for missing files and syntax errors."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{p}: is a directory, not a config file (give the YAML file itself)")
    if not p.is_file():
        raise UserError(f"{p}: config file not found")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{p}: not a YAML text file (byte {e.start} is not UTF-8 text)") from None
    except OSError as e:
        raise UserError(f"{p}: cannot read config: {e.strerror or e}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        loop = _self_containing(node) if node is not None else None
        if loop is not None:
            raise UserError(f"{p}:{loop.start_mark.line + 1}: recursive YAML alias: this anchor's value contains "
                            "an alias to itself (e.g. 'a: &a [*a]')")
        data = yaml.safe_load(text)
        dups: list[tuple[KeyPath, int, int]] = []
        lines = _line_map(node, dups=dups) if node is not None else {}
    except yaml.YAMLError as e:
        mark, pos = getattr(e, "problem_mark", None), getattr(e, "position", None)  # a ReaderError has a position
        line = mark.line + 1 if mark else (text.count("\n", 0, pos) + 1 if isinstance(pos, int) else None)
        problem = str(getattr(e, "problem", None) or e).splitlines()[0]
        raise UserError(f"{p}{f':{line}' if line else ''}: YAML syntax error: {problem}") from None
    except RecursionError:
        raise UserError(f"{p}: YAML nested too deeply to be a config") from None
    for key, first, second in dups:  # YAML keeps the last value silently; an edit to the first one would be lost
        log.warning("warning: %s:%d: %s is set twice (also on line %d); the value on line %d is used", p, second,
                    format_path(key), first, second)
    if data is None:
        raise UserError(f"{p}: config file is empty")
    if not isinstance(data, dict):
        raise UserError(f"{p}: a config must be a mapping of sections (Global, Arch, ...), got a "
                        f"{type(data).__name__}")
    return data, lines


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
    value = first.get("input")
    if first["type"] not in ("missing", "extra_forbidden") and ", got " not in msg \
            and isinstance(value, (bool, int, float, str, list, dict)):
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..." if isinstance(value, str) else f"a {type(value).__name__}"
        msg += f", got {shown}"  # the rejected value
    return f"{where(source, lines, loc)}: {format_path(loc) or '(top level)'}: {msg}"


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = (), check_names: bool = True) -> SSLDConfig:
    """Read, override and validate a config. Raises :class:`UserError` with one line on any mistake."""
    data, file_lines = read_yaml(path)
    lines = KeyLines(file_lines)
    for text in overrides:
        apply_override(data, text)
        lines.overrides.append((tuple(parse_override(text)[0]), text))
    try:
        cfg = SSLDConfig.model_validate(data)
    except ValidationError as e:
        raise UserError(validation_error_line(e, str(path), lines)) from None
    if check_names:
        from ssld.config.semantic import check_semantics

        check_semantics(cfg, str(path), lines)
    return cfg
