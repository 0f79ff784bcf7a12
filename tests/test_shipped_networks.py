"""Every network a shipped config trains survives a few CPU training steps at batch sizes 1, 2, 3, 8 and 16 with the
config's own defaults (memory format, precision, teacher BN mode, optimizer), each network in a child process
with a time limit: a native crash or a hang in torch's CPU kernels is a failed test that names the network and
the batch size, never a dead suite.

Run as a script, this file is the child: ``python tests/test_shipped_networks.py CONFIG [-o KEY=VALUE ...]``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers.paths import ROOT

BATCH_SIZES = (1, 2, 3, 8, 16)
STEPS_PER_BATCH_SIZE = 2
SMALL = "Global.image_shape=[3,64,64]"  # the ImageNet networks at a small input size (their last stage: 2x2)


def _trained_networks(arch: dict) -> tuple[str, ...]:
    """The names of the networks an ``Arch`` section trains (a frozen teacher only runs forward)."""
    if arch["name"] != "DistillationModel":
        return (arch["name"],)
    frozen = arch.get("freeze_params_list") or [False] * len(arch["models"])
    return tuple(next(iter(m.values()))["name"] for m, f in zip(arch["models"], frozen, strict=True) if not f)


def _training_configs() -> list[tuple[str, tuple[str, ...]]]:
    """(config, overrides) for each distinct network setting the shipped configs train."""
    fm = ROOT / "configs" / "fashion_mnist"
    cases = [(str(p.relative_to(ROOT)), ()) for p in sorted(fm.glob("*.yaml")) if p.stem not in ("ssld", "ablations")]
    # the networks the pipeline profiles and the ablation rows put into those configs
    cases += [("configs/fashion_mnist/teacher.yaml", (f"Arch.name={n}",)) for n in ("resnet56", "resnet8x4")]
    cases += [("configs/fashion_mnist/baseline.yaml", ("Arch.name=cifar_resnet8x0_5",)),
              ("configs/fashion_mnist/distill.yaml", ("Arch.models.1.Student.name=cifar_resnet8x0_5",))]
    seen: set[tuple[str, ...]] = set()
    for p in sorted((ROOT / "configs" / "imagenet").rglob("*.yaml")):
        trained = _trained_networks(yaml.safe_load(p.read_text())["Arch"])
        if trained not in seen:  # finetune and teacher-choice configs train the distill configs' students again
            seen.add(trained)
            cases.append((str(p.relative_to(ROOT)), (SMALL,)))
    return cases


CASES = _training_configs()


@pytest.mark.parametrize(("config", "overrides"), CASES,
                         ids=[f"{Path(c).parent.name}/{Path(c).stem}{'[' + ','.join(o) + ']' if o and o[0] != SMALL else ''}"
                              for c, o in CASES])
def test_shipped_network_trains_on_the_cpu_at_small_and_odd_batch_sizes(config: str, overrides: tuple[str, ...]) -> None:
    args = [sys.executable, __file__, config]
    for o in overrides:
        args += ["-o", o]
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=240, cwd=ROOT, check=False,
                              env={**os.environ, "OMP_NUM_THREADS": "1", "SSLD_PROGRESS": "0",
                                   "HF_HUB_OFFLINE": "1"})
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        started = [line for line in out.splitlines() if line.startswith("batch ")]
        pytest.fail(f"{config}: hung (240 s) at {started[-1] if started else 'model build'}")
    started = [line for line in proc.stdout.splitlines() if line.startswith("batch ")]
    assert proc.returncode == 0, (f"{config}: exit code {proc.returncode} at "
                                  f"{started[-1] if started else 'model build'}\n{proc.stderr[-3000:]}")
    assert proc.stdout.splitlines()[-1] == f"ok {len(BATCH_SIZES)} batch sizes"


def _child(argv: list[str]) -> int:
    """Build the config's model, loss and optimizer as training does, then step at each batch size."""
    import torch

    from ssld.config import load_config
    from ssld.engine.check import build_parts
    from ssld.engine.model_setup import prepare, use_channels_last
    from ssld.models.precision import resolve_precision

    torch.set_num_threads(1)
    config, overrides = argv[0], [argv[i + 1] for i in range(1, len(argv), 2)]
    cfg = load_config(config, [*overrides, "Global.device=cpu"])
    device = torch.device("cpu")
    model, loss_fn, optimizer = build_parts(cfg)
    tm = prepare(model, cfg, device)
    channels_last = use_channels_last(cfg.Global.channels_last, device)
    precision = resolve_precision(cfg.AMP, device)
    gen = torch.Generator().manual_seed(0)
    for bs in BATCH_SIZES:
        print(f"batch {bs}", flush=True)
        for _ in range(STEPS_PER_BATCH_SIZE):
            images = torch.randn(bs, *cfg.Global.image_shape, generator=gen)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            labels = torch.randint(0, cfg.Arch.class_num, (bs,), generator=gen)
            tm.model.train()
            with precision.autocast():
                loss = loss_fn(tm.model(images), labels)["loss"]
            assert torch.isfinite(loss), f"batch {bs}: loss {float(loss)}"
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    print(f"ok {len(BATCH_SIZES)} batch sizes", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
