"""The package's floors run one way (docs/architecture.md): a module imports only its own package and the floors
below it, never a higher floor and never a sibling package of its own floor (engine, mining and deploy each stand
alone on theirs). Every ``import`` statement counts, also those inside functions."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "ssld"

FLOORS: dict[str, int] = {
    "utils": 0, "errors": 0,
    "config": 1,
    "data": 2, "models": 2, "losses": 2,
    "engine": 3, "mining": 3, "deploy": 3,
    "pipeline": 4, "report": 4, "transfer": 4, "api": 4,
    "commands": 5, "cli": 5, "__main__": 5,
}
# ssld.errors is a module beside utils; floor 4 composes floor 3's work, so its packages may use each other (the
# pipeline's report stage); floor 5 is the command line.
SIBLINGS_ALLOWED = {0, 4, 5}
# Known exceptions, each with its reason. load_config checks model and loss names against their registries (a
# lazy import inside check_semantics: the config floor has no registry of its own).
EXCEPTIONS = {("config", "models"), ("config", "losses")}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom) and node.level:
            found.append((node.lineno, "<relative>"))
    return found


def _package(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return parts[0]


def violations() -> list[str]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        pkg = _package(path)
        if pkg == "__init__":  # the package root: the lazy façade above every floor
            continue
        assert pkg in FLOORS, f"{path.relative_to(SRC)}: package '{pkg}' has no floor in FLOORS"
        floor = FLOORS[pkg]
        for line, name in _imports(path):
            where = f"src/ssld/{path.relative_to(SRC)}:{line}"
            if name == "<relative>":
                out.append(f"{where}: relative import (write ssld.<package>...)")
                continue
            if name == "ssld" or not name.startswith("ssld."):
                continue
            target = name.split(".")[1]
            if target == pkg or (pkg, target) in EXCEPTIONS:
                continue
            if target not in FLOORS:
                out.append(f"{where}: imports {name}, which has no floor")
            elif FLOORS[target] > floor:
                out.append(f"{where}: {pkg} (floor {floor}) imports {name} (floor {FLOORS[target]})")
            elif FLOORS[target] == floor and floor not in SIBLINGS_ALLOWED:
                out.append(f"{where}: {pkg} imports its floor-{floor} sibling {name}")
    return out


def test_no_module_imports_a_higher_floor_or_a_sibling() -> None:
    found = violations()
    assert not found, "\n".join(found)


def test_the_check_sees_a_violation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checker itself: an engine module importing the pipeline is reported with its file and line."""
    fake = tmp_path / "ssld"
    (fake / "engine").mkdir(parents=True)
    (fake / "engine" / "x.py").write_text("import os\n\ndef f():\n    from ssld.pipeline.runner import Stage\n")
    (fake / "mining").mkdir()
    (fake / "mining" / "y.py").write_text("from ssld.engine import trainer\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", fake)
    found = violations()
    assert found == ["src/ssld/engine/x.py:4: engine (floor 3) imports ssld.pipeline.runner (floor 4)",
                     "src/ssld/mining/y.py:1: mining imports its floor-3 sibling ssld.engine"]
