"""The stage runner on tiny fake stages: skipping, invalidation, resume after a kill, identity, missing inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ssld.errors import UserError
from ssld.pipeline.runner import Pipeline, Stage, StageContext, StageResult, read_done


class Recorder:
    """Fake stages that count their runs and write a file derived from their settings and upstream output."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def stage(self, name: str, deps: tuple[str, ...] = (), settings: dict | None = None,
              output: str | None = None, crash_once: bool = False) -> Stage:
        crashed = {"done": False}

        def run(ctx: StageContext) -> StageResult:
            self.calls.append(name + (" (resume)" if ctx.resume else ""))
            upstream_text = "".join((ctx.stage_dir(d) / "out.txt").read_text() for d in deps)
            progress = ctx.dir / "progress.txt"
            if crash_once and not crashed["done"]:
                progress.write_text("half")
                crashed["done"] = True
                raise KeyboardInterrupt
            text = f"{name}:{ctx.settings.get('v', output or 0)}|{upstream_text}"
            (ctx.dir / "out.txt").write_text(text)
            return StageResult(metrics={"acc": float(len(text))}, outputs=["out.txt"])

        return Stage(name=name, run=run, deps=deps, settings=settings or {}, key_metric="acc")


def chain(rec: Recorder, b_settings: dict | None = None, **kw) -> list[Stage]:
    return [
        rec.stage("a"),
        rec.stage("b", deps=("a",), settings=b_settings or {"v": 1}, **kw),
        rec.stage("c", deps=("b",)),
    ]


def test_rerun_skips_finished_stages(tmp_path: Path) -> None:
    rec = Recorder()
    p = Pipeline(tmp_path, chain(rec), {"source": "x"}, out=lambda s: None)
    p.run()
    assert rec.calls == ["a", "b", "c"]
    p.run()
    assert rec.calls == ["a", "b", "c"]
    assert [r.state for r in p.rows()] == ["done", "done", "done"]
    done = read_done(tmp_path / "c")
    assert done is not None and done["metrics"]["acc"] > 0 and done["wall_time_s"] >= 0


def test_changed_settings_rerun_stage_and_everything_after(tmp_path: Path) -> None:
    rec = Recorder()
    Pipeline(tmp_path, chain(rec), {"source": "x"}, out=lambda s: None).run()
    rec.calls.clear()
    p = Pipeline(tmp_path, chain(rec, b_settings={"v": 2}), {"source": "x"}, force=True, out=lambda s: None)
    assert [r.state for r in p.rows()] == ["done", "stale", "stale"]
    p.run()
    assert rec.calls == ["b", "c"]
    assert (tmp_path / "c" / "out.txt").read_text() == "c:0|b:2|a:0|"


def test_changed_upstream_output_invalidates_downstream(tmp_path: Path) -> None:
    rec = Recorder()
    p = Pipeline(tmp_path, chain(rec), {"source": "x"}, out=lambda s: None)
    p.run()
    rec.calls.clear()
    # --only reruns one stage; its output is the same, so downstream stays valid
    p.run(only="b")
    assert rec.calls == ["b"]
    assert [r.state for r in p.rows()] == ["done", "done", "done"]
    # a changed output of a (someone edited it and reran) makes b and c stale
    (tmp_path / "a" / "out.txt").write_text("edited")
    done = json.loads((tmp_path / "a" / "done.json").read_text())
    done["fingerprint"] = "changed"
    (tmp_path / "a" / "done.json").write_text(json.dumps(done))
    assert [r.state for r in p.rows()] == ["done", "stale", "stale"]
    p.run()
    assert rec.calls == ["b", "b", "c"]


def test_from_reruns_named_stage_and_later(tmp_path: Path) -> None:
    rec = Recorder()
    p = Pipeline(tmp_path, chain(rec), {"source": "x"}, out=lambda s: None)
    p.run()
    rec.calls.clear()
    p.run(start="b")
    assert rec.calls == ["b", "c"]


def test_kill_inside_stage_resumes_it(tmp_path: Path) -> None:
    rec = Recorder()
    stages = chain(rec, crash_once=True)
    p = Pipeline(tmp_path, stages, {"source": "x"}, out=lambda s: None)
    with pytest.raises(KeyboardInterrupt):
        p.run()
    assert [r.state for r in p.rows()] == ["done", "partial", "pending"]
    assert (tmp_path / "b" / "progress.txt").read_text() == "half"  # partial work kept for the resume
    assert read_done(tmp_path / "b") is None
    p.run()
    assert rec.calls == ["a", "b", "b (resume)", "c"]
    assert read_done(tmp_path / "b")["resumed"] is True


def test_partial_stage_with_other_inputs_restarts_clean(tmp_path: Path) -> None:
    rec = Recorder()
    p = Pipeline(tmp_path, chain(rec, crash_once=True), {"source": "x"}, out=lambda s: None)
    with pytest.raises(KeyboardInterrupt):
        p.run()
    p2 = Pipeline(tmp_path, chain(rec, b_settings={"v": 5}), {"source": "x"}, out=lambda s: None)
    p2.run()
    assert rec.calls[-2:] == ["b", "c"]
    assert not (tmp_path / "b" / "progress.txt").exists()


def test_run_dir_of_another_config_needs_force(tmp_path: Path) -> None:
    rec = Recorder()
    Pipeline(tmp_path, chain(rec), {"source": "x.yaml", "v": 1}, out=lambda s: None).run()
    other = Pipeline(tmp_path, chain(rec), {"source": "y.yaml", "v": 2}, out=lambda s: None)
    with pytest.raises(UserError, match=r"made by another config \(x.yaml\).*--force"):
        other.run()
    Pipeline(tmp_path, chain(rec), {"source": "y.yaml", "v": 2}, force=True, out=lambda s: None).run()
    assert rec.calls == ["a", "b", "c"]  # --force keeps the stages whose inputs did not change


def test_only_stage_with_missing_upstream_names_it(tmp_path: Path) -> None:
    rec = Recorder()
    p = Pipeline(tmp_path, chain(rec), {"source": "x"}, out=lambda s: None)
    with pytest.raises(UserError, match="needs the outputs of stage b.*--from b"):
        p.run(only="c")
    with pytest.raises(UserError, match="--only zzz: unknown"):
        p.run(only="zzz")


def test_reuse_links_matching_stage_from_another_run(tmp_path: Path) -> None:
    rec = Recorder()
    Pipeline(tmp_path / "base", chain(rec), {"source": "x"}, out=lambda s: None).run()
    rec.calls.clear()
    row = Pipeline(tmp_path / "row", chain(rec, b_settings={"v": 9}), {"source": "x"},
                   reuse_from=[tmp_path / "base"], out=lambda s: None)
    row.run()
    assert rec.calls == ["b", "c"]
    assert (tmp_path / "row" / "a").is_symlink()
    # invalidating the reused stage in the row must never delete the base run's files
    row.run(only="a")
    assert (tmp_path / "base" / "a" / "done.json").is_file()
    assert not (tmp_path / "row" / "a").is_symlink()


def test_status_table_lists_every_stage(tmp_path: Path) -> None:
    rec = Recorder()
    lines: list[str] = []
    Pipeline(tmp_path, chain(rec), {"source": "x"}, out=lines.append).run()
    end = lines[-1]
    assert "stage" in end and "key metric" in end
    for name in ("a", "b", "c"):
        assert any(line.startswith(name + " ") and "done" in line and "acc=" in line for line in end.splitlines())


def test_only_on_interrupted_stage_resumes_it(tmp_path: Path) -> None:
    rec = Recorder()
    p = Pipeline(tmp_path, chain(rec, crash_once=True), {"source": "x"}, out=lambda s: None)
    with pytest.raises(KeyboardInterrupt):
        p.run()
    p.run(only="b")
    assert rec.calls == ["a", "b", "b (resume)"]
    assert [r.state for r in p.rows()] == ["done", "done", "pending"]
