"""Tokenizers round-trip any text; BPE trains fast; tokens are cached once and reused."""
import random
import time

import pytest

from autogpt_gui import paths
from autogpt_gui.config import DataConfig
from autogpt_gui.engine.data import sources as data_mod
from autogpt_gui.engine.data.sources import FileSource, prepare_tokens
from autogpt_gui.engine.data.tokenizers import BPETokenizer, ByteTokenizer, CharTokenizer, tokenizer_from_json

SAMPLES = ["plain ascii", "Grüße, 世界! 🚀🎉 naïve café", "tabs\tand\nnewlines\r\n", "emoji 👩‍👩‍👧 ZWJ",
           "مرحبا بالعالم", "\u0000\uffff edge", ""]


def _random_text(seed, n=2000):
    rng = random.Random(seed)
    return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0xA0, 0x2FFF),
                                   rng.randrange(0x1F300, 0x1FAFF)])) for _ in range(n))


@pytest.mark.parametrize("make", [
    lambda corpus: CharTokenizer.fit([corpus]),
    lambda corpus: ByteTokenizer(),
    lambda corpus: BPETokenizer.train(iter([corpus]), 400),
], ids=["char", "byte", "bpe"])
def test_round_trip_arbitrary_unicode(make):
    corpus = "".join(SAMPLES) + _random_text(1) + _random_text(2)
    tok = make(corpus)
    again = tokenizer_from_json(tok.to_json())
    for text in [*SAMPLES, _random_text(1), _random_text(2)]:
        ids = tok.encode(text)
        assert tok.decode(ids) == text
        assert again.encode(text) == ids


def test_char_tokenizer_names_unknown_characters():
    tok = CharTokenizer.fit(["abc"])
    with pytest.raises(Exception, match="not in this tokenizer's vocabulary"):
        tok.encode("abz")
    assert tok.encode("abz", strict=False) == tok.encode("ab")


def test_bpe_trains_on_a_megabyte_in_seconds(shakespeare):
    t0 = time.perf_counter()
    tok = BPETokenizer.train(FileSource(shakespeare).text_chunks(), 2000)
    took = time.perf_counter() - t0
    assert tok.vocab_size == 2000 and took < 20, took
    text = shakespeare.read_text()[:5000]
    assert len(tok.encode(text)) < 0.5 * len(text)


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_token_cache_is_reused_on_the_second_run(kind, shakespeare, monkeypatch):
    cfg = DataConfig(source="file", path=str(shakespeare), tokenizer=kind, bpe_vocab_size=512)
    first = prepare_tokens(FileSource(shakespeare), cfg, paths.cache_dir())
    assert not first.from_cache and len(first.train) > 0.8 * (len(first.train) + len(first.val))

    def no_tokenizing(*a, **k):
        raise AssertionError("tokenized again")

    monkeypatch.setattr(data_mod, "_tokenize_to_files", no_tokenizing)
    monkeypatch.setattr(data_mod, "train_tokenizer", no_tokenizing)
    second = prepare_tokens(FileSource(shakespeare), cfg, paths.cache_dir())
    assert second.from_cache
    assert (second.train[:1000] == first.train[:1000]).all() and len(second.val) == len(first.val)
    assert second.tokenizer.to_json() == first.tokenizer.to_json()


def test_large_file_streams_in_chunks_with_progress(tmp_path, monkeypatch):
    monkeypatch.setattr(data_mod, "CHUNK", 64 * 1024)
    big = tmp_path / "big.txt"
    big.write_text("lorem ipsum dolor sit amet\n" * 40_000)  # ~1 MB in 17 chunks
    seen = []
    data = prepare_tokens(FileSource(big), DataConfig(source="file", path=str(big)), paths.cache_dir(),
                          progress=lambda phase, f: seen.append((phase, f)))
    fractions = [f for phase, f in seen if phase == "tokenizing"]
    assert len(fractions) > 10 and fractions[-1] == pytest.approx(1.0)
    assert len(data.train) + len(data.val) == 27 * 40_000


def test_cancelling_tokenizing_leaves_no_cache(tmp_path, monkeypatch):
    from autogpt_gui.errors import Cancelled

    monkeypatch.setattr(data_mod, "CHUNK", 4096)
    f = tmp_path / "t.txt"
    f.write_text("some words here\n" * 5000)
    with pytest.raises(Cancelled):
        prepare_tokens(FileSource(f), DataConfig(source="file", path=str(f)), paths.cache_dir(),
                       cancelled=lambda: True)
    assert not any(paths.cache_dir().iterdir())
