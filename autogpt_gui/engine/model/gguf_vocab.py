"""Our tokenizer as llama.cpp's GGUF vocabulary: byte-level BPE tokens, merges, token types and the
pre-tokenizer's name, which llama.cpp cannot guess for a tokenizer it has never seen (its converter knows
published tokenizers only, by hash) but which we know from how the tokenizer was built.

A BPE of ours is `tokenizers`' ByteLevel with GPT-2's split: llama.cpp's "gpt-2". The byte tokenizer is a
BPE over the 256 byte characters with no merges, so any split gives the same ids; it is written as "gpt-2"
with one merge of two 0xFF bytes, which UTF-8 text never contains (llama.cpp refuses a BPE with no merges).
Imported Llama 3 / Qwen2 tokenizers split with a regex first; the regex names llama.cpp's pre-tokenizer.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from autogpt_gui.engine.data.tokenizers import BPETokenizer, ByteTokenizer, CharTokenizer, Tokenizer
from autogpt_gui.errors import DataError

# llama.cpp's token types (gguf.TokenType): normal, control (special), user-defined (added, not special)
NORMAL, CONTROL, USER_DEFINED = 1, 3, 4
_LETTERS = r"[^\r\n\p{L}\p{N}]?\p{L}+|"
_TAIL = r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
# the Split regex of an imported tokenizer -> llama.cpp's name for the pre-tokenizer that applies it
SPLIT_REGEXES = {
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|" + _LETTERS + r"\p{N}{1,3}|" + _TAIL: "llama-bpe",
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|" + _LETTERS + r"\p{N}|" + _TAIL: "qwen2",
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+": "gpt-2",
}


@dataclass
class GGUFVocab:
    """What tokenizer.ggml.* holds: tokens in id order, their types, merges and the pre-tokenizer's name."""

    tokens: list[str]
    types: list[int]
    merges: list[str]
    pre: str


def gguf_vocab(tokenizer: Tokenizer) -> GGUFVocab:
    """The vocabulary llama.cpp tokenizes with to our ids; a char tokenizer is refused at data.tokenizer."""
    from autogpt_gui.engine.model.hf_export import _bytes_to_unicode

    if isinstance(tokenizer, CharTokenizer):
        raise DataError("a model with the char tokenizer cannot be exported to GGUF: llama.cpp reads byte-level "
                        "vocabularies only; train with the byte or bpe tokenizer instead", "data.tokenizer")
    if isinstance(tokenizer, ByteTokenizer):
        alphabet = _bytes_to_unicode()
        tokens = [alphabet[b] for b in range(256)] + list(tokenizer.specials)  # a chat model's, after the bytes
        types = [NORMAL] * 256 + [CONTROL] * len(tokenizer.specials)
        return GGUFVocab(tokens, types, [f"{alphabet[0xFF]} {alphabet[0xFF]}"], "gpt-2")
    if not isinstance(tokenizer, BPETokenizer):
        raise DataError(f"no GGUF vocabulary for the '{tokenizer.kind}' tokenizer", "data.tokenizer")
    data = json.loads(tokenizer.hf.to_str())
    model = data.get("model") or {}
    if model.get("type") != "BPE" or not _byte_level(data.get("pre_tokenizer")):
        raise DataError("this tokenizer is not a byte-level BPE, the only kind exported to GGUF here; "
                        "train with the byte or bpe tokenizer instead", "data.tokenizer")
    n = tokenizer.vocab_size
    tokens = [tokenizer.hf.id_to_token(i) for i in range(n)]
    if any(t is None for t in tokens):
        raise DataError("the tokenizer's ids have gaps, which a GGUF vocabulary cannot hold", "data.tokenizer")
    types = [NORMAL] * n
    for added in data.get("added_tokens") or []:
        if 0 <= added["id"] < n:
            types[added["id"]] = CONTROL if added.get("special") else USER_DEFINED
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges") or []]
    if not merges:  # llama.cpp refuses a BPE without merges; this one never applies to UTF-8 text
        alphabet = _bytes_to_unicode()
        merges = [f"{alphabet[0xFF]} {alphabet[0xFF]}"]
    return GGUFVocab([str(t) for t in tokens], types, merges, pre_tokenizer_name(data.get("pre_tokenizer")))


def _byte_level(pre: dict | None) -> bool:
    parts = (pre or {}).get("pretokenizers", [pre]) if pre else []
    return any(p and p.get("type") == "ByteLevel" for p in parts)


def pre_tokenizer_name(pre: dict | None) -> str:
    """llama.cpp's name for a tokenizer.json pre_tokenizer, or a DataError naming what it does not know."""
    parts = (pre or {}).get("pretokenizers", [pre]) if pre else []
    splits = [p for p in parts if p and p.get("type") == "Split"]
    level = next(p for p in parts if p and p.get("type") == "ByteLevel")
    if not splits:
        if level.get("add_prefix_space"):
            raise DataError("the tokenizer adds a space before the text (add_prefix_space), which no llama.cpp "
                            "pre-tokenizer does", "data.tokenizer")
        return "gpt-2"
    regex = (splits[0].get("pattern") or {}).get("Regex")
    name = SPLIT_REGEXES.get(regex or "")
    if name is None or len(splits) > 1:
        raise DataError(f"llama.cpp has no pre-tokenizer known to us for the split {str(regex)[:80]!r}; known: "
                        "GPT-2's, Llama 3's and Qwen2's", "data.tokenizer")
    return name


def special_ids(model_cfg, tokenizer: Tokenizer) -> dict[str, int]:
    """bos / eos / pad ids for the GGUF header, as the Hugging Face export names them."""
    from autogpt_gui.engine.model.hf_export import _special_ids

    found = _special_ids(model_cfg, tokenizer)
    out = {}
    for kind, value in found.items():
        first = value[0] if isinstance(value, list) else value
        if first is not None and first >= 0:
            out[kind] = int(first)
    return out
