"""Where training runs: the device, and the rank and world size of a ``torchrun`` data-parallel job.

A :class:`Placement` is what ``fit`` asks for everything that depends on them; the default
(``Placement()``: CPU, one process) changes nothing, so single-process results stay bit-identical.

Data parallelism (``torchrun --nproc-per-node N -m benchmarks.run ...``; gloo on CPU, NCCL on
CUDA): every rank draws the *same* global batches from ``data.batches`` (same seed, reshuffled
each epoch) and keeps its own contiguous slice ``tensor_split(batch, N)[rank]``, so the ranks
together see exactly the batches of the one-process run. The model is wrapped in
``DistributedDataParallel``, which averages gradients over ranks; each rank's loss is
``sum over its rows of BCE * N / B`` (``B`` the global batch size), so the averaged gradient is
that of the global batch's mean loss, ``sum over all B rows / B``, also for uneven slices.

BatchNorm: on CUDA the model's BatchNorm layers become ``SyncBatchNorm`` (statistics over the
global batch, as in the one-process run). torch's ``SyncBatchNorm`` runs on GPUs only, so on CPU
each rank normalises with the statistics of its own slice: models with BatchNorm then train
slightly differently from the one-process run (statistics over B/N rows instead of B); models
without it match to float rounding. Dropout masks are drawn per rank, so equality also needs
dropout 0.

Evaluation: rank ``r`` scores rows ``tensor_split(arange(n), N)[r]``; the slices are gathered
(padded to equal length for ``all_gather``, then trimmed) into the predictions of the whole split
in row order, so AUC is computed once on the full split, never averaged over ranks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from data import Features, Split, batches

DEVICES = ("cpu", "cuda", "auto")


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` (this rank's GPU under torchrun) or ``auto`` (cuda when one is available)."""
    if name not in DEVICES:
        raise ValueError(f"device must be one of {list(DEVICES)}, got {name!r}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' asked for, but torch sees no CUDA device; use --device cpu or auto")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
    return torch.device("cpu")


def device_name(device: torch.device) -> str:
    """A human name of ``device``: the GPU's model, or ``cpu``."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (a no-op on CPU), so a clock read after it is honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class Placement:
    """The device of this process and its rank in a data-parallel job of ``world_size`` processes."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` on the device; under several ranks, in DistributedDataParallel (SyncBatchNorm on CUDA)."""
        model = model.to(self.device)
        if not self.distributed:
            return model
        if self.device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def to_device(self, x: torch.Tensor | Features, y: torch.Tensor) -> tuple[torch.Tensor | Features, torch.Tensor]:
        """A batch (indices, or ``Features``) on the device: pinned host memory and non-blocking copies on CUDA,
        unchanged on CPU."""
        if self.device.type != "cuda":
            return x, y
        return (x.pin_memory().to(self.device, non_blocking=True),
                y.pin_memory().to(self.device, non_blocking=True))

    def train_batches(self, split: Split, batch_size: int, generator: torch.Generator):
        """``(x, y, B)``: this rank's slice of every shuffled global batch of ``B`` rows (values too), on the device."""
        for x, y in batches(split, batch_size, shuffle=True, generator=generator):
            rows = len(y)
            if self.distributed:
                x, y = x.tensor_split(self.world_size)[self.rank], y.tensor_split(self.world_size)[self.rank]
            yield *self.to_device(x, y), rows

    def loss_scale(self, rows: int) -> float | None:
        """``train_step``'s ``loss_scale`` for a global batch of ``rows`` rows: None (the plain mean) in one
        process, ``N / rows`` under N ranks."""
        return self.world_size / rows if self.distributed else None

    def rows(self, n: int) -> range:
        """The rows of an ``n``-row split that this rank scores."""
        bounds = [len(part) for part in torch.arange(n).tensor_split(self.world_size)]
        start = sum(bounds[: self.rank])
        return range(start, start + bounds[self.rank])

    def shard(self, split: Split) -> Split:
        """This rank's rows of ``split``, with their values (the whole split in one process)."""
        if not self.distributed:
            return split
        mine = self.rows(len(split))
        rows = slice(mine.start, mine.stop)
        return Split(split.x[rows], split.y[rows], values=None if split.values is None else split.values[rows])

    def gather(self, values: torch.Tensor, n: int) -> torch.Tensor:
        """The ``[n]`` values of a whole split from every rank's slice ``values`` (in row order, on CPU)."""
        if not self.distributed:
            return values.cpu()
        longest = len(torch.arange(n).tensor_split(self.world_size)[0])
        padded = torch.zeros(longest, dtype=values.dtype, device=values.device)
        padded[: len(values)] = values
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(parts, padded)
        sizes = [len(part) for part in torch.arange(n).tensor_split(self.world_size)]
        return torch.cat([p[:s] for p, s in zip(parts, sizes, strict=True)]).cpu()

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean over ranks of ``values`` (unchanged in one process)."""
        if not self.distributed:
            return values
        values = values.clone()
        dist.all_reduce(values)
        return values / self.world_size

    def leave(self, finished: bool = True) -> None:
        """End this rank's part in the job. ``finished``: every rank got here, so wait for them all first (a rank
        that tears gloo down while a peer is still inside it can abort that peer: SIGABRT, "terminate called
        without an active exception"); otherwise (an error) leave at once rather than wait on a rank that is gone.
        One process: nothing to do."""
        if not (self.distributed and dist.is_initialized()):
            return
        if finished:
            dist.barrier()
        dist.destroy_process_group()

    def decide(self, flag: bool) -> bool:
        """Rank 0's ``flag``, broadcast to every rank (one decision for the whole job)."""
        if not self.distributed:
            return flag
        value = torch.tensor([int(flag)], device=self.device)
        dist.broadcast(value, src=0)
        return bool(value.item())


def from_environment(device: str = "cpu") -> Placement:
    """The placement of this process: under ``torchrun`` (``WORLD_SIZE`` > 1) it joins the process group
    (NCCL on CUDA, gloo on CPU) once; otherwise one process on ``device``."""
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    place = resolve_device(device)
    if place.type == "cuda":
        torch.cuda.set_device(place)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if place.type == "cuda" else "gloo")
    rank = dist.get_rank() if world_size > 1 else 0
    return Placement(place, rank, world_size)
