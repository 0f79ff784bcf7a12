"""Process-group helpers: one code path for a single process and for ``torchrun`` with N processes.

``init_from_env`` reads the variables ``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``) and starts gloo on CPU or nccl on CUDA. Without them everything runs as rank 0 of 1.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist

from ssld.errors import UserError

_RENDEZVOUS_KEYS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
_host_group: Any = None  # a gloo group for small host-side agreements (no CUDA synchronisation under nccl)


def is_initialized() -> bool:
    """True when a process group is up."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's global rank (0 without a process group)."""
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if is_initialized() else 1


def local_rank() -> int:
    """Rank within this machine (``LOCAL_RANK``), used to pick the GPU."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """True on the process that writes files and logs (rank 0)."""
    return rank() == 0


def barrier() -> None:
    """Wait for every process; a no-op without a process group."""
    if is_initialized():
        dist.barrier()


def init_from_env(device: torch.device) -> bool:
    """Start the process group from torchrun's environment; return True when running distributed.

    A partial environment (e.g. ``WORLD_SIZE`` set but ``MASTER_ADDR`` missing) is a one-line :class:`UserError`
    instead of a hang or a traceback deep inside ``torch.distributed``.
    """
    if is_initialized():
        return True
    present = [k for k in _RENDEZVOUS_KEYS if os.environ.get(k)]
    if not present or (present == ["WORLD_SIZE"] and os.environ["WORLD_SIZE"] == "1"):
        return False
    missing = [k for k in _RENDEZVOUS_KEYS if not os.environ.get(k)]
    if missing:
        raise UserError(
            f"distributed launch: environment sets {', '.join(present)} but not {', '.join(missing)}; "
            "start with `torchrun --nproc_per_node=N -m ssld ...` (multi-node: add --nnodes, --node_rank, "
            "--rdzv_endpoint)"
        )
    try:
        size = int(os.environ["WORLD_SIZE"])
        int(os.environ["RANK"])
        int(os.environ["MASTER_PORT"])
    except ValueError as e:
        raise UserError(f"distributed launch: bad rendezvous variable: {e}") from None
    if size == 1:
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend=backend)
    global _host_group
    _host_group = dist.new_group(backend="gloo") if backend != "gloo" else None
    return True


def shutdown() -> None:
    """Tear the process group down (end of a command)."""
    global _host_group
    if is_initialized():
        dist.destroy_process_group()
    _host_group = None


def host_any(flags: list[bool]) -> list[bool]:
    """For each flag, whether any process has it set. Runs on the CPU (gloo), so under nccl it does not wait
    for queued GPU work: the per-step agreements of the training loop cost no device synchronisation."""
    if not is_initialized():
        return flags
    t = torch.tensor([float(f) for f in flags])
    dist.all_reduce(t, op=dist.ReduceOp.SUM, group=_host_group)
    return [bool(v > 0) for v in t]


def all_gather_tensor(t: torch.Tensor) -> torch.Tensor:
    """Concatenate a tensor from every process along dim 0; sizes may differ per rank."""
    if not is_initialized():
        return t
    n = torch.tensor([t.shape[0]], device=t.device)
    sizes = [torch.zeros_like(n) for _ in range(world_size())]
    dist.all_gather(sizes, n)
    longest = int(max(s.item() for s in sizes))
    padded = torch.zeros((longest, *t.shape[1:]), dtype=t.dtype, device=t.device)
    padded[: t.shape[0]] = t
    parts = [torch.zeros_like(padded) for _ in range(world_size())]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(s.item())] for p, s in zip(parts, sizes, strict=True)])


def all_gather_object(obj: Any) -> list[Any]:
    """Gather a picklable object from every process (rank order)."""
    if not is_initialized():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Send a picklable object from ``src`` to every process."""
    if not is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]
