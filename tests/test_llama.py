"""Llama-family models in and out (llama, mistral, qwen2, qwen3): transformers is the oracle. Then shards,
special tokens, honest counts, and each refusal at model.init.

Each kind is a tiny random model made here with transformers (2 layers, width 64, fp32) and a byte-level BPE
trained on Tiny Shakespeare, as tests/conftest.py makes the tiny GPT-2.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
import torch

transformers = pytest.importorskip("transformers")

from autogpt_gui import cli, paths  # noqa: E402
from autogpt_gui.engine import session as session_module  # noqa: E402
from autogpt_gui.engine.export import export_model  # noqa: E402
from autogpt_gui.engine.load import load_model  # noqa: E402
from autogpt_gui.engine.model import hf  # noqa: E402
from autogpt_gui.engine.model.generate import generate_text  # noqa: E402
from autogpt_gui.engine.run.runs import Run  # noqa: E402
from autogpt_gui.engine.session import build_session  # noqa: E402
from autogpt_gui.errors import AutoGPTError  # noqa: E402
from autogpt_gui.estimates import estimate  # noqa: E402

KINDS = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", {
        "num_key_value_heads": 2, "tie_word_embeddings": False, "rope_theta": 500000.0,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 32}}),
    "mistral": ("MistralConfig", "MistralForCausalLM", {"num_key_value_heads": 2, "sliding_window": 16}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", {"num_key_value_heads": 2}),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", {"num_key_value_heads": 2, "head_dim": 32,
                                                   "tie_word_embeddings": True}),
}
IMPORT = ["data.tokenizer='model'", "model.block_size=64", "train.batch_size=8",
          "train.eval_batches=4", "optim.warmup_steps=5", "optim.lr=3e-3", "train.precision='fp32'",
          "train.sample_tokens=0", "train.device='cpu'", "train.checkpoint_interval=0"]


def save_tiny(folder, kind: str, tokenizer_json: str, shard: str = "1GB", **changes):
    """A random model of `kind` saved by transformers into folder (in shards of at most `shard`), with the
    tokenizer; returns the HF model."""
    config_class, model_class, extra = KINDS[kind]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text(tokenizer_json)
    vocab = json.loads(tokenizer_json)["model"]["vocab"]
    config = getattr(transformers, config_class)(
        vocab_size=len(vocab), hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=128, bos_token_id=0, eos_token_id=0, **{**extra, **changes})
    torch.manual_seed(0)
    model = getattr(transformers, model_class)(config).eval()
    with torch.no_grad():  # norms of ones and zero biases would hide a weight put in the wrong place
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(folder, max_shard_size=shard)
    return model


@pytest.fixture(scope="session")
def bpe_json(shakespeare) -> str:
    from tokenizers import ByteLevelBPETokenizer

    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator([shakespeare.read_text()], vocab_size=400, special_tokens=["<|endoftext|>"])
    return tok._tokenizer.to_str()


@pytest.fixture(scope="session")
def corpus(tmp_path_factory, shakespeare):
    """The settings of a file source of 80,000 characters of Shakespeare: enough to learn from, quick to tokenize."""
    path = tmp_path_factory.mktemp("corpus") / "shakespeare-80k.txt"
    path.write_text(shakespeare.read_text()[:80_000])
    return ["data.source='file'", f"data.path='{path}'"]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory, bpe_json):
    """tiny(kind) -> the folder of that kind's tiny model (made once per session)."""
    made = {}

    def make(kind: str):
        if kind not in made:
            made[kind] = tmp_path_factory.mktemp(f"tiny-{kind}")
            save_tiny(made[kind], kind, bpe_json)
        return made[kind]

    return make


def _hf(folder):
    return transformers.AutoModelForCausalLM.from_pretrained(folder).eval()


def _assert_greedy_agrees(ours, theirs, prompt, n: int = 40) -> None:
    """Our greedy tokens are transformers', up to a position where its top two logits tie within 1e-3."""
    want = theirs.generate(prompt, max_new_tokens=n, min_new_tokens=n, do_sample=False, eos_token_id=None,
                           pad_token_id=0, output_scores=True, return_dict_in_generate=True)
    for use_cache in (True, False):
        got = ours.generate(prompt, n, temperature=0.0, use_cache=use_cache)[0, prompt.shape[1]:]
        for i, (a, b) in enumerate(zip(got.tolist(), want.sequences[0, prompt.shape[1]:].tolist())):
            if a != b:
                top = want.scores[i][0].topk(2).values
                assert top[0] - top[1] < 1e-3, (use_cache, i, a, b)
                break


@pytest.mark.parametrize("kind", KINDS)
def test_imported_model_gives_transformers_logits_and_greedy_tokens(kind, tiny, corpus):
    folder = tiny(kind)
    theirs = _hf(folder)
    from_folder, tokenizer, _ = load_model(folder)
    from_cli = build_session(cli.load_config(None, [f"model.init='{folder}'", *IMPORT, *corpus])).model.eval()
    shape = from_cli.config
    assert shape.arch == "llama" and shape.model_type == kind and shape.n_kv_head == 2
    assert (shape.rope_scaling == "llama3") == (kind == "llama") and shape.qk_norm == (kind == "qwen3")
    assert shape.head_dim == (32 if kind == "qwen3" else 16) and shape.qkv_bias == (kind == "qwen2")
    assert shape.tie_word_embeddings == (kind == "qwen3") and shape.sliding_window == (16 if kind == "mistral" else 0)
    ids = torch.randint(0, shape.vocab_size, (2, 64), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = theirs(ids).logits
        for ours in (from_folder, from_cli):
            assert (ours(ids)[0] - want).abs().max().item() < 1e-4
    prompt = torch.tensor([tokenizer.encode("ROMEO:\nShall I")])
    _assert_greedy_agrees(from_cli, theirs, prompt)


FINE_TUNES = [pytest.param(k, m, marks=[] if (k, m) in (("llama", "full"), ("qwen3", "lora")) else pytest.mark.slow)
              for k in KINDS for m in ("full", "lora")]


@pytest.mark.parametrize(("kind", "mode"), FINE_TUNES)
def test_fine_tuning_lowers_validation_loss_and_exports_for_transformers(kind, mode, tiny, tmp_path, corpus):
    folder = tiny(kind)
    lora = ["model.finetune='lora'", "model.lora_rank=8", "model.lora_alpha=32", "optim.lr=1e-2"] if mode == "lora" else []
    cfg = cli.load_config(None, [f"model.init='{folder}'", *IMPORT, *corpus, "train.max_steps=40",
                                 "train.eval_interval=40", *lora])
    before = build_session(cfg).trainer.evaluate()
    run = Run.create(cfg, paths.runs_dir())
    session = build_session(cfg, run)
    if mode == "lora":  # the default targets follow the kind: every linear layer of a llama block
        adapted = {n.split(".", 2)[2].removesuffix(".lora_A") for n, _ in session.model.named_parameters()
                   if n.endswith("lora_A") and n.startswith("blocks.0.")}
        assert adapted == {"attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.o_proj", "mlp.gate_proj",
                           "mlp.up_proj", "mlp.down_proj"}
    session.trainer.train()
    after = session.trainer.evaluate()
    assert after < before - 0.3, (before, after)
    out = export_model(run.path, tmp_path / "export")
    written = json.loads((out / "config.json").read_text())
    assert written["model_type"] == kind and written["architectures"] == [KINDS[kind][1]]
    _assert_export_matches(run.checkpoints_dir / "last.pt", out)


def _assert_export_matches(checkpoint, out) -> None:
    ours, tokenizer, _ = load_model(checkpoint)
    theirs = _hf(out)
    text = "Shall I compare thee to a summer's day?"
    ids = tokenizer.encode(text)
    assert transformers.AutoTokenizer.from_pretrained(out)(text)["input_ids"] == ids
    x = torch.tensor([ids])
    with torch.no_grad():
        assert (ours(x)[0] - theirs(x).logits).abs().max().item() < 1e-4


def test_a_llama_kind_model_made_here_resumes_exactly_and_exports_as_llama(tiny_config, tmp_path, corpus):
    cfg = tiny_config(*corpus, "model.arch='llama'", "model.n_kv_head=1", "model.dropout=0.1", "train.max_steps=12",
                      "train.eval_interval=6", "train.checkpoint_interval=0", "train.grad_accum=2",
                      "data.tokenizer='bpe'", "data.bpe_vocab_size=300", "train.sample_tokens=0")
    straight = build_session(cfg)
    losses: dict[int, float] = {}
    straight.trainer.on("step", lambda m: losses.__setitem__(m.step, m.loss))
    straight.trainer.train()
    run = Run.create(cfg, paths.runs_dir())
    first = build_session(cfg, run)
    first.trainer.on("step", lambda m: m.step == 6 and first.trainer.stop())
    assert first.trainer.train().step == 6
    resumed = build_session(run.config(), run, run.checkpoints_dir / "last.pt")
    again: dict[int, float] = {}
    resumed.trainer.on("step", lambda m: again.__setitem__(m.step, m.loss))
    assert resumed.trainer.train().step == 12
    assert again == {k: v for k, v in losses.items() if k > 6}
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    out = export_model(run.path, tmp_path / "export")
    assert json.loads((out / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    assert isinstance(_hf(out), transformers.LlamaForCausalLM)
    _assert_export_matches(run.checkpoints_dir / "last.pt", out)


def _copy(tiny, kind, tmp_path, name="copy"):
    out = tmp_path / name
    shutil.copytree(tiny(kind), out)
    return out


def _edit_json(path, **changes):
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_a_sharded_checkpoint_imports_and_a_missing_shard_is_refused(tmp_path, bpe_json):
    folder = tmp_path / "sharded"
    theirs = save_tiny(folder, "llama", bpe_json, shard="60KB")
    shards = sorted(folder.glob("model-*.safetensors"))
    assert (folder / "model.safetensors.index.json").is_file() and len(shards) > 1
    ours, _, _ = load_model(folder)
    ids = torch.randint(0, ours.config.vocab_size, (1, 32), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert (ours(ids)[0] - theirs(ids).logits).abs().max().item() < 1e-4
    shards[-1].unlink()
    with pytest.raises(AutoGPTError) as err:
        load_model(folder)
    assert err.value.field == "model.init" and f"misses the shard {shards[-1].name}" in str(err.value)


@pytest.mark.parametrize("kind", KINDS)
def test_the_estimate_counts_a_llama_kind_model_as_built(kind, tiny, corpus):
    for extra in ([], ["model.finetune='lora'", "model.lora_rank=4"]):
        cfg = cli.load_config(None, [f"model.init='{tiny(kind)}'", *IMPORT, *corpus, *extra])
        model = build_session(cfg).model
        est = estimate(replace(cfg, model=model.config))
        assert est.params == sum(p.numel() for p in model.parameters())
        assert est.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_sampling_stops_at_an_eos_token_of_generation_config(tiny, tmp_path):
    folder = _copy(tiny, "qwen2", tmp_path)
    model, tokenizer, _ = load_model(folder)
    prompt = "ROMEO:\nShall I"
    ids = torch.tensor([tokenizer.encode(prompt)])
    new = model.generate(ids, 10, temperature=0.0)[0, ids.shape[1]:].tolist()
    stop = next(i for i, t in enumerate(new) if i >= 2 and t not in new[:i] and t != 0)
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": [0, new[stop]]}))
    model, tokenizer, _ = load_model(folder)
    assert model.config.eos_token_ids == f"0,{new[stop]}"
    assert generate_text(model, tokenizer, prompt, 10, temperature=0.0) == tokenizer.decode(new[:stop])


def test_an_unsupported_model_type_is_refused_naming_the_supported_ones(tiny, tmp_path, capsys):
    folder = _copy(tiny, "llama", tmp_path)
    _edit_json(folder / "config.json", model_type="bert")
    code = cli.main(["train", "--set", f"model.init='{folder}'", "--set", "data.tokenizer='model'"])
    err = capsys.readouterr().err
    assert code == 2 and "model.init: " in err and "is a 'bert' model" in err
    assert "gpt2, llama, mistral, qwen2 and qwen3" in err


def test_a_rope_scaling_we_do_not_compute_is_refused_by_name(tiny, tmp_path, capsys):
    folder = _copy(tiny, "llama", tmp_path)
    _edit_json(folder / "config.json", rope_parameters={"rope_type": "yarn", "factor": 4.0, "rope_theta": 1e4})
    code = cli.main(["train", "--set", f"model.init='{folder}'", "--set", "data.tokenizer='model'"])
    err = capsys.readouterr().err
    assert code == 2 and "model.init: " in err and "rope scaling 'yarn'" in err


@pytest.mark.parametrize("damage", ["sentencepiece_only", "narrower_mlp", "extra_tensor"])
def test_a_broken_folder_is_refused_at_model_init_with_our_error(damage, tiny, tmp_path, corpus):
    folder = _copy(tiny, "mistral", tmp_path)
    if damage == "sentencepiece_only":
        (folder / "tokenizer.json").unlink()
        (folder / "tokenizer.model").write_bytes(b"\x0a\x0bsentencepiece")
        message = "only a sentencepiece tokenizer.model"
    elif damage == "narrower_mlp":
        _edit_json(folder / "config.json", intermediate_size=64)
        message = "the weights do not match config.json: blocks.0.mlp.gate_proj.weight is (96, 64)"
    else:
        from safetensors.torch import load_file, save_file

        state = load_file(str(folder / "model.safetensors"))
        save_file({**state, "model.layers.0.mlp.extra.weight": torch.zeros(2)}, str(folder / "model.safetensors"))
        message = "they hold blocks.0.mlp.extra.weight"
    for load in (lambda: load_model(folder),
                 lambda: build_session(cli.load_config(None, [f"model.init='{folder}'", *IMPORT, *corpus]))):
        with pytest.raises(AutoGPTError) as err:
            load()
        assert err.value.field == "model.init" and message in str(err.value), str(err.value)


def test_a_base_too_big_for_memory_is_refused_before_its_weights_are_read(tiny, monkeypatch, corpus):
    def unread(folder):
        raise AssertionError("the weights were read")

    monkeypatch.setattr(hf, "_read_weights", unread)
    monkeypatch.setattr(session_module, "device_memory", lambda device: (200_000, "this computer"))
    cfg = cli.load_config(None, [f"model.init='{tiny('qwen3')}'", *IMPORT, *corpus])
    with pytest.raises(AutoGPTError) as err:
        build_session(cfg)
    assert err.value.field == "model.init" and "training needs about" in str(err.value)
    assert "this computer has 195.3 KB" in str(err.value) and "LoRA" in str(err.value)
    with pytest.raises(AutoGPTError) as err:
        hf.load_pretrained(str(tiny("qwen3")), memory_limit=200_000)
    assert err.value.field == "model.init" and "this computer has 195.3 KB available" in str(err.value)


def test_a_llama_kind_model_trains_under_bf16_autocast_without_warnings():
    from autogpt_gui.engine.model.gpt import AutoGPTModel, GPTConfig

    model = AutoGPTModel(GPTConfig(vocab_size=100, arch="llama", n_kv_head=2, qk_norm=True, n_layer=2, n_embd=64))
    x = torch.randint(0, 100, (2, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = model(x)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):  # pytest turns a dtype-mismatch warning into an error
        logits, loss = model(x, x)
    loss.backward()
    assert torch.isfinite(loss) and (logits.float() - full).abs().max().item() < 0.1
