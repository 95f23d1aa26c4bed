"""Data-parallel training on PyTorch's own engine: torch.distributed, launched by torchrun.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; `setup()` joins the group (NCCL on CUDA, gloo on CPU).
Every rank draws the same global batch (the loaders' generators are seeded alike) and trains on its
own slice of it, so N ranks with micro-batch b compute what one process with N x b computes: the
loader's position is the same on every rank, and a checkpoint moves between any numbers of ranks.
DistributedDataParallel averages gradients (skipped with no_sync on accumulation micro-steps); the
step's loss is averaged over ranks, so every rank sees the same loss and decides the same (rollbacks).
Each rank evaluates its slice of the validation windows and the sums are all-reduced, so the validation
loss is that of one process with the global batch. Rank 0 alone samples and writes (metrics, status,
checkpoints) and reads the control file; a stop, an edit or an "evaluate now" it receives reaches the
other ranks in the same small all-reduce as the step's loss, so all act on it after the same step.
"""
from __future__ import annotations

import datetime
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def ranks() -> Ranks:
    """This process's place in a torchrun job (rank 0 of 1 when not launched by torchrun)."""
    return Ranks(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                 int(os.environ.get("LOCAL_RANK", 0)))


def setup(device: str) -> Ranks:
    """Join the torchrun job, if this process is part of one; NCCL for CUDA, gloo otherwise."""
    r = ranks()
    if r.active and not dist.is_initialized():
        cuda = device != "cpu" and torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(r.local_rank)
        # NCCL for the gradients (CUDA tensors); gloo for our own small CPU tensors and objects (the step's loss,
        # stop and edits, validation sums), which NCCL refuses. A paused run keeps the other ranks waiting in
        # their next all-reduce: allow long pauses
        dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo", timeout=datetime.timedelta(hours=12))
    return r


def device_for(device: torch.device, r: Ranks) -> torch.device:
    """Each rank of a CUDA job trains on its own GPU."""
    if r.active and device.type == "cuda":
        return torch.device("cuda", r.local_rank)
    return device


def from_rank0(value):
    """Rank 0's value on every rank (a decision each rank would otherwise make for itself)."""
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def teardown() -> None:
    """Leave the group cleanly: wait for every rank, then destroy it (errors of a dying peer are ignored)."""
    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        except Exception:  # noqa: BLE001 - a peer already gone: nothing left to agree on
            pass
        try:
            dist.destroy_process_group()
        except Exception:  # noqa: BLE001
            pass


def leave(code: int) -> None:
    """End a rank's process: after a clean run, wait for the others and destroy the group; then exit without
    the interpreter's teardown, where gloo's threads can abort ("terminate called without an active
    exception") after all the work is done. A failed rank leaves at once: torchrun ends the others."""
    import sys

    if code in (0, 129, 130, 143):  # finished, or stopped by a signal at a step all ranks agreed on
        teardown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class Coordinator:
    """A trainer extension for a job of several ranks: averages each step's loss and each evaluation over
    the ranks, and spreads a stop (or an early stop's finish), live edits and evaluation requests received
    by rank 0 to all of them at the same step."""

    def __init__(self, r: Ranks):
        self.r = r
        self.eval_asked = self.eval_sent = 0  # rank 0's requests to evaluate: every rank does, after the next step

    def attach(self, trainer) -> None:
        trainer.ranks = self
        trainer.world = self.r.world
        self.seen = 0  # the version of rank 0's live edits this rank has applied
        if self.r.main:  # an evaluation is a collective: rank 0 alone must not start one
            trainer.hold_requests("evaluate", self._evaluate_asked)

    def _evaluate_asked(self, _payload=None) -> None:
        self.eval_asked += 1

    def reduce(self, trainer, loss: float) -> float:
        """Called by every rank before each update: the mean loss, rank 0's stop, rank 0's live edits."""
        edits = trainer.extensions.get("edits")
        stop, asked = 0.0, self.eval_asked
        if self.r.main and trainer.ending is not None:
            stop = 2.0 if trainer.ending == "finished" else 1.0
        total = torch.tensor([loss], dtype=torch.float64)
        decided = torch.tensor([stop, float(edits.version if edits is not None and self.r.main else 0),
                                float(asked > self.eval_sent)], dtype=torch.float64)
        dist.all_reduce(total)
        dist.all_reduce(decided, op=dist.ReduceOp.MAX)
        if decided[0].item() > 0:
            if trainer.ending is None:
                trainer.request("finish" if decided[0].item() == 2 else "stop", "stopped on rank 0")
            trainer.agreed_stop = True  # every rank ends after this step
        if decided[2].item() > 0:  # handled with the step's other requests, on every rank
            self.eval_sent = asked
            trainer.pass_on("evaluate")
        if edits is not None and decided[1].item() > self.seen:  # rank 0 was edited: the others follow now
            changed = [edits.changed if self.r.main else None]
            dist.broadcast_object_list(changed, src=0)
            self.seen = int(decided[1].item())
            if not self.r.main:
                edits.apply(trainer, changed[0], announce=False)
                trainer.refresh_lr()  # this step's update already uses the new rate
        return total.item() / self.r.world

    def reduce_eval(self, total: torch.Tensor, count: int) -> tuple[torch.Tensor, int]:
        """Every rank's sum of batch losses and number of batches, summed: the validation loss of all ranks'
        windows together (the windows of one process with the global batch)."""
        both = torch.stack([total.detach().double().cpu(), torch.tensor(float(count), dtype=torch.float64)])
        dist.all_reduce(both)
        return both[0], int(both[1].item())

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, trainer, saved: dict) -> None:
        pass


def torchrun_command(nproc: int, nnodes: int = 1) -> list[str]:
    """torchrun (torch.distributed.run) for this Python and package: one machine standalone, or a rendezvous."""
    where = ["--standalone"] if nnodes == 1 else [f"--nnodes={nnodes}", "--node_rank=$NODE_RANK",
                                                   "--rdzv_backend=c10d", "--rdzv_endpoint=$MASTER_ADDR:29500"]
    return [sys.executable, "-m", "torch.distributed.run", *where, f"--nproc_per_node={nproc}", "-m", "autogpt_gui"]
