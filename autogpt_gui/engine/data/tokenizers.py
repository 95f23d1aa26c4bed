"""Character, byte and byte-level BPE tokenizers, each saved and loaded as JSON."""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from autogpt_gui.errors import DataError


class Tokenizer:
    """Text <-> token ids. Subclasses set `kind` and implement the four methods below."""

    kind = ""

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
        return len(self.chars)

    def encode(self, text: str, strict: bool = True) -> list[int]:
        """Ids of text; with strict=False characters outside the vocabulary are dropped."""
        if strict:
            try:
                return [self.stoi[c] for c in text]
            except KeyError as err:
                raise DataError(
                    f"character {err.args[0]!r} is not in this tokenizer's vocabulary", "data.tokenizer"
                ) from None
        return [self.stoi[c] for c in text if c in self.stoi]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.chars[i] for i in ids if 0 <= i < len(self.chars))

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "chars": self.chars}, ensure_ascii=False)


class ByteTokenizer(Tokenizer):
    """The 256 UTF-8 byte values: every text fits, nothing to train."""

    kind = "byte"

    @property
    def vocab_size(self) -> int:
        return 256

    def encode(self, text: str, strict: bool = True) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: Iterable[int]) -> str:
        return bytes(i for i in ids if 0 <= i < 256).decode("utf-8", errors="replace")

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind})


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

    def decode(self, ids: Iterable[int]) -> str:
        return self.hf.decode(list(ids))

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "hf": json.loads(self.hf.to_str())}, ensure_ascii=False)


def tokenizer_from_json(text: str) -> Tokenizer:
    """Rebuild a tokenizer saved with `to_json`."""
    try:
        data = json.loads(text)
        kind = data["kind"]
    except (ValueError, KeyError, TypeError):
        raise DataError("not a tokenizer file of ours (expected JSON with a 'kind')", "tokenizer") from None
    if kind == "char":
        return CharTokenizer(data["chars"])
    if kind == "byte":
        return ByteTokenizer()
    if kind == "bpe":
        from tokenizers import Tokenizer as HFTokenizer

        return BPETokenizer(HFTokenizer.from_str(json.dumps(data["hf"])))
    raise DataError(f"unknown tokenizer kind '{kind}'", "tokenizer")


def load_tokenizer(path: str | Path) -> Tokenizer:
    return tokenizer_from_json(Path(path).read_text(encoding="utf-8"))


def train_tokenizer(kind: str, chunks_factory, bpe_vocab_size: int = 1024) -> Tokenizer:
    """Fit the tokenizer of `kind` on the text that chunks_factory() yields (may be called twice)."""
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
