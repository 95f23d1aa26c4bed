import pytest
import torch

from autogpt_gui.config import PRESETS
from autogpt_gui.engine.model.gpt import AutoGPTModel, GPTConfig


def test_default_model_takes_byte_tokens_and_learns_shape():
    model = AutoGPTModel()
    assert model.config.vocab_size >= 256
    x, y = torch.randint(256, (2, 16)), torch.randint(256, (2, 16))
    logits, loss = model(x, y)
    assert logits.shape == (2, 16, model.config.vocab_size)
    assert abs(loss.item() - torch.log(torch.tensor(256.0)).item()) < 0.5  # GPT-2 init starts near uniform


@pytest.mark.parametrize("name,low,high", [("nano", 0.1e6, 0.3e6), ("micro", 0.7e6, 0.9e6),
                                           ("mini", 10e6, 11.5e6), ("gpt2", 84e6, 86e6)])
def test_presets_have_the_advertised_size(name, low, high):
    cfg = GPTConfig.from_preset(name, vocab_size=65) if name in ("nano", "micro", "mini") else None
    if cfg is None:  # building GPT-2 is slow; count its parameters arithmetically
        n_layer, _, c, _ = PRESETS[name]
        n = n_layer * (12 * c * c + 13 * c) + 2 * c
    else:
        n = AutoGPTModel(cfg).num_params() - 65 * cfg.n_embd
    assert low <= n <= high


def test_kv_cache_generation_matches_full_recomputation():
    torch.manual_seed(0)
    model = AutoGPTModel(GPTConfig(vocab_size=50, block_size=32, n_layer=2, n_head=2, n_embd=32)).eval()
    prompt = torch.randint(50, (3, 5))
    cached = model.generate(prompt, 20, temperature=0.0)
    idx = prompt
    for _ in range(20):
        logits, _ = model(idx[:, -32:])
        idx = torch.cat([idx, logits[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(cached, idx)


def test_generation_runs_past_the_context_and_respects_top_k():
    model = AutoGPTModel(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=1, n_embd=16))
    out = model.generate(torch.zeros(1, 3, dtype=torch.long), 50, temperature=1.0, top_k=1)
    greedy = model.generate(torch.zeros(1, 3, dtype=torch.long), 50, temperature=0.0)
    assert out.shape == (1, 53) and torch.equal(out, greedy)
    top_p = model.generate(torch.zeros(1, 3, dtype=torch.long), 20, temperature=1.0, top_p=0.5)
    assert top_p.shape == (1, 23)


def test_flops_per_token_follows_6n():
    model = AutoGPTModel(GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128))
    assert model.flops_per_token() >= 6 * model.num_params()


def test_heads_that_do_not_divide_width_are_refused():
    with pytest.raises(ValueError, match="heads"):
        AutoGPTModel(GPTConfig(n_head=3, n_embd=128))
