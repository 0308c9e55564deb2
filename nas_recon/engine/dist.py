"""Data-parallel training across processes (torchrun): the world, its collectives, and sharded batches.

A run of N ranks computes what one process computes: each global batch (the recipe's batch size) is split across
the ranks, and each rank's loss is weighted so that DDP's gradient mean is the single-process batch mean. Rank 0
alone takes the run lock and writes; the others only compute.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import distributed as tdist
from torch.utils.data import Sampler

from nas_recon.errors import ConfigError
from nas_recon.lock import run_lock

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place among the ranks of a run (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """True on the rank that writes."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


ALONE = World()  # one process


def world_from_env() -> World:
    """The world torchrun (or srun through torchrun) describes in RANK, WORLD_SIZE and LOCAL_RANK."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ConfigError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (as torchrun sets them)") from None
    if size < 1 or not 0 <= rank < size:
        raise ConfigError(f"RANK {rank} outside WORLD_SIZE {size}")
    return World(rank, size, local)


def start(world: World, device: torch.device) -> torch.device:
    """Join the process group (gloo on CPU, NCCL on CUDA) and return this rank's device."""
    if not world.distributed:
        return device
    if device.type == "cuda":
        if world.local_rank >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK {world.local_rank}: this machine has {torch.cuda.device_count()} GPU(s); "
                              "start at most that many processes per node")
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not tdist.is_initialized():
        tdist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=world.rank,
                                 world_size=world.size)
    return device


def run_on_ranks(batch_size: int, device: torch.device, out: str | Path, kind: str,
                 body: Callable[[World, torch.device], T]) -> T:
    """Run `body(world, device)` on this rank of the environment's world: the global batch must split across
    the ranks; rank 0 runs it inside the run folder's lock, the others beside it; the group is left after."""
    world = world_from_env()
    if world.distributed and batch_size % world.size:
        raise ConfigError(f"--batch-size {batch_size} cannot be split across {world.size} ranks: give a multiple "
                          f"of {world.size} (the global batch, as in one process)")
    device = start(world, device)
    finished = False
    try:
        if world.main:  # rank 0 alone locks and writes
            with run_lock(out, kind):
                result = body(world, device)
        else:
            result = body(world, device)
        finished = True
        return result
    finally:
        stop(world, finished)


def stop(world: World, finished: bool) -> None:
    """Leave the process group; after a finished run every rank first waits for the others (rank 0 is the last
    to write), so that none tears its connections down under another's feet."""
    if world.distributed and tdist.is_initialized():
        if finished:
            tdist.barrier()
        tdist.destroy_process_group()


def writes() -> bool:
    """True on the rank that writes (of the environment's world): rank 0, or a run alone."""
    return world_from_env().main


def on_main(world: World, check: Callable[[], T]) -> T:
    """`check()` on rank 0 alone, its result on every rank; a ConfigError it raises is raised on every rank.

    For rank 0's checks of the run folder (the other ranks must stop with it, not wait for it forever).
    """
    result, error = None, None
    if world.main:
        try:
            result = check()
        except ConfigError as e:
            error = e
    if world.distributed:
        box = [(result, None if error is None else str(error))]
        tdist.broadcast_object_list(box, src=0)
        result, message = box[0]
        if message is not None and error is None:
            error = ConfigError(message)
    if error is not None:
        raise error
    return result  # type: ignore[return-value]


def mean_over_ranks(world: World, value: torch.Tensor) -> torch.Tensor:
    """The mean of a scalar over the ranks (the value itself in one process)."""
    return mean_over_ranks_all(world, [value.detach().float() if world.distributed else value.detach()])[0]


def gather_rows(world: World, rows: list[tuple[int, dict[str, float]]]) -> list[dict[str, float]]:
    """Every rank's (index, row) pairs, on every rank, in index order."""
    if world.distributed:
        parts: list[Any] = [None] * world.size
        tdist.all_gather_object(parts, rows)
        rows = [r for part in parts for r in part]
    return [r for _, r in sorted(rows, key=lambda t: t[0])]


def shard(batch: list[int], world: World) -> tuple[list[int], float]:
    """This rank's share of a global batch and its loss factor (share size x ranks / batch size).

    With the factor, DDP's mean of the ranks' gradients is the gradient of the global batch's mean loss. A rank
    that gets nothing of a short last batch takes its first item with factor 0 (it still joins the all-reduce).
    """
    mine = batch[world.rank::world.size]
    if not mine:
        return [batch[0]], 0.0
    return mine, len(mine) * world.size / len(batch)


class ShardedBatches(Sampler[list[int]]):
    """Global batches of an epoch's order (from `order`, a sampler with set_epoch), this rank's share of each."""

    def __init__(self, order: Sampler[int], batch_size: int, world: World) -> None:
        self.order, self.batch_size, self.world = order, batch_size, world
        self.factors: list[float] = []

    def set_epoch(self, epoch: int) -> None:
        self.order.set_epoch(epoch)  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[list[int]]:
        # a generator: the order is drawn at the first batch, after set_epoch (Lightning makes the first epoch's
        # iterator of a resumed fit before it sets the sampler's epoch)
        idx = list(self.order)
        batches = [shard(idx[s:s + self.batch_size], self.world) for s in range(0, len(idx), self.batch_size)]
        self.factors = [f for _, f in batches]
        yield from (b for b, _ in batches)

    def __len__(self) -> int:
        return -(-len(self.order) // self.batch_size)  # type: ignore[arg-type]


class RankShare(Sampler[int]):
    """This rank's share of an epoch's order: positions rank, rank + N, ... (padded by wrapping to equal length).

    With per-rank batches of B / N, step s of the ranks together covers positions s*B .. s*B + B - 1 of the
    order: the one-process batch of size B (up to the padding of a short last batch).
    """

    def __init__(self, order: Sampler[int], world: World) -> None:
        self.order, self.world = order, world

    def set_epoch(self, epoch: int) -> None:
        self.order.set_epoch(epoch)  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return -(-len(self.order) // self.world.size)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[int]:
        idx = list(self.order)
        idx += idx[: len(self) * self.world.size - len(idx)]
        return iter(idx[self.world.rank::self.world.size])


def average_grads(world: World, params: Iterable[torch.Tensor]) -> None:
    """Replace each tensor's .grad by its mean over the ranks (for gradients set by hand)."""
    if not world.distributed:
        return
    for p in params:
        if p.grad is not None:
            tdist.all_reduce(p.grad)
            p.grad.div_(world.size)


def mean_over_ranks_all(world: World, tensors: list[torch.Tensor | None]) -> list[torch.Tensor | None]:
    """Each tensor's mean over the ranks (None stays None: the ranks run the same graph, so all have None there)."""
    out = []
    for t in tensors:
        if t is None or not world.distributed:
            out.append(t)
            continue
        t = t.detach().clone()
        tdist.all_reduce(t)
        out.append(t.div_(world.size))
    return out


def sync_gradients(world: World, params: Iterable[torch.nn.Parameter]) -> None:
    """Average every parameter's gradient over the ranks as backward accumulates it (before clipping and steps).

    The ranks run the same graph, so the hooks fire, and their all-reduces are issued, in the same order.
    """
    if not world.distributed:
        return
    for p in params:
        if p.requires_grad:
            p.register_post_accumulate_grad_hook(lambda t: average_grads(world, [t]))


def broadcast(world: World, obj: Any) -> Any:
    """Rank 0's `obj` on every rank."""
    if not world.distributed:
        return obj
    box = [obj]
    tdist.broadcast_object_list(box, src=0)
    return box[0]


def sum_over_ranks(world: World, values: list[float]) -> list[float]:
    """Element-wise sums over the ranks (float64)."""
    if not world.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    tdist.all_reduce(t)
    return t.tolist()


def identical_on_ranks(world: World, tensors: Iterable[torch.Tensor]) -> bool:
    """True when every rank holds bit-identical `tensors` (one small all-gather)."""
    parts_in = [t.detach().flatten().double().cpu() for t in tensors]
    if not world.distributed or not parts_in:
        return True
    flat = torch.cat(parts_in)
    parts = [torch.empty_like(flat) for _ in range(world.size)]
    tdist.all_gather(parts, flat)
    return all(torch.equal(p, parts[0]) for p in parts)


LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK", "ROLE_WORLD_SIZE",
               "GROUP_WORLD_SIZE", "TORCHELASTIC_RUN_ID", "MASTER_ADDR", "MASTER_PORT")


@contextmanager
def single_process_view() -> Iterator[None]:
    """Hide torchrun's variables (the process group is already up) so that Lightning drives this rank alone."""
    saved = {k: os.environ.pop(k) for k in LAUNCH_VARS if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)
