"""GGUF export checked by llama.cpp itself (through llama-cpp-python): it loads the file, tokenizes to our ids,
and its logits pick our top-1 token on a held-out text; greedy continuations are equal for f32.

Each model is tiny (2 layers, width 64, context 256) and trained for 40 steps on Tiny Shakespeare (random
weights make the top two logits nearly tie, so top-1 agreement would measure noise): a BPE and a byte model
made here, a GPT-2 made by transformers and fine-tuned here, and llama / qwen2 / qwen3 folders made by
transformers and imported. llama.cpp keeps a float32 key/value cache here: the file is under test.
"""
from __future__ import annotations

import errno
import json

import numpy as np
import pytest
import torch

llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python (the dev extra) is the oracle here")
transformers = pytest.importorskip("transformers")
gguf = pytest.importorskip("gguf")

from autogpt_gui import cli  # noqa: E402
from autogpt_gui.engine.data.tokenizers import ByteTokenizer, train_tokenizer  # noqa: E402
from autogpt_gui.engine.load import load_model  # noqa: E402
from autogpt_gui.engine.model.gguf import write_gguf  # noqa: E402
from autogpt_gui.engine.model.gguf_check import llama_greedy, llama_logits, open_llama  # noqa: E402
from autogpt_gui.engine.model.gpt import AutoGPTModel, GPTConfig  # noqa: E402
from autogpt_gui.errors import AutoGPTError  # noqa: E402

TEST_TEXT = "Où est le café? “Naïve” Ünïcode — 東京 😀\nROMEO:\tShall I compare thee?  <|endoftext|>"
CONTEXT = 256
HF_KINDS = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", {
        "num_key_value_heads": 2, "tie_word_embeddings": False, "rope_theta": 500000.0,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 64}}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", {"num_key_value_heads": 2}),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", {"num_key_value_heads": 2, "head_dim": 32,
                                                   "tie_word_embeddings": True}),
}
KINDS = ["bpe", "byte", "gpt2-finetuned", *HF_KINDS]
# each model trains for a few seconds first (tens under load), so these run with the slow tests; the quick
# suite's llama.cpp check is the CLI's --verify on a run trained for 30 steps
CASES = [(k, q) for k in KINDS for q in ("f32", "f16", "bf16", "q8_0")]


@pytest.fixture(scope="module")
def text(shakespeare) -> str:
    return shakespeare.read_text()


@pytest.fixture(scope="module")
def bpe(text):
    return train_tokenizer("bpe", lambda: iter([text[:200_000]]), 1000)


def train_briefly(model, tokenizer, text: str, steps: int = 40):
    """A few Adam steps on the first 100,000 characters, so that top-1 tokens are decided by more than noise."""
    ids = torch.tensor(tokenizer.encode(text[:100_000]))
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    for _ in range(steps):
        starts = torch.randint(0, len(ids) - 129, (8,), generator=gen)
        x = torch.stack([ids[s : s + 128] for s in starts])
        y = torch.stack([ids[s + 1 : s + 129] for s in starts])
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def hf_folder(folder, kind: str, tokenizer_json: str):
    """A tiny random model of `kind` (gpt2 or one of HF_KINDS) saved by transformers, with its byte-level BPE."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text(tokenizer_json)
    vocab = len(json.loads(tokenizer_json)["model"]["vocab"])
    torch.manual_seed(0)
    if kind == "gpt2":
        model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
            vocab_size=vocab, n_positions=CONTEXT, n_embd=64, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0))
    else:
        config_class, model_class, extra = HF_KINDS[kind]
        model = getattr(transformers, model_class)(getattr(transformers, config_class)(
            vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=CONTEXT, bos_token_id=0, eos_token_id=0, **extra))
    with torch.no_grad():  # norms of ones and zero biases would hide a weight put in the wrong place
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def made(tmp_path_factory, text, bpe):
    """made(kind) -> (model, tokenizer), trained briefly; each made once per module."""
    from tokenizers import ByteLevelBPETokenizer

    cache: dict = {}

    def make(kind: str):
        if kind in cache:
            return cache[kind]
        torch.manual_seed(0)
        if kind in ("bpe", "byte"):
            tok = bpe if kind == "bpe" else ByteTokenizer()
            model = AutoGPTModel(GPTConfig(vocab_size=tok.vocab_size, n_layer=2, n_head=4, n_embd=64,
                                           block_size=CONTEXT))
        else:  # made by transformers, imported (and for gpt2, fine-tuned) here
            hf_tok = ByteLevelBPETokenizer()
            hf_tok.train_from_iterator([text], vocab_size=400, special_tokens=["<|endoftext|>"])
            name = kind.removesuffix("-finetuned")
            model, tok, _ = load_model(hf_folder(tmp_path_factory.mktemp(f"gguf-{name}"), name,
                                                 hf_tok._tokenizer.to_str()))
        cache[kind] = (train_briefly(model, tok, text), tok)
        return cache[kind]

    return make


def _agreement(llm, model, ids: list[int]) -> tuple[float, float]:
    theirs = llama_logits(llm, ids)
    with torch.no_grad():
        ours = model(torch.tensor([ids]))[0][0].numpy()
    return float((theirs.argmax(-1) == ours.argmax(-1)).mean()), float(np.abs(theirs - ours).max())


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "quant"), CASES)
def test_llama_cpp_runs_the_file_as_we_do(kind, quant, made, text, tmp_path):
    model, tok = made(kind)
    path = tmp_path / "model.gguf"
    plan = write_gguf(model, tok, path, quant)
    assert plan.arch == {"bpe": "gpt2", "byte": "gpt2", "gpt2-finetuned": "gpt2"}.get(kind, kind)
    llm = open_llama(path, CONTEXT)
    assert llm.tokenize(TEST_TEXT.encode(), add_bos=False, special=True) == tok.encode(TEST_TEXT)
    held_out = tok.encode(text[-30_000:])[:CONTEXT]
    top1, diff = _agreement(llm, model, held_out)
    print(f"{kind} {quant}: top-1 agreement {top1:.1%} over {len(held_out)} positions, max logit diff {diff:.4f}")
    assert top1 >= (0.95 if quant in ("q8_0", "bf16") else 0.99), (top1, diff)
    if quant == "f32":
        prompt = tok.encode("ROMEO:\nBut soft, what light")
        with torch.no_grad():
            ours = model.generate(torch.tensor([prompt]), 32, temperature=0.0)[0, len(prompt):].tolist()
        assert llama_greedy(llm, prompt, 32) == ours


@pytest.mark.slow
def test_q8_0_keeps_rows_that_are_not_a_multiple_of_32_at_f16(text, tmp_path):
    tok = ByteTokenizer()
    torch.manual_seed(0)
    model = train_briefly(AutoGPTModel(GPTConfig(vocab_size=256, n_layer=2, n_head=4, n_embd=48,
                                                 block_size=CONTEXT)), tok, text)
    path = tmp_path / "odd.gguf"
    plan = write_gguf(model, tok, path, "q8_0")
    assert "blk.0.attn_qkv.weight" in plan.kept and "blk.0.ffn_down.weight" not in plan.kept  # 48 wide, 192 wide
    types = {t.name: t.tensor_type.name for t in gguf.GGUFReader(str(path)).tensors}
    assert types["blk.0.attn_qkv.weight"] == "F16" and types["blk.0.ffn_down.weight"] == "Q8_0"
    assert types["blk.0.attn_norm.weight"] == "F32"
    top1, diff = _agreement(open_llama(path, CONTEXT), model, tok.encode(text[-30_000:])[:CONTEXT])
    print(f"width 48, q8_0 with f16 kept: top-1 agreement {top1:.1%}, max logit diff {diff:.4f}")
    assert top1 >= 0.95


@pytest.mark.slow
def test_an_exact_gelu_model_exports_and_says_what_llama_cpp_computes_instead(text, tmp_path):
    """llama.cpp's gpt2 graph computes tanh GELU; a model trained with exact GELU still exports, measured."""
    tok = ByteTokenizer()
    torch.manual_seed(0)
    model = train_briefly(AutoGPTModel(GPTConfig(vocab_size=256, n_layer=2, n_head=4, n_embd=64,
                                                 block_size=CONTEXT, activation="gelu")), tok, text)
    assert GPTConfig().activation == "gelu_tanh"  # new models compute what llama.cpp does
    path = tmp_path / "exact.gguf"
    write_gguf(model, tok, path)
    top1, diff = _agreement(open_llama(path, CONTEXT), model, tok.encode(text[-30_000:])[:CONTEXT])
    print(f"exact GELU under llama.cpp's tanh GELU: top-1 agreement {top1:.1%}, max logit diff {diff:.4f}")
    assert top1 >= 0.95


def test_a_sliding_window_model_is_refused_at_its_field(tmp_path):
    model = AutoGPTModel(GPTConfig(vocab_size=256, n_layer=1, n_head=2, n_embd=32, block_size=64, arch="llama",
                                   sliding_window=16))
    with pytest.raises(AutoGPTError) as err:
        write_gguf(model, ByteTokenizer(), tmp_path / "m.gguf")
    assert err.value.field == "model.sliding_window" and "sliding window of 16" in str(err.value)
    assert list(tmp_path.iterdir()) == []


TINY_RUN = ["model.preset='custom'", "model.n_layer=2", "model.n_head=2", "model.n_embd=64", "model.block_size=64",
            "train.batch_size=8", "train.max_steps=30", "train.eval_interval=30", "train.eval_batches=2",
            "train.checkpoint_interval=30", "train.sample_tokens=0", "train.precision='fp32'",
            "train.device='cpu'", "optim.warmup_steps=2", "data.bpe_vocab_size=512"]


def _train(out, tokenizer: str) -> None:
    sets = [a for s in [*TINY_RUN, f"data.tokenizer='{tokenizer}'"] for a in ("--set", s)]
    assert cli.main(["train", "--out", str(out), "--quiet", *sets]) == 0


@pytest.fixture(scope="module")
def bpe_run(tmp_path_factory):
    """A BPE run trained once for this module's CLI tests (in a user folder of its own)."""
    folder = tmp_path_factory.mktemp("gguf-run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTOGPT_GUI_HOME", str(folder / "home"))
        _train(folder / "run", "bpe")
    return folder / "run"


def test_the_cli_exports_a_run_checks_it_and_verifies_it_in_llama_cpp(bpe_run, tmp_path, capsys):
    capsys.readouterr()
    out = tmp_path / "gguf"
    assert cli.main(["export", str(bpe_run), str(out), "--format", "gguf", "--quant", "q8_0", "--verify"]) == 0
    said = capsys.readouterr().out
    assert "read back: gpt2, 28 tensors" in said and "32/32 greedy tokens equal to ours" in said, said
    assert sorted(p.name for p in out.iterdir()) == ["Modelfile", "README.md", "run-q8_0.gguf"]
    reader = gguf.GGUFReader(str(out / "run-q8_0.gguf"))
    assert reader.fields["tokenizer.ggml.pre"].contents() == "gpt-2"
    assert reader.fields["gpt2.context_length"].contents() == 64
    assert {t.tensor_type.name for t in reader.tensors} == {"Q8_0", "F32"}
    card = (out / "README.md").read_text()
    assert "llama-cli -m run-q8_0.gguf" in card and "ollama create run -f Modelfile" in card
    assert "GPT-2-architecture" in card and "32/32 greedy tokens" in card
    assert (out / "Modelfile").read_text().startswith("FROM ./run-q8_0.gguf\n")


def test_an_out_named_dot_gguf_is_the_file_with_the_modelfile_beside_it(bpe_run, tmp_path, capsys):
    out = tmp_path / "models" / "mine.gguf"
    assert cli.main(["export", str(bpe_run), str(out), "--format", "gguf"]) == 0
    assert out.is_file() and f"exported to {out} " in capsys.readouterr().out
    assert sorted(p.name for p in out.parent.iterdir()) == ["Modelfile", "README.md", "mine.gguf"]
    assert (out.parent / "Modelfile").read_text().startswith("FROM ./mine.gguf\n")
    assert gguf.GGUFReader(str(out)).fields["general.architecture"].contents() == "gpt2"


def test_a_char_model_is_refused_naming_the_tokenizer_to_train_instead(tmp_path, capsys):
    _train(tmp_path / "run", "char")
    capsys.readouterr()
    assert cli.main(["export", str(tmp_path / "run"), str(tmp_path / "out"), "--format", "gguf"]) == 1
    err = capsys.readouterr().err
    assert "data.tokenizer" in err and "byte or bpe tokenizer" in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


def test_a_full_disk_leaves_no_partial_gguf_and_says_so(bpe_run, tmp_path, monkeypatch, capsys):
    real = gguf.GGUFWriter.write_tensors_to_file

    def fills_up(self, *args, **kw):
        self.fout[0].write(b"\0" * 1000)  # part of the file is written, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensors_to_file", fills_up)
    out = tmp_path / "gguf"
    capsys.readouterr()
    assert cli.main(["export", str(bpe_run), str(out), "--format", "gguf"]) == 1
    err = capsys.readouterr().err
    assert "disk full while writing the export" in err and " free)" in err and "Traceback" not in err, err
    assert list(out.iterdir()) == []  # no .gguf, no temporary file, no Modelfile or card
    monkeypatch.setattr(gguf.GGUFWriter, "write_tensors_to_file", real)  # space was freed
    assert cli.main(["export", str(bpe_run), str(out), "--format", "gguf"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["Modelfile", "README.md", "run-f32.gguf"]


def test_an_unwritable_output_folder_gets_a_clear_message(bpe_run, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    capsys.readouterr()
    assert cli.main(["export", str(bpe_run), str(blocker / "out"), "--format", "gguf"]) == 1
    err = capsys.readouterr().err
    assert "could not write" in err and str(blocker / "out") in err and "Traceback" not in err, err
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize("name", ["llama-bpe", "qwen2"])
def test_a_split_regex_tokenizer_gets_llama_cpps_pre_tokenizer_and_tokenizes_as_ours(name, text, tmp_path):
    """Llama 3 / Qwen2 style tokenizers (a Split regex, then ByteLevel without its own) are named by their regex."""
    from tokenizers import Regex, decoders, models, pre_tokenizers, trainers
    from tokenizers import Tokenizer as HFTokenizer

    from autogpt_gui.engine.data.tokenizers import BPETokenizer
    from autogpt_gui.engine.model.gguf_vocab import SPLIT_REGEXES

    regex = next(r for r, n in SPLIT_REGEXES.items() if n == name)
    hf = HFTokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(regex), behavior="isolated"),
                                                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    hf.decoder = decoders.ByteLevel()
    hf.train_from_iterator([text[:100_000] + " 1234567 89 2026"], trainers.BpeTrainer(
        vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tok = BPETokenizer(hf)
    model = AutoGPTModel(GPTConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=32, block_size=64))
    path = tmp_path / "m.gguf"
    write_gguf(model, tok, path)
    assert gguf.GGUFReader(str(path)).fields["tokenizer.ggml.pre"].contents() == name
    llm = open_llama(path, 64)
    sample = TEST_TEXT + " in 1234567 years, I'LL say 't  \n\n  done"
    assert llm.tokenize(sample.encode(), add_bos=False, special=True) == tok.encode(sample)


def test_an_unknown_split_regex_is_refused_naming_the_known_ones():
    from autogpt_gui.engine.model.gguf_vocab import pre_tokenizer_name

    pre = {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": r"\w+|\W"}},
                                                {"type": "ByteLevel", "add_prefix_space": False}]}
    with pytest.raises(AutoGPTError) as err:
        pre_tokenizer_name(pre)
    assert err.value.field == "data.tokenizer" and "Llama 3's and Qwen2's" in str(err.value)
