"""Conversations -> (x, y) batches whose targets outside the trained tokens are -100 (cross-entropy's ignore
index), so the Trainer's loss, and the validation loss, count the trained tokens only.

Every window of the context starts at a conversation; conversations are packed whole into a window while they
fit, the rest of it is padding that is never trained. A conversation longer than the context is split at turn
boundaries; a single turn longer than the context is truncated. Ids are kept as uint16 (uint32 past 65,536).
Attention does cross packed conversations inside one window (a causal mask only), as GPT-2's packing does.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from autogpt_gui.config import tokenizer_kind
from autogpt_gui.engine.data.chat import Conversation, read_conversations
from autogpt_gui.engine.data.chat_cache import ARRAYS, cache_key, load_cached, save_cached
from autogpt_gui.engine.data.chat_template import (
    CHATML,
    CHATML_EOS,
    ChatTemplate,
    Encoded,
    model_tokens,
    template_text,
)
from autogpt_gui.engine.data.tokenizers import Tokenizer, train_tokenizer
from autogpt_gui.errors import Cancelled, DataError

IGNORE = -100  # torch.nn.functional.cross_entropy's ignore_index


@dataclass
class ChatCounts:
    """What a chat source holds, as the Data tab and `train` report it."""

    conversations: int = 0
    turns: int = 0
    trained_tokens: int = 0
    tokens: int = 0
    split: int = 0  # longer than the context: split at turn boundaries
    truncated: int = 0  # a single turn longer than the context: cut
    dropped: int = 0  # pieces with nothing to train (a long user turn alone), left out

    def text(self) -> str:
        """One line: conversations, turns, trained tokens of all tokens, split / truncated."""
        share = f" ({100 * self.trained_tokens / self.tokens:.0f} %)" if self.tokens else ""
        out = (f"{self.conversations:,} conversations, {self.turns:,} turns, {self.trained_tokens:,} trained tokens "
               f"of {self.tokens:,}{share}")
        extra = [f"{n:,} {what}" for n, what in ((self.split, "split at turn boundaries"),
                                                  (self.truncated, "truncated to the context"),
                                                  (self.dropped, "pieces with no reply left out")) if n]
        return out + ("; " + ", ".join(extra) if extra else "")


@dataclass
class ChatData:
    """A chat source ready to train: its tokenizer and template, packed windows and their masks, the counts."""

    tokenizer: Tokenizer
    template: ChatTemplate
    train: np.ndarray  # the windows' ids one after another, context + 1 each (padding included)
    train_mask: np.ndarray  # the same shape: whether each id is a trained target
    val: np.ndarray
    val_mask: np.ndarray
    counts: ChatCounts
    val_counts: ChatCounts
    context: int = 0  # model.block_size: the windows are context + 1 ids long
    held_out: list[Conversation] = field(default_factory=list)
    from_cache: bool = False
    source_label: str = ""


def prepare_chat(data_cfg, block_size: int, tokenizer: Tokenizer | None = None, model_folder: str | Path | None = None,
                 progress: Callable[[str, float], None] | None = None, cancelled: Callable[[], bool] | None = None,
                 cache_root: Path | None = None) -> ChatData:
    """Read, template, tokenize, split (by conversation) and pack a chat source, or take it from the token
    cache under cache_root (keyed by the files' content, the template and the settings).

    `tokenizer`: a pretrained model's own; otherwise data_cfg.tokenizer is trained on the rendered
    conversations with the template's special tokens as tokens of their own.
    """
    folder = None
    if cache_root is not None:
        key = cache_key(data_cfg, block_size, template_text(data_cfg.chat_template, model_folder), tokenizer)
        folder = cache_root / f"chat-{key}"
        hit = load_cached(folder) if (folder / "meta.json").is_file() else None
        if hit is not None:
            arrays, counts, val_counts, tok, held = hit
            assert tok.chat is not None
            template = ChatTemplate(tok.chat["template"], tok, tok.chat.get("bos_token", ""),
                                    tok.chat.get("eos_token", ""))  # checked again: the cache is a file too
            return ChatData(tok, template, arrays["train"], arrays["train_mask"], arrays["val"], arrays["val_mask"],
                            ChatCounts(**counts), ChatCounts(**val_counts), block_size, held, from_cache=True,
                            source_label=Path(data_cfg.path).name)
    data = _build(data_cfg, block_size, tokenizer, model_folder, progress, cancelled)
    if folder is not None:
        save_cached(folder, {k: getattr(data, k) for k in ARRAYS}, data.counts, data.val_counts, data.tokenizer,
                    data.held_out)
    return data


def _build(data_cfg, block_size: int, tokenizer, model_folder, progress, cancelled) -> ChatData:
    report = progress or (lambda phase, f: None)
    stop = cancelled or (lambda: False)
    report("reading", 0.0)
    conversations = read_conversations(data_cfg.path)
    if len(conversations) < 2:
        raise DataError(f"{data_cfg.path} holds one conversation; at least two are needed (one is held out to "
                        "validate)", "data.path")
    tokenizer = fit_chat_tokenizer(data_cfg, tokenizer, model_folder, conversations, report)
    assert tokenizer.chat is not None
    template = ChatTemplate(tokenizer.chat["template"], tokenizer, tokenizer.chat.get("bos_token", ""),
                            tokenizer.chat.get("eos_token", ""))
    order = list(range(len(conversations)))
    random.Random(0).shuffle(order)
    n_val = min(len(order) - 1, max(1, round(len(order) * data_cfg.val_fraction)))
    held = sorted(order[:n_val])
    parts: list[tuple[np.ndarray, np.ndarray, ChatCounts]] = []
    for which, index in (("train", sorted(order[n_val:])), ("val", held)):
        encoded = []
        for k, i in enumerate(index):
            encoded.append(template.encode_turns(conversations[i], data_cfg.train_on))
            if k % 64 == 0:
                report(f"tokenizing {which}", k / len(index))
                if stop():
                    raise Cancelled("tokenizing cancelled")
        counts = ChatCounts(len(index), sum(len(conversations[i].turns) for i in index))
        windows, masks = pack(encoded, block_size, tokenizer.vocab_size, counts)
        parts.append((windows, masks, counts))
    (train, train_mask, counts), (val, val_mask, val_counts) = parts
    if not len(train):
        raise DataError(f"no conversation of {data_cfg.path} leaves a reply to train on within the context of "
                        f"{block_size} tokens; use a longer context", "model.block_size")
    if not len(val):
        val, val_mask = train[:1], train_mask[:1]
    return ChatData(tokenizer, template, train.reshape(-1), train_mask.reshape(-1), val.reshape(-1),
                    val_mask.reshape(-1), counts, val_counts,
                    block_size, [conversations[i] for i in held], source_label=Path(data_cfg.path).name)


def fit_chat_tokenizer(data_cfg, tokenizer: Tokenizer | None = None, model_folder: str | Path | None = None,
                       conversations: list[Conversation] | None = None, progress=None) -> Tokenizer:
    """The tokenizer a chat run reads with, carrying its template (`tokenizer.chat`): a pretrained model's own
    (`tokenizer`), or data_cfg.tokenizer trained on the rendered conversations, the template's special tokens
    one id each."""
    text = template_text(data_cfg.chat_template, model_folder)
    if tokenizer is None:
        convs = conversations if conversations is not None else read_conversations(data_cfg.path)
        tokenizer = _trained_for_chat(data_cfg, ChatTemplate(text, None), convs, progress or (lambda p, f: None))
        names = {}
    else:
        names = model_tokens(model_folder)
        if text == CHATML and len(tokenizer.encode_offsets("<|im_end|>")[0]) > 1 and names.get("eos_token"):
            text = CHATML_EOS
    ChatTemplate(text, tokenizer, names.get("bos_token", ""), names.get("eos_token", ""))  # refused here if hostile
    tokenizer.chat = {"template": text, **names}  # what it was trained with goes wherever the tokenizer goes
    return tokenizer


def _trained_for_chat(data_cfg, probe: ChatTemplate, conversations: list[Conversation], report) -> Tokenizer:
    kind = tokenizer_kind(data_cfg.tokenizer, pretrained=False)
    report("training tokenizer", 0.0)
    specials = probe.specials

    def chunks():
        for conv in conversations:
            rendered = probe.render(conv.turns)
            for token in specials:
                rendered = rendered.replace(token, "")
            yield rendered
    return train_tokenizer(kind, chunks, data_cfg.bpe_vocab_size, specials)


def pack(encoded: list[Encoded], block_size: int, vocab_size: int, counts: ChatCounts) -> tuple[np.ndarray, np.ndarray]:
    """Windows of block_size + 1 ids, each starting at a conversation (or a piece of one), padded; counts
    gets the tokens, the trained tokens, and how many were split, truncated or left out."""
    width = block_size + 1
    dtype = np.uint16 if vocab_size <= 65536 else np.uint32
    rows: list[tuple[list[int], list[bool]]] = []
    fill: tuple[list[int], list[bool]] = ([], [])
    for enc in encoded:
        counts.tokens += len(enc.ids)
        counts.trained_tokens += sum(enc.trained)
        for ids, trained in _pieces(enc, width, counts):
            if not any(trained[1:]):  # its only trained token would be no window's target
                counts.dropped += 1
                continue
            if len(fill[0]) + len(ids) > width:
                rows.append(fill)
                fill = ([], [])
            fill = (fill[0] + ids, fill[1] + trained)
    if fill[0]:
        rows.append(fill)
    windows = np.zeros((len(rows), width), dtype=dtype)
    masks = np.zeros((len(rows), width), dtype=np.bool_)
    for r, (ids, trained) in enumerate(rows):
        windows[r, : len(ids)] = ids
        masks[r, : len(ids)] = trained
    return windows, masks


def _pieces(enc: Encoded, width: int, counts: ChatCounts):
    """The conversation whole when it fits; else runs of whole turns that fit, a too-long turn cut."""
    n = len(enc.ids)
    if n <= width:
        yield enc.ids, enc.trained
        return
    bounds = sorted({b for b in enc.turn_starts if 0 < b < n} | {n})
    start, cut = 0, False
    while start < n:
        fits = [b for b in bounds if start < b <= start + width]
        end = fits[-1] if fits else start + width
        cut = cut or not fits
        yield enc.ids[start:end], enc.trained[start:end]
        start = end if fits else next((b for b in bounds if b > end), n)
    if cut:
        counts.truncated += 1
    else:
        counts.split += 1


class ChatLoader:
    """Packed windows in a fresh shuffled order each epoch, as (x, y) with untrained targets -100."""

    def __init__(self, windows: np.ndarray, masks: np.ndarray, batch_size: int, seed: int = 0, shuffle: bool = True,
                 device="cpu", rank: int = 0, world: int = 1):
        self.windows, self.masks = windows, masks
        self.n_windows = len(windows)
        self.n_tokens = int(windows.size)
        self.block_size = windows.shape[1] - 1
        self.batch_size, self.seed, self.shuffle = batch_size, seed, shuffle
        self.device = torch.device(device)
        self.rank, self.world = rank, world  # of a torchrun job: each global batch is split between the ranks
        self.epoch, self.pos = 0, 0

    def __len__(self) -> int:
        return max(1, self.n_windows // (self.batch_size * self.world))

    def _order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.n_windows)
        return np.random.default_rng(self.seed + self.epoch).permutation(self.n_windows)

    def _batch(self, rows: np.ndarray):
        ids = torch.from_numpy(self.windows[rows].astype(np.int64))
        trained = torch.from_numpy(self.masks[rows])
        y = ids[:, 1:].masked_fill(~trained[:, 1:], IGNORE)
        x, y = ids[:, :-1], y
        if self.device.type != "cpu":
            return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        return x, y

    def __iter__(self):
        order = self._order()
        while self.pos < len(self):
            b = (self.pos * self.world + self.rank) * self.batch_size
            rows = order[np.arange(b, b + self.batch_size) % self.n_windows]  # fewer windows than a batch: repeat
            self.pos += 1
            yield self._batch(rows)
        self.epoch, self.pos = self.epoch + 1, 0

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos, "batch_size": self.batch_size * self.world}

    def load_state_dict(self, state: dict) -> None:
        """The position in global batches, so any number of ranks resumes."""
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self.pos = self.pos * int(state.get("batch_size", self.batch_size * self.world)) // (self.batch_size * self.world)

    def set_batch_size(self, batch_size: int, was: int | None = None) -> None:
        """Change the micro-batch mid-epoch: the position keeps counting the same windows."""
        self.pos = self.pos * (was or self.batch_size) // batch_size
        self.batch_size = batch_size


class ChatEvalLoader(ChatLoader):
    """The same held-out windows on every pass (at most num_batches batches), in order."""

    def __init__(self, windows: np.ndarray, masks: np.ndarray, batch_size: int, num_batches: int = 20, device="cpu",
                 rank: int = 0, world: int = 1):
        keep = min(len(windows), num_batches * batch_size * world)
        super().__init__(windows[:keep], masks[:keep], batch_size, shuffle=False, device=device, rank=rank,
                         world=world)

    def __len__(self) -> int:
        step = self.batch_size * self.world
        return (self.n_windows + step - 1) // step

    def __iter__(self):
        for b in range(0, self.n_windows, self.batch_size * self.world):
            rows = np.arange(self.n_windows)[b + self.rank * self.batch_size:][: self.batch_size]
            rows = rows[rows < min(self.n_windows, b + self.batch_size * self.world)]
            if len(rows):
                yield self._batch(rows)


def chat_loaders(data: ChatData, train_cfg, device, rank: int = 0, world: int = 1) -> tuple[ChatLoader, ChatEvalLoader]:
    """The training and validation loaders of a chat source, as the TrainConfig sizes them."""
    t, width = train_cfg, data.context + 1
    train, train_mask = data.train.reshape(-1, width), data.train_mask.reshape(-1, width)
    val, val_mask = data.val.reshape(-1, width), data.val_mask.reshape(-1, width)
    return (ChatLoader(train, train_mask, t.batch_size, seed=t.seed, device=device, rank=rank, world=world),
            ChatEvalLoader(val, val_mask, t.batch_size, t.eval_batches, device=device, rank=rank,
                           world=world))
