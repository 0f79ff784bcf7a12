"""Report generation from a hand-built run directory (no training)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.pipeline import build_fixture_run

from ssld.cli import main
from ssld.errors import UserError
from ssld.report.report import write_report
from ssld.report.tables import result_rows, results_table


def test_rows_have_deltas_sizes_and_sources(tmp_path: Path) -> None:
    run = build_fixture_run(tmp_path / "run")
    rows = {r["stage"]: r for r in result_rows(run)}
    assert list(rows) == ["teacher", "baseline", "distill", "finetune"]
    assert rows["finetune"]["delta"] == pytest.approx(3.7)
    assert rows["distill"]["delta"] == pytest.approx(2.5)
    assert rows["baseline"]["delta"] is None
    assert rows["distill"]["train_images"] == 12000
    assert rows["finetune"]["source"] == "eval/results.json[finetune] ← finetune/student.safetensors"


def test_report_writes_markdown_and_pngs(tmp_path: Path) -> None:
    run = build_fixture_run(tmp_path / "run")
    path = write_report(run)
    text = path.read_text()
    assert path == run / "report.md"
    assert "| student after distill + finetune | cifar_resnet8 | 85.20 | +3.70 | 2000 | 160 |" in text
    assert "symmetric KL" in text and "DistillationDMLLoss" in text  # the loss actually used is named
    assert "never val" in text and "0.1" in text  # the baseline's lr came from held-out labeled data
    assert "96.5%" in text
    for png in ("accuracy.png", "learning_curves.png"):
        data = (run / "report" / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
        assert f"(report/{png})" in text


def test_report_command_prints_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = build_fixture_run(tmp_path / "run")
    assert main(["report", str(run)]) == 0
    out = capsys.readouterr().out
    assert "student, labels only (baseline)" in out and "81.50" in out and "+3.70" in out
    assert results_table(run) is not None


def test_report_before_eval_names_the_stage(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    with pytest.raises(UserError, match="eval stage"):
        write_report(tmp_path / "run")
    with pytest.raises(UserError, match="not found"):
        write_report(tmp_path / "nope")
