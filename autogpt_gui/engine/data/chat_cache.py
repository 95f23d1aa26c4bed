"""The token cache of a chat source: packed windows and masks, counts, tokenizer and a few held-out
conversations, keyed by the files' content and everything that changes the encoding."""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np

from autogpt_gui.engine.data.chat import Conversation, Turn, conversation_files
from autogpt_gui.engine.data.tokenizers import Tokenizer, tokenizer_from_json
from autogpt_gui.engine.files import folder_in_place
from autogpt_gui.errors import DataError

VERSION = "chat-1"  # bump when the encoding changes, so old caches are not read
ARRAYS = ("train", "train_mask", "val", "val_mask")
KEPT_HELD_OUT = 16  # held-out conversations kept for the evaluation samples


def cache_key(data_cfg, block_size: int, template: str, tokenizer: Tokenizer | None) -> str:
    """A digest of the files' names and bytes, the template and every setting the windows depend on."""
    digest = hashlib.sha256(VERSION.encode())
    for path, name in conversation_files(data_cfg.path):
        digest.update(name.encode() + b"\0")
        try:
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 22):
                    digest.update(chunk)
        except OSError as err:
            raise DataError(f"cannot read {path}: {err.strerror}", "data.path") from None
    parts = [template, data_cfg.tokenizer, str(data_cfg.bpe_vocab_size), str(data_cfg.val_fraction),
             data_cfg.train_on, str(block_size), tokenizer.to_json() if tokenizer is not None else ""]
    digest.update("\0".join(parts).encode())
    return digest.hexdigest()[:24]


def load_cached(folder: Path):
    """(arrays, counts dicts, tokenizer, held-out conversations) of a cache folder, or None if absent or damaged."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        with np.load(folder / "windows.npz") as data:
            arrays = {k: data[k] for k in ARRAYS}
        tokenizer = tokenizer_from_json(meta["tokenizer"])
        held = [Conversation([Turn(**t) for t in c["turns"]], c["where"]) for c in meta["held_out"]]
        return arrays, meta["counts"], meta["val_counts"], tokenizer, held
    except (OSError, ValueError, KeyError, TypeError, DataError):
        shutil.rmtree(folder, ignore_errors=True)  # damaged: rebuilt, never trusted
        return None


def save_cached(folder: Path, arrays: dict, counts, val_counts, tokenizer: Tokenizer,
                held: list[Conversation]) -> None:
    """Write the cache folder through a temporary one renamed into place."""
    with folder_in_place(folder, ".tmp-chat-") as tmp:
        np.savez(tmp / "windows.npz", **arrays)
        meta = {"counts": asdict(counts), "val_counts": asdict(val_counts), "tokenizer": tokenizer.to_json(),
                "held_out": [asdict(c) for c in held[:KEPT_HELD_OUT]]}
        (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
