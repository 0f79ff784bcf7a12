"""Speed options measured on ssld's own distillation step, to choose the defaults (issue 6, item 3).

Compute options run on batches decoded once (so only the model work differs): float32 vs bfloat16 autocast,
contiguous vs channels_last, ``torch.compile`` (opt-in, ``--compile``), and the teacher under ``no_grad`` vs
``inference_mode`` (bare loop, the teacher's output cloned out of inference mode for the loss). Loader options
run end to end over the DataLoader: 0/1/2/4 workers, persistent workers or not. Pinned memory only matters for
host-to-GPU copies and is not measured on a CPU machine. Each option is timed against the default in
interleaved rounds; ratios are option time / default time (< 1: the option is faster).

Run: ``PYTHONPATH=src python benchmarks/bench_defaults.py [--quick] [--compile]``
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import common
import torch
from bench_distill_step import (
    BareStep,
    SsldStep,
    cached_batches,
    loader_batches,
    make_runner,
    setup,
)


def _cfg(data: Any, teacher: str, **kw: Any) -> Any:
    return common.load(common.distill_config(data, common.OUT / "defaults", teacher, **kw))


def compute_options(data: Any, teacher: str, rounds: int, steps: int, with_compile: bool) -> dict[str, Any]:
    base = _cfg(data, teacher)
    options = {"default": base, "channels_last": _cfg(data, teacher, channels_last=True),
               "bf16": _cfg(data, teacher, amp="bfloat16"),
               "bf16_channels_last": _cfg(data, teacher, amp="bfloat16", channels_last=True)}
    if with_compile:
        options["compile"] = _cfg(data, teacher, compile=True)
    batches = cached_batches(base, steps)
    runners = {name: make_runner(SsldStep(cfg), batches, steps) for name, cfg in options.items()}
    model = SsldStep(base).model
    t, s = model.models["Teacher"], model.models["Student"]
    runners["bare_teacher_no_grad"] = make_runner(BareStep(t, s, base), batches, steps)
    runners["bare_teacher_inference_mode"] = make_runner(BareStep(t, s, base, inference_mode=True), batches, steps)
    times = common.interleaved(runners, rounds, warmup=2 if with_compile else 1)
    out = {n: common.ratio_stats(times, n, "default") for n in options if n != "default"}
    out["teacher_inference_mode_over_no_grad"] = common.ratio_stats(times, "bare_teacher_inference_mode",
                                                                     "bare_teacher_no_grad")
    return {"ratios": out, "img_s": {n: common.summary(v, steps * 128) for n, v in times.items()}}


def loader_options(data: Any, teacher: str, rounds: int, steps: int) -> dict[str, Any]:
    options = {"workers_2_persistent": {}, "workers_0": {"workers": 0}, "workers_1": {"workers": 1},
               "workers_4": {"workers": 4}, "workers_2_not_persistent": {"loader": {"persistent_workers": False}}}
    runners = {}
    for name, kw in options.items():
        cfg = _cfg(data, teacher, **kw)
        runners[name] = make_runner(SsldStep(cfg), loader_batches(cfg), steps)
    times = common.interleaved(runners, rounds)
    ratios = {n: common.ratio_stats(times, n, "workers_2_persistent") for n in options if n != "workers_2_persistent"}
    return {"ratios": ratios, "img_s": {n: common.summary(v, steps * 128) for n, v in times.items()}}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--per-class", type=int)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile on CPU)")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    data, cfg = setup(args.quick, args.per_class)
    teacher = str(cfg.Arch.model_specs()["Teacher"].pretrained)
    rounds, steps = args.rounds or (3 if args.quick else 5), args.steps or (4 if args.quick else 5)
    result = {"rounds": rounds, "steps_per_round": steps,
              "compute": compute_options(data, teacher, rounds, steps, args.compile),
              "loader": loader_options(data, teacher, rounds, steps), "machine": common.machine()}
    common.write_result("defaults", result)
    print(json.dumps(result, default=str))  # one line: run_all reads the last line


if __name__ == "__main__":
    main()
