"""Batch loaders over a token array. Each yields (x, y) with y = x shifted by one.

Ours keep their position in `state_dict()` so a resumed run seeks straight back to it (no
replaying of batches); a plain torch DataLoader over `WindowDataset` works as well. The ids stay as
compact in memory as in the token cache (uint16 for a vocabulary up to 65,536, else uint32): only each
batch is widened to int64 on its way to the model, so 100 MB of characters take 200 MB, not 800.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

# Token arrays up to this many tokens are held in memory as one tensor; larger ones stay memmaps.
IN_MEMORY_TOKENS = 200_000_000


def compact_dtype(tokens) -> np.dtype:
    """The narrowest unsigned type that holds these ids: theirs if already uint16 / uint32, else by the
    largest id."""
    ids = np.asarray(tokens)
    if ids.dtype in (np.uint16, np.uint32):
        return ids.dtype
    if len(ids) and (ids.min() < 0 or ids.max() >= 2**32):
        raise ValueError("token ids must be between 0 and 2**32 - 1")
    return np.dtype(np.uint16 if not len(ids) or ids.max() < 2**16 else np.uint32)


def _as_compact(tokens) -> np.ndarray:
    """The ids in memory in their compact type; a token array larger than IN_MEMORY_TOKENS stays a memmap."""
    if isinstance(tokens, np.memmap) and len(tokens) > IN_MEMORY_TOKENS:
        return tokens
    if isinstance(tokens, torch.Tensor):
        tokens = tokens.cpu().numpy()
    return np.array(tokens, dtype=compact_dtype(tokens))  # a copy: the cache's file may be replaced


def _windows(data: np.ndarray, starts: torch.Tensor, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The windows at starts, widened to int64 (what embeddings and the loss take) one batch at a time."""
    rows = torch.from_numpy(data[starts.numpy()[:, None] + np.arange(block + 1)].astype(np.int64))
    return rows[:, :-1], rows[:, 1:]


class _Loader:
    """Shared parts: device transfer and an epoch / position counter."""

    def __init__(self, tokens, batch_size: int, block_size: int, device="cpu"):
        if len(tokens) < block_size + 1:
            raise ValueError(f"{len(tokens)} tokens are fewer than one window of {block_size + 1}")
        self.data = _as_compact(tokens)
        self.n_tokens = len(tokens)
        self.batch_size, self.block_size = batch_size, block_size
        self.device = torch.device(device)
        self.epoch, self.pos = 0, 0

    def _to_device(self, x, y):
        if self.device.type == "cuda":
            return x.pin_memory().to(self.device, non_blocking=True), y.pin_memory().to(self.device, non_blocking=True)
        if self.device.type != "cpu":
            return x.to(self.device), y.to(self.device)
        return x, y

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos, "batch_size": self.batch_size * getattr(self, "world", 1)}

    def load_state_dict(self, state: dict) -> None:
        """The position in global batches (all ranks' micro-batches together), so any number of ranks resumes."""
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        world = getattr(self, "world", 1)
        self.pos = self.pos * int(state.get("batch_size", self.batch_size * world)) // (self.batch_size * world)

    def set_batch_size(self, batch_size: int, was: int | None = None) -> None:
        """Change the micro-batch mid-epoch (halved after running out of memory): the position keeps counting
        the same windows, in batches of the new size."""
        self.pos = self.pos * (was or self.batch_size) // batch_size
        self.batch_size = batch_size


class RandomWindowLoader(_Loader):
    """Random windows anywhere in the data, as nanoGPT samples; an 'epoch' is one data's worth."""

    def __init__(self, tokens, batch_size: int, block_size: int, seed: int = 0, device="cpu", rank: int = 0,
                 world: int = 1):
        super().__init__(tokens, batch_size, block_size, device)
        self.generator = torch.Generator().manual_seed(seed)
        self.rank, self.world = rank, world  # of a torchrun job: every rank draws the global batch, keeps its slice

    def __len__(self) -> int:
        return max(1, (self.n_tokens - 1) // (self.batch_size * self.world * self.block_size))

    def __iter__(self):
        while self.pos < len(self):
            starts = torch.randint(self.n_tokens - self.block_size, (self.batch_size * self.world,),
                                   generator=self.generator)[self.rank * self.batch_size:][:self.batch_size]
            self.pos += 1
            yield self._to_device(*_windows(self.data, starts, self.block_size))
        self.epoch, self.pos = self.epoch + 1, 0

    def state_dict(self) -> dict:
        return {**super().state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.generator.set_state(state["generator"])


class EpochLoader(_Loader):
    """Every non-overlapping window once per epoch, in a fresh shuffled order each epoch."""

    def __init__(self, tokens, batch_size: int, block_size: int, seed: int = 0, shuffle: bool = True, device="cpu",
                 rank: int = 0, world: int = 1):
        super().__init__(tokens, batch_size, block_size, device)
        self.seed, self.shuffle = seed, shuffle
        self.n_windows = (self.n_tokens - 1) // block_size
        self.rank, self.world = rank, world  # of a torchrun job: each global batch is split between the ranks

    def __len__(self) -> int:
        return max(1, self.n_windows // (self.batch_size * self.world))

    def _order(self) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.n_windows)
        return torch.randperm(self.n_windows, generator=torch.Generator().manual_seed(self.seed + self.epoch))

    def __iter__(self):
        order = self._order() * self.block_size
        while self.pos < len(self):
            b = (self.pos * self.world + self.rank) * self.batch_size
            starts = order[b : b + self.batch_size]
            self.pos += 1
            yield self._to_device(*_windows(self.data, starts, self.block_size))
        self.epoch, self.pos = self.epoch + 1, 0


class EvalLoader(_Loader):
    """The same evenly spaced windows on every pass, so validation curves compare like with like."""

    def __init__(self, tokens, batch_size: int, block_size: int, num_batches: int = 20, device="cpu", rank: int = 0,
                 world: int = 1):
        super().__init__(tokens, batch_size, block_size, device)
        span = self.n_tokens - block_size - 1
        self.rank, self.world = rank, world  # of a torchrun job: the windows of the global batch, split
        count = min(num_batches * batch_size * world, max(1, span + 1))
        self.starts = torch.linspace(0, max(0, span), count).long()

    def __len__(self) -> int:
        step = self.batch_size * self.world
        return (len(self.starts) + step - 1) // step

    def __iter__(self):
        for b in range(0, len(self.starts), self.batch_size * self.world):
            mine = self.starts[b + self.rank * self.batch_size:][:self.batch_size]
            if len(mine):  # a short last batch may leave a rank nothing to evaluate
                yield self._to_device(*_windows(self.data, mine, self.block_size))


class WindowDataset(Dataset):
    """Non-overlapping (x, y) windows for a plain torch DataLoader."""

    def __init__(self, tokens, block_size: int):
        self.data = _as_compact(tokens)
        self.block_size = block_size
        self.n = (len(tokens) - 1) // block_size

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        start = i * self.block_size
        row = torch.from_numpy(self.data[start : start + self.block_size + 1].astype(np.int64))
        return row[:-1], row[1:]
