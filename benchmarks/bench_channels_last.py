"""Training-step time of the demo's networks in contiguous vs channels_last memory format on this machine's CPU.

One SGD step (forward, cross-entropy, backward, momentum update) at batch 128 on 28 px images; the two formats
alternate in rounds and each keeps its fastest round, so a busy machine slows both alike. Prints one line per
network with the ratio contiguous / channels_last (> 1: channels_last is faster).

    python benchmarks/bench_channels_last.py [--nets cifar_resnet20 cifar_resnet8x0_5] [--threads 2] [--rounds 12]

CAUTION: a channels_last backward on the CPU can abort or hang with torch 2.14.1 (Global.channels_last); run it in a
throwaway process, as here.
"""

from __future__ import annotations

import argparse
import time

import timm
import torch

import ssld.models.cifar  # noqa: F401  (registers the small-image nets into timm)


def _setup(name: str, channels_last: bool, batch: int) -> tuple:
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=10)
    x, y = torch.randn(batch, 3, 28, 28), torch.randint(0, 10, (batch,))
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    return model, x, y, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def _step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer) -> None:
    opt.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", nargs="+", default=["cifar_resnet20", "cifar_resnet8x0_5"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.nets:
        setups = {cl: _setup(name, cl, args.batch) for cl in (False, True)}
        for s in setups.values():
            for _ in range(3):
                _step(*s)
        best = dict.fromkeys(setups, float("inf"))
        for _ in range(args.rounds):
            for cl, s in setups.items():
                start = time.perf_counter()
                for _ in range(3):
                    _step(*s)
                best[cl] = min(best[cl], (time.perf_counter() - start) / 3)
        print(f"{name}: contiguous {best[False] * 1e3:.1f} ms/step, channels_last {best[True] * 1e3:.1f} ms/step, "
              f"contiguous / channels_last {best[False] / best[True]:.2f}")


if __name__ == "__main__":
    main()
