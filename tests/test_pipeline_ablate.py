"""``ssld ablate`` bookkeeping: rows resolve to pipelines, results are cached per row × seed, the table lands in
the results file between its markers. Training is replaced by a stub (the pipeline itself is tested elsewhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers.paths import FM_CONFIGS

from ssld.errors import UserError
from ssld.pipeline import ablate
from ssld.pipeline.ablate import load_ablation, run_ablation
from ssld.pipeline.api import open_pipeline
from ssld.pipeline.config import deep_merge

ABLATION = """\
Ablation:
  pipeline: {fm}/ssld.yaml
  seeds: [0, 1]
  out_dir: {out}
  results: {results}
  row_defaults: {{baseline: {{enabled: false}}}}
  rows:
    - {{name: reference, claim: "the recipe"}}
    - {{name: no finetune, claim: "+0.4 from finetune", overrides: {{finetune: {{enabled: false}}}}}}
"""


def write_file(tmp: Path) -> Path:
    path = tmp / "ab.yaml"
    path.write_text(ABLATION.format(fm=FM_CONFIGS, out=tmp / "runs", results=tmp / "results.md"))
    return path


def test_shipped_ablation_rows_build_pipelines() -> None:
    ab, base = load_ablation(FM_CONFIGS / "ablations.yaml")
    assert len(ab.rows) >= 14
    for row in ab.rows:
        pipe = open_pipeline(base / ab.pipeline, profile=ab.profile, seed=0, run_dir="unused",
                             extra=deep_merge(ab.row_defaults, row.overrides))
        names = [s.name for s in pipe.stages]
        assert "distill" in names and "eval" in names


def test_rows_are_cached_and_resumed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int]] = []

    def fake(ab: Any, base: Path, row: Any, seed: int, out: Path) -> dict[str, Any]:
        calls.append((row.name, seed))
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed during the third cell
        ft = None if row.name == "no finetune" else 85.0 + seed
        base = 82.0 if row.name == "reference" else None
        return {"teacher": 86.0, "distill": 83.0 + seed, "finetune": ft, "baseline": base}

    monkeypatch.setattr(ablate, "run_row_seed", fake)
    path = write_file(tmp_path)
    (tmp_path / "results.md").write_text("# Results\n\nintro\n")
    with pytest.raises(KeyboardInterrupt):
        run_ablation(path, out=lambda s: None)
    run_ablation(path, out=lambda s: None)
    assert calls == [("reference", 0), ("reference", 1), ("no finetune", 0), ("no finetune", 0), ("no finetune", 1)]
    text = (tmp_path / "results.md").read_text()
    assert text.startswith("# Results\n\nintro\n") and text.count("ssld-ablate:begin") == 1
    assert "| reference | the recipe | 86.00 ± 0.00 | 82.00 ± 0.00 | 83.50 ± 0.71 | 85.50 ± 0.71 |  |  | 2 |" in text
    assert "| no finetune | +0.4 from finetune | 86.00 ± 0.00 | - | 83.50 ± 0.71 | - | +0.00 | -2.00 | 2 |" in text
    run_ablation(path, out=lambda s: None, table_only=True)
    assert len(calls) == 5 and (tmp_path / "results.md").read_text().count("ssld-ablate:begin") == 1


def test_unknown_row_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"--rows: unknown row\(s\) \['nope'\]"):
        run_ablation(write_file(tmp_path), rows=["nope"], out=lambda s: None)


def test_seed_list_runs_only_those_seeds_and_the_table_keeps_the_others(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int]] = []

    def fake(ab: Any, base: Path, row: Any, seed: int, out: Path) -> dict[str, Any]:
        calls.append((row.name, seed))
        return {"teacher": 86.0, "distill": 83.0 + seed, "finetune": 85.0 + seed, "baseline": 82.0}

    monkeypatch.setattr(ablate, "run_row_seed", fake)
    path = write_file(tmp_path)
    run_ablation(path, seeds=[1], rows=["reference"], out=lambda s: None)  # as a second process would
    assert calls == [("reference", 1)]
    assert (tmp_path / "runs" / "results" / "reference" / "s1.json").is_file()
    run_ablation(path, seeds=[0], rows=["reference"], out=lambda s: None)
    text = (tmp_path / "results.md").read_text()
    assert "| reference | the recipe | 86.00 ± 0.00 | 82.00 ± 0.00 | 83.50 ± 0.71 | 85.50 ± 0.71 |  |  | 2 |" in text


def test_seeds_and_seed_are_exclusive_on_the_command_line(tmp_path: Path) -> None:
    from ssld.cli import main

    assert main(["ablate", "-c", str(write_file(tmp_path)), "--seeds", "2", "--seed", "1"]) == 2


def test_cached_cell_of_another_recipe_runs_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int]] = []

    def fake(ab: Any, base: Path, row: Any, seed: int, out: Path) -> dict[str, Any]:
        calls.append((row.name, seed))
        return {"teacher": 86.0, "distill": 83.0, "finetune": 85.0, "baseline": 82.0}

    monkeypatch.setattr(ablate, "run_row_seed", fake)
    path = write_file(tmp_path)
    run_ablation(path, seeds=[0], out=lambda s: None)
    run_ablation(path, seeds=[0], out=lambda s: None)
    assert calls == [("reference", 0), ("no finetune", 0)]  # cached: same recipe
    path.write_text(path.read_text().replace("{finetune: {enabled: false}}",
                                             "{finetune: {enabled: false}, select: {k: 7}}"))
    table = run_ablation(path, seeds=[0], out=lambda s: None, table_only=True)
    assert "| no finetune | +0.4 from finetune | - | - | - | - |" in table  # the stale cell is not shown
    said: list[str] = []
    run_ablation(path, seeds=[0], out=said.append)
    assert calls[2:] == [("no finetune", 0)]  # only the changed row
    assert any("cached result is of another recipe" in s for s in said)


def test_rows_option_takes_a_name_with_commas_whole(tmp_path: Path) -> None:
    from ssld.commands.ablate import _rows

    path = write_file(tmp_path)
    path.write_text(path.read_text().replace("name: no finetune", "name: 'no finetune, same steps'"))
    assert _rows("no finetune, same steps", str(path)) == ["no finetune, same steps"]
    assert _rows("reference,no-finetune-same-steps", str(path)) == ["reference", "no-finetune-same-steps"]


def test_final_value_is_the_last_stage_a_row_ran() -> None:
    from ssld.pipeline.ablate import _values, summarize

    cells = [summarize({"distill": {"top1": 80.0}, "finetune": {"top1": 81.0}, "fixres": {"top1": 82.0}}),
             summarize({"distill": {"top1": 70.0}, "finetune": {"top1": 71.0}}),
             summarize({"distill": {"top1": 60.0}})]
    assert _values(cells, "final") == [82.0, 71.0, 60.0]
