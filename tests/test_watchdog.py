"""The stall watchdog: a training step that never returns, or a SIGTERM the stuck main thread cannot act on, ends
the run with one line and leaves the last checkpoint intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from helpers.configs import supervised_config, write_config
from helpers.fashion_mnist import export_fashion_mnist
from helpers.paths import ROOT


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_fashion_mnist(tmp_path_factory.mktemp("fm"), labeled_per_class=10, val_size=20, pool_size=10)


def _python(code: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def test_a_step_that_never_returns_ends_the_run_with_one_line(data: Path, tmp_path: Path) -> None:
    cfg = supervised_config(data, tmp_path / "o", epochs=1, stall_timeout=2, save_steps=1, eval_during_train=False)
    cfg["Arch"]["name"] = "cifar_resnet8x0_25"
    cfg["DataLoader"]["Train"]["sampler"]["batch_size"] = 10
    path = write_config(tmp_path / "c.yaml", cfg)
    proc = _python(f"""
        import time
        from ssld.engine import train_loop
        from ssld import cli
        real, calls = train_loop._forward_backward, []
        def hang_on_third(*args, **kwargs):
            calls.append(1)
            while len(calls) >= 3:  # a kernel that spins for ever, as torch's channels_last CPU backward can
                time.sleep(0.05)
            return real(*args, **kwargs)
        train_loop._forward_backward = hang_on_third
        cli.main(["train", "-c", {str(path)!r}])
    """)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("ssld: error:")]
    assert len(lines) == 1 and "Global.stall_timeout" in lines[0] and "latest.pt" in lines[0]
    assert "Traceback" not in err
    ckpt = torch.load(tmp_path / "o" / "checkpoints" / "latest.pt", weights_only=True)
    assert ckpt["step"] == 2  # the last complete checkpoint, before the stuck step


def test_sigterm_to_a_stuck_main_thread_ends_the_process_after_the_grace_period() -> None:
    proc = _python("""
        import time
        from ssld.engine.train_loop import StopRequest
        from ssld.engine.watchdog import Watchdog
        with Watchdog(0, "where: here", grace=1.0, poll=0.1), StopRequest():
            print("ready", flush=True)
            while True:  # no batch ever finishes: only the watchdog can end this
                time.sleep(0.05)
    """)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert time.monotonic() - start < 30
    assert "SIGTERM received" in err and "where: here" in err and "Traceback" not in err


def test_a_healthy_run_is_not_touched_by_the_watchdog() -> None:
    from ssld.engine import watchdog

    with watchdog.Watchdog(0.5, "x", poll=0.05):
        for _ in range(10):
            time.sleep(0.1)
            watchdog.beat()
