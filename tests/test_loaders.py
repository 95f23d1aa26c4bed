"""The loaders hold token ids as compactly as the token cache stores them, and widen only each batch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from autogpt_gui.engine.data.loaders import EpochLoader, EvalLoader, RandomWindowLoader, WindowDataset
from autogpt_gui.engine.session import build_session


def _loaders(tokens):
    return [RandomWindowLoader(tokens, 4, 8, seed=1), EpochLoader(tokens, 4, 8, seed=1), EvalLoader(tokens, 4, 8, 3),
            WindowDataset(tokens, 8)]


@pytest.mark.parametrize("ids, held", [
    (np.arange(5000, dtype=np.uint16) % 65, np.uint16),  # a char or small BPE vocabulary, as cached
    (np.arange(5000, dtype=np.uint32) * 20, np.uint32),  # a vocabulary past 65,536 (ids up to 99,980)
    (list(range(5000)), np.uint16),  # plain Python ids are narrowed too
    (torch.arange(5000) + 70000, np.uint32),
], ids=["uint16", "uint32", "list", "tensor"])
def test_loaders_hold_compact_ids_and_yield_int64_batches_of_the_same_values(ids, held):
    wide = np.asarray(ids, dtype=np.int64)
    for loader in _loaders(ids):
        assert loader.data.dtype == held, type(loader).__name__
        x, y = loader[0] if isinstance(loader, WindowDataset) else next(iter(loader))
        assert x.dtype == y.dtype == torch.int64
        rows = x.reshape(-1, 8)
        for row, target in zip(rows, y.reshape(-1, 8)):
            start = int(np.flatnonzero(wide == int(row[0]))[0])  # the ids are distinct: find the window
            assert row.tolist() == wide[start:start + 8].tolist() and target.tolist() == wide[start + 1:start + 9].tolist()


def test_negative_ids_are_refused():
    with pytest.raises(ValueError, match="token ids"):
        EvalLoader(np.array([1, -2] * 20), 2, 4)


def test_a_char_run_holds_its_tokens_as_uint16(tiny_config):
    session = build_session(tiny_config())
    assert session.trainer.train_loader.data.dtype == np.uint16
    assert session.trainer.val_loader.data.dtype == np.uint16
    x, y = next(iter(session.trainer.train_loader))
    assert x.dtype == torch.int64 and int(x.max()) < session.tokenizer.vocab_size
