"""Character, byte and byte-level BPE tokenizers, each saved and loaded as JSON.

Each may carry special tokens (a chat template's `<|im_start|>`, `<|im_end|>`, ...): text that always
encodes to one id of its own, after the ordinary vocabulary.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from autogpt_gui.errors import DataError


class Tokenizer:
    """Text <-> token ids. Subclasses set `kind` and implement the four methods below."""

    kind = ""
    specials: tuple[str, ...] = ()  # special tokens, each one id after the ordinary vocabulary
    chat: dict | None = None  # trained for chat data: {"template": Jinja text, "bos_token": ..., "eos_token": ...}

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def encode(self, text: str, strict: bool = True) -> list[int]:
        """Ids of text; with strict=False what the vocabulary cannot encode is dropped instead of refused."""
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        raise NotImplementedError

    def to_json(self) -> str:
        raise NotImplementedError

    def token_strings(self, ids: Iterable[int]) -> list[str]:
        """Each id's own text, to show token boundaries."""
        return [self.decode([i]) for i in ids]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    def _extra(self) -> dict:
        """What to_json saves beside the vocabulary: the chat template the tokenizer was trained with."""
        return {"chat": self.chat} if self.chat else {}

    def add_specials(self, tokens: Iterable[str]) -> None:
        """Make each of tokens (that it does not hold yet) one id of its own, after the vocabulary."""
        self.specials = self.specials + tuple(t for t in dict.fromkeys(tokens) if t and t not in self.specials)

    def encode_offsets(self, text: str) -> tuple[list[int], list[int]]:
        """The ids of text and where (character index) each token starts; special tokens are one id each."""
        ids: list[int] = []
        starts: list[int] = []
        for start, piece, special in _pieces(text, self.specials):
            if special is not None:
                ids.append(self._plain_size() + special)
                starts.append(start)
                continue
            piece_ids, piece_starts = self._plain_offsets(piece)
            ids += piece_ids
            starts += [start + s for s in piece_starts]
        return ids, starts

    def _plain_size(self) -> int:
        return self.vocab_size - len(self.specials)

    def _plain_offsets(self, text: str) -> tuple[list[int], list[int]]:
        raise NotImplementedError

    def _split_specials(self, ids: Iterable[int]) -> list[list[int] | str]:
        """ids as runs of ordinary ids and the special tokens' text between them."""
        base = self._plain_size()
        out: list[list[int] | str] = []
        run: list[int] = []
        for i in ids:
            if base <= i < base + len(self.specials):
                if run:
                    out.append(run)
                out.append(self.specials[i - base])
                run = []
            else:
                run.append(i)
        return out + ([run] if run else [])


def _pieces(text: str, specials: tuple[str, ...]):
    """(start, text, None) for ordinary stretches and (start, token, index) for each special token."""
    if not specials:
        yield 0, text, None
        return
    pattern = re.compile("|".join(re.escape(t) for t in sorted(specials, key=len, reverse=True)))
    pos = 0
    for m in pattern.finditer(text):
        if m.start() > pos:
            yield pos, text[pos:m.start()], None
        yield m.start(), m.group(), specials.index(m.group())
        pos = m.end()
    if pos < len(text):
        yield pos, text[pos:], None


class CharTokenizer(Tokenizer):
    """One token per distinct character of the training text."""

    kind = "char"

    def __init__(self, chars: Iterable[str]):
        self.chars = sorted(set(chars))
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def fit(cls, chunks: Iterable[str]) -> CharTokenizer:
        seen: set[str] = set()
        for chunk in chunks:
            seen.update(chunk)
        return cls(seen)

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + len(self.specials)

    def encode(self, text: str, strict: bool = True) -> list[int]:
        """Ids of text; with strict=False characters outside the vocabulary are dropped."""
        if self.specials:
            return [i for start, piece, special in _pieces(text, self.specials)
                    for i in ([len(self.chars) + special] if special is not None else self.encode_plain(piece, strict))]
        return self.encode_plain(text, strict)

    def encode_plain(self, text: str, strict: bool = True) -> list[int]:
        """encode() without looking for special tokens."""
        if strict:
            try:
                return [self.stoi[c] for c in text]
            except KeyError as err:
                raise DataError(
                    f"character {err.args[0]!r} is not in this tokenizer's vocabulary", "data.tokenizer"
                ) from None
        return [self.stoi[c] for c in text if c in self.stoi]

    def _plain_offsets(self, text: str) -> tuple[list[int], list[int]]:
        """Characters outside the vocabulary are dropped (a typed prompt may hold one)."""
        kept = [(self.stoi[c], i) for i, c in enumerate(text) if c in self.stoi]
        return [k for k, _ in kept], [i for _, i in kept]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(p if isinstance(p, str) else "".join(self.chars[i] for i in p if 0 <= i < len(self.chars))
                       for p in self._split_specials(ids))

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "chars": self.chars, **({"specials": list(self.specials)}
                                                                      if self.specials else {}), **self._extra()},
                          ensure_ascii=False)


class ByteTokenizer(Tokenizer):
    """The 256 UTF-8 byte values: every text fits, nothing to train."""

    kind = "byte"

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.specials)

    def encode(self, text: str, strict: bool = True) -> list[int]:
        if self.specials:
            return self.encode_offsets(text)[0]
        return list(text.encode("utf-8"))

    def _plain_offsets(self, text: str) -> tuple[list[int], list[int]]:
        ids: list[int] = []
        starts: list[int] = []
        for pos, ch in enumerate(text):
            raw = ch.encode("utf-8", errors="surrogatepass")
            ids += raw
            starts += [pos] * len(raw)
        return ids, starts

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(p if isinstance(p, str) else bytes(i for i in p if 0 <= i < 256).decode("utf-8", errors="replace")
                       for p in self._split_specials(ids))

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, **({"specials": list(self.specials)} if self.specials else {}),
                           **self._extra()}, ensure_ascii=False)


class BPETokenizer(Tokenizer):
    """Byte-level BPE from Hugging Face `tokenizers`, trained on the run's own text."""

    kind = "bpe"

    def __init__(self, hf_tokenizer):
        self.hf = hf_tokenizer

    @classmethod
    def train(cls, chunks: Iterator[str], vocab_size: int) -> BPETokenizer:
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        tok = HFTokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=2,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(chunks, trainer=trainer)
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size()

    def encode(self, text: str, strict: bool = True) -> list[int]:
        return self.hf.encode(text).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.hf.encode_batch(texts)]

    @property
    def specials(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(t.content for t in self.hf.get_added_tokens_decoder().values() if t.special)

    def add_specials(self, tokens: Iterable[str]) -> None:
        """Add each token the vocabulary lacks as a special token of its own (HF `add_special_tokens`)."""
        from tokenizers import AddedToken

        missing = [t for t in dict.fromkeys(tokens) if t and self.hf.token_to_id(t) is None]
        self.hf.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in missing])

    def encode_offsets(self, text: str) -> tuple[list[int], list[int]]:
        """Ids and start offsets, with no begin/end tokens added (a chat template writes its own)."""
        enc = self.hf.encode(text, add_special_tokens=False)
        return enc.ids, [start for start, _ in enc.offsets]

    def decode(self, ids: Iterable[int]) -> str:
        return self.hf.decode(list(ids))

    def token_strings(self, ids: Iterable[int]) -> list[str]:
        """Each id's own text, special tokens (<|im_end|>) included: decode() leaves those out."""
        return [self.hf.decode([i], skip_special_tokens=False) for i in ids]

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "hf": json.loads(self.hf.to_str()), **self._extra()}, ensure_ascii=False)


def tokenizer_from_json(text: str) -> Tokenizer:
    """Rebuild a tokenizer saved with `to_json`."""
    try:
        data = json.loads(text)
        kind = data["kind"]
    except (ValueError, KeyError, TypeError):
        raise DataError("not a tokenizer file of ours (expected JSON with a 'kind')", "tokenizer") from None
    tok: Tokenizer
    if kind in ("char", "byte"):
        tok = CharTokenizer(data["chars"]) if kind == "char" else ByteTokenizer()
        tok.add_specials(data.get("specials", ()))
    elif kind == "bpe":
        from tokenizers import Tokenizer as HFTokenizer

        tok = BPETokenizer(HFTokenizer.from_str(json.dumps(data["hf"])))
    else:
        raise DataError(f"unknown tokenizer kind '{kind}'", "tokenizer")
    chat = data.get("chat")
    tok.chat = chat if isinstance(chat, dict) and isinstance(chat.get("template"), str) else None
    return tok


def load_tokenizer(path: str | Path) -> Tokenizer:
    return tokenizer_from_json(Path(path).read_text(encoding="utf-8"))


def train_tokenizer(kind: str, chunks_factory, bpe_vocab_size: int = 1024, specials: Iterable[str] = ()) -> Tokenizer:
    """Fit the tokenizer of `kind` on the text that chunks_factory() yields (may be called twice); `specials`
    (a chat template's tokens) each become one id after the learned vocabulary."""
    tok = _trained(kind, chunks_factory, bpe_vocab_size)
    tok.add_specials(specials)
    return tok


def _trained(kind: str, chunks_factory, bpe_vocab_size: int) -> Tokenizer:
    if kind == "byte":
        return ByteTokenizer()
    if kind == "char":
        return CharTokenizer.fit(chunks_factory())
    if kind == "bpe":
        tok = BPETokenizer.train(chunks_factory(), bpe_vocab_size)
        if tok.vocab_size < bpe_vocab_size:
            raise DataError(
                f"the text only supports {tok.vocab_size} BPE tokens, fewer than the {bpe_vocab_size} asked for; "
                f"choose {tok.vocab_size} or less, or add more text",
                "data.bpe_vocab_size",
            )
        return tok
    raise DataError(f"unknown tokenizer '{kind}'; choose char, byte or bpe", "data.tokenizer")
