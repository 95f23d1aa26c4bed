"""Text sources -> validated text chunks -> tokenizer -> token cache (memmap, train and val).

Every source streams in chunks of about a mebibyte, so a large file is tokenized with bounded
memory and progress; the tokens are cached once, keyed by content hash and tokenizer.
"""
from __future__ import annotations

import codecs
import functools
import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autogpt_gui.config import tokenizer_kind
from autogpt_gui.engine.data.tasks import TaskExamples, make_task
from autogpt_gui.engine.data.tokenizers import Tokenizer, load_tokenizer, train_tokenizer
from autogpt_gui.engine.files import folder_in_place
from autogpt_gui.errors import Cancelled, DataError

CHUNK = 1 << 20
TEXT_SUFFIXES = {".txt", ".md", ".rst", ".py", ".json", ".csv", ".tex", ".html", ".xml", ".c", ".h",
                 ".cpp", ".js", ".ts", ".java", ".go", ".rs", ".toml", ".yaml", ".yml", ".ini", ".cfg", ".sh", ""}

Progress = Callable[[str, float], None]  # (phase, fraction done)


def _no_progress(phase: str, fraction: float) -> None:
    pass


# ---- sources --------------------------------------------------------------------------------
class Source:
    """A body of text that can be read more than once, chunk by chunk."""

    label = ""
    task: TaskExamples | None = None

    def byte_chunks(self) -> Iterator[tuple[str, bytes]]:
        """(origin, raw UTF-8 bytes) pieces in order; origin names the file for error messages."""
        raise NotImplementedError

    def size(self) -> int:
        raise NotImplementedError

    def text_chunks(self) -> Iterator[str]:
        """Validated text in chunks: binary or non-UTF-8 input raises DataError naming the file."""
        decoder, origin, offset = None, None, 0
        for where, raw in self.byte_chunks():
            if where != origin:
                if decoder is not None:
                    yield _finish(decoder, origin)
                decoder, origin, offset = codecs.getincrementaldecoder("utf-8")(), where, 0
            assert decoder is not None  # the first chunk of every file starts a decoder
            if b"\x00" in raw:
                raise DataError(f"{origin} looks like a binary file (it contains NUL bytes); choose a text file", "data.path")
            try:
                yield decoder.decode(raw)
            except UnicodeDecodeError as err:
                raise DataError(
                    f"{origin} is not UTF-8 text (bad byte at offset {offset + err.start}); "
                    "re-save it as UTF-8", "data.path") from None
            offset += len(raw)
        if decoder is not None:
            yield _finish(decoder, origin)

    def preview(self, n_chars: int = 2000) -> str:
        out = ""
        for chunk in self.text_chunks():
            out += chunk
            if len(out) >= n_chars:
                break
        return out[:n_chars]


def _finish(decoder, origin) -> str:
    try:
        return decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise DataError(f"{origin} ends in the middle of a UTF-8 character; re-save it as UTF-8", "data.path") from None


def _read_file(path: Path) -> Iterator[tuple[str, bytes]]:
    try:
        with open(path, "rb") as fh:
            while raw := fh.read(CHUNK):
                yield str(path), raw
    except FileNotFoundError:
        raise DataError(f"{path} does not exist; check the path", "data.path") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder; use source 'folder'", "data.path") from None
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror}", "data.path") from None


class FileSource(Source):
    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.label = self.path.name

    def byte_chunks(self):
        yield from _read_file(self.path)

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            raise DataError(f"{self.path} does not exist; check the path", "data.path") from None


class FolderSource(Source):
    """All text files below a folder, in sorted order, separated by blank lines."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.label = self.path.name + "/"
        if not self.path.is_dir():
            raise DataError(f"{self.path} is not a folder; check the path", "data.path")
        self.files = sorted(p for p in self.path.rglob("*")
                            if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES and not p.name.startswith("."))
        if not self.files:
            raise DataError(f"{self.path} holds no text files (.txt, .md, .py, ...); choose another folder", "data.path")

    def byte_chunks(self):
        for i, f in enumerate(self.files):
            yield from _read_file(f)
            if i + 1 < len(self.files):
                yield str(f), b"\n\n"

    def size(self) -> int:
        return sum(f.stat().st_size for f in self.files)


class JsonlSource(Source):
    """One JSON object per line; the text of `field` from each, separated by blank lines."""

    def __init__(self, path: str | Path, field: str = "text"):
        self.path, self.field = Path(path).expanduser(), field
        self.label = self.path.name

    def byte_chunks(self):
        buf: list[bytes] = []
        size = 0
        try:
            fh = open(self.path, encoding="utf-8")
        except OSError:
            raise DataError(f"{self.path} does not exist or cannot be read; check the path", "data.path") from None
        with fh:
            try:
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        text = json.loads(line)[self.field]
                    except (ValueError, KeyError, TypeError):
                        raise DataError(f"{self.path} line {lineno}: not a JSON object with a '{self.field}' "
                                        "text field", "data.path") from None
                    piece = (str(text) + "\n\n").encode("utf-8")
                    buf.append(piece)
                    size += len(piece)
                    if size >= CHUNK:
                        yield str(self.path), b"".join(buf)
                        buf, size = [], 0
            except UnicodeDecodeError:
                raise DataError(f"{self.path} is not UTF-8 text; re-save it as UTF-8", "data.path") from None
        if buf:
            yield str(self.path), b"".join(buf)

    def size(self) -> int:
        return self.path.stat().st_size


class BuiltinSource(Source):
    """A corpus that ships with the app: nothing to download, nothing to choose."""

    name = ""

    @functools.cached_property
    def _data(self) -> bytes:
        return self._text()

    def _text(self) -> bytes:
        raise NotImplementedError

    def byte_chunks(self):
        data = self._data
        for i in range(0, len(data), CHUNK):
            yield self.name, data[i : i + CHUNK]

    def size(self) -> int:
        return len(self._data)


class PythonDocsSource(BuiltinSource):
    """The Python documentation topics that ship with every Python (pydoc_data.topics)."""

    name, label = "python-docs", "Python documentation (built in)"

    def _text(self) -> bytes:
        from pydoc_data.topics import topics

        return "\n\n".join(topics[k].strip() for k in sorted(topics)).encode("utf-8")


class ShakespeareSource(BuiltinSource):
    """Tiny Shakespeare (public domain, 1.1 MB): the text nanoGPT and most GPT tutorials start from."""

    name, label = "shakespeare", "Tiny Shakespeare (built in)"

    def _text(self) -> bytes:
        import gzip

        from autogpt_gui.resources import resource_path

        path = resource_path("corpora", "tinyshakespeare.txt.gz")
        try:
            return gzip.decompress(path.read_bytes())
        except OSError as err:
            raise DataError(f"the built-in Shakespeare text is missing or damaged ({path}: {err}); reinstall the "
                            "app", "data.source") from None


class TaskSource(Source):
    """A synthetic task; its held-out examples are the validation split."""

    def __init__(self, name: str, digits: int, val_fraction: float):
        self.task = make_task(name, digits, seed=0, val_fraction=val_fraction)
        self.label = f"task: {name} ({digits} digits)" if name == "addition" else f"task: {name}"
        self._train = TaskExamples.text(self.task.train).encode()
        self._val = TaskExamples.text(self.task.val).encode()

    def byte_chunks(self):
        data = self._train + self._val
        for i in range(0, len(data), CHUNK):
            yield "task", data[i : i + CHUNK]

    def size(self) -> int:
        return len(self._train) + len(self._val)

    def val_chars(self) -> int:
        return len(self._val)


def make_source(data_cfg) -> Source:
    """The Source a DataConfig describes."""
    src = data_cfg.source
    if src == "python-docs":
        return PythonDocsSource()
    if src == "shakespeare":
        return ShakespeareSource()
    if src.startswith("task:"):
        return TaskSource(src[5:], data_cfg.task_digits, data_cfg.val_fraction)
    if not data_cfg.path:
        raise DataError(f"a {src} source needs a path; choose one", "data.path")
    if src == "file":
        return FileSource(data_cfg.path)
    if src == "folder":
        return FolderSource(data_cfg.path)
    if src == "jsonl":
        return JsonlSource(data_cfg.path, data_cfg.text_field)
    raise DataError(f"unknown source '{src}'", "data.source")


# ---- token cache ----------------------------------------------------------------------------
@dataclass
class TokenData:
    """A tokenizer and its train / validation token arrays (memmaps into the cache)."""

    tokenizer: Tokenizer
    train: np.ndarray
    val: np.ndarray
    from_cache: bool
    source_label: str = ""


def prepare_tokens(source: Source, data_cfg, cache_root: Path, progress: Progress = _no_progress,
                   cancelled: Callable[[], bool] = lambda: False, tokenizer: Tokenizer | None = None) -> TokenData:
    """Tokenize `source` into the cache (or reuse the cached tokens) and split train / val.

    `tokenizer`: a ready one (a pretrained model's own); otherwise data_cfg.tokenizer is trained on the text.
    """
    kind = tokenizer_kind(data_cfg.tokenizer, pretrained=tokenizer is not None)
    hasher, n_chars, size = hashlib.sha256(), 0, max(1, source.size())
    done, has_text = 0, False
    for chunk in source.text_chunks():
        data = chunk.encode("utf-8")
        hasher.update(data)
        n_chars += len(chunk)
        has_text = has_text or not chunk.isspace() and bool(chunk)
        done += len(data)
        progress("reading", min(1.0, done / size))
        if cancelled():
            raise Cancelled("tokenizing cancelled")
    if not has_text:
        raise DataError(f"{source.label or 'the source'} is empty; choose a file with text in it", "data.path")
    key_parts = [hasher.hexdigest(), kind, str(data_cfg.val_fraction)]
    if kind == "bpe":
        key_parts.append(str(data_cfg.bpe_vocab_size))
    if tokenizer is not None:
        key_parts.append(hashlib.sha256(tokenizer.to_json().encode()).hexdigest())
    key = hashlib.sha256("|".join(key_parts).encode()).hexdigest()[:24]
    folder = cache_root / key
    if (folder / "meta.json").exists():
        try:
            return _load_cached(folder, source.label)
        except (OSError, ValueError, DataError):
            shutil.rmtree(folder, ignore_errors=True)  # a damaged cache is rebuilt, not trusted

    if tokenizer is None:
        progress("training tokenizer", 0.0)
        tokenizer = train_tokenizer(kind, source.text_chunks, data_cfg.bpe_vocab_size)
    dtype = np.uint16 if tokenizer.vocab_size <= 65536 else np.uint32
    val_chars = source.val_chars() if isinstance(source, TaskSource) else int(n_chars * data_cfg.val_fraction)
    cut = n_chars - val_chars
    with folder_in_place(folder) as tmp:
        counts = _tokenize_to_files(source, tokenizer, cut, n_chars, tmp, dtype, progress, cancelled)
        tokenizer.save(tmp / "tokenizer.json")
        meta = {"dtype": np.dtype(dtype).name, "train": counts[0], "val": counts[1],
                "vocab_size": tokenizer.vocab_size, "source": source.label}
        (tmp / "meta.json").write_text(json.dumps(meta))
    fresh = _load_cached(folder, source.label)
    fresh.from_cache = False
    return fresh


def _tokenize_to_files(source, tokenizer, cut, n_chars, out: Path, dtype, progress, cancelled) -> tuple[int, int]:
    counts = [0, 0]
    files = [open(out / "train.bin", "wb"), open(out / "val.bin", "wb")]
    try:
        pos, carry = 0, ""
        for chunk in source.text_chunks():
            text = carry + chunk
            # keep the tail after the last newline for the next chunk, so BPE merges never split
            nl = text.rfind("\n")
            carry, text = (text[nl + 1 :], text[: nl + 1]) if nl >= 0 and len(text) < 4 * CHUNK else ("", text)
            pos = _write_split(text, pos, cut, tokenizer, files, counts, dtype)
            progress("tokenizing", min(1.0, pos / max(1, n_chars)))
            if cancelled():
                raise Cancelled("tokenizing cancelled")
        _write_split(carry, pos, cut, tokenizer, files, counts, dtype)
    finally:
        for f in files:
            f.close()
    return counts[0], counts[1]


def _write_split(text, pos, cut, tokenizer, files, counts, dtype) -> int:
    parts = [(0, text)] if pos + len(text) <= cut else [(1, text)] if pos >= cut else \
        [(0, text[: cut - pos]), (1, text[cut - pos :])]
    for which, piece in parts:
        if piece:
            ids = np.asarray(tokenizer.encode(piece), dtype=dtype)
            files[which].write(ids.tobytes())
            counts[which] += len(ids)
    return pos + len(text)


def _load_cached(folder: Path, label: str) -> TokenData:
    meta = json.loads((folder / "meta.json").read_text())
    dtype = np.dtype(meta["dtype"])
    arrays = []
    for name in ("train", "val"):
        n = meta[name]
        if (folder / f"{name}.bin").stat().st_size != n * dtype.itemsize:
            raise DataError("token cache is damaged", "data")
        arrays.append(np.memmap(folder / f"{name}.bin", dtype=dtype, mode="r", shape=(n,)) if n
                      else np.zeros(0, dtype=dtype))
    tok = load_tokenizer(folder / "tokenizer.json")
    return TokenData(tok, arrays[0], arrays[1], True, label)


def check_lengths(data: TokenData, block_size: int) -> None:
    """Both splits must hold more than one context window of tokens."""
    need = block_size + 1
    for name, arr in (("training", data.train), ("validation", data.val)):
        if len(arr) < need:
            raise DataError(
                f"the {name} split has {len(arr)} tokens, fewer than one context window ({need}); "
                f"use a context of at most {max(2, len(arr) - 1)} or more text", "model.block_size")
