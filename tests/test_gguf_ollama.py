"""The Ollama Modelfile's TEMPLATE is our Jinja chat template translated to Go's text/template: a small Python
interpreter of the Go subset it uses renders conversations exactly as jinja2 renders the Jinja template.
And a chat model's GGUF file carries its template: llama.cpp's chat completion replies as our model does."""
from __future__ import annotations

import re

import pytest
import torch

from autogpt_gui.engine.model.ollama import go_template, modelfile

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
LLAMA3 = ("{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
          "'<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
# Qwen2.5's habit: a default system message when the conversation has none (not a per-message wrapping)
DEFAULT_SYSTEM = ("{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are helpful.<|im_end|>\n"
                  "{% endif %}" + CHATML)
CONVERSATIONS = [
    [{"role": "user", "content": "Hello?"}],
    [{"role": "system", "content": "Answer in verse."}, {"role": "user", "content": "Who art thou?"},
     {"role": "assistant", "content": "A player, sir."}, {"role": "user", "content": "Ünïcode — 東京 😀\n\nand more"}],
    [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"},
     {"role": "assistant", "content": "d"}, {"role": "user", "content": ""}],
]


def go_render(template: str, messages: list[dict]) -> str:
    """Go text/template's subset that our TEMPLATEs use: text, `range .Messages`, `if` / `else if eq .Role "x"`,
    `end`, `.Content`, `.Role`. Anything else fails the test."""
    parts = re.split(r"({{.*?}})", template)
    pos = 0

    def block(scope: dict | None) -> tuple[str, str]:
        nonlocal pos
        out = []
        while pos < len(parts):
            part = parts[pos]
            pos += 1
            if not part.startswith("{{"):
                out.append(part)
                continue
            action = part[2:-2].strip()
            if action in ("end", "else") or action.startswith("else if "):
                return "".join(out), action
            if action == "range .Messages":
                start = pos
                for m in messages:
                    pos = start
                    text, closing = block(m)
                    assert closing == "end"
                    out.append(text)
                if not messages:
                    block(None)
            elif action.startswith("if "):
                out.append(conditional(action[3:], scope))
            elif action in (".Content", ".Role"):
                assert scope is not None, action
                out.append(scope[action[1:].lower()])
            else:
                raise AssertionError(f"not in the subset: {part}")
        return "".join(out), ""

    def conditional(cond: str, scope: dict | None) -> str:
        chosen = None
        while True:
            m = re.fullmatch(r'eq \.Role "(\w+)"', cond)
            assert m, cond
            text, closing = block(scope)
            if chosen is None and scope is not None and scope["role"] == m.group(1):
                chosen = text
            if closing == "end":
                return chosen or ""
            assert closing.startswith("else if "), closing
            cond = closing[len("else if "):]

    text, closing = block(None)
    assert closing == "" and pos == len(parts)
    return text


def jinja_render(template: str, messages: list[dict], bos: str = "") -> str:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template).render(messages=messages, add_generation_prompt=True, bos_token=bos)


@pytest.mark.parametrize(("template", "bos"), [(CHATML, ""), (LLAMA3, "<|begin_of_text|>")], ids=["chatml", "llama3"])
def test_the_go_template_renders_conversations_as_the_jinja_template_does(template, bos):
    go = go_template(template, bos_token=bos)
    assert go is not None and "{{ range .Messages }}" in go
    for messages in CONVERSATIONS:
        assert go_render(go, messages) == jinja_render(template, messages, bos)


def test_a_template_that_is_not_per_message_is_not_translated_and_the_modelfile_says_so():
    assert go_template(DEFAULT_SYSTEM) is None
    text, note = modelfile("m-f32.gguf", DEFAULT_SYSTEM, ["<|im_end|>"])
    assert note and "sends prompts as they are" in note
    assert text.splitlines() == ["FROM ./m-f32.gguf", f"# {note}", 'TEMPLATE """{{ .Prompt }}"""',
                                 'PARAMETER stop "<|im_end|>"']


def test_the_modelfile_carries_the_translated_template_and_the_stop_tokens():
    text, note = modelfile("chat-q8_0.gguf", CHATML, ["<|im_end|>"])
    assert note is None
    go = re.search(r'TEMPLATE """(.*)"""', text, re.S).group(1)
    assert go == go_template(CHATML) and text.startswith("FROM ./chat-q8_0.gguf\n")
    assert text.rstrip().endswith('PARAMETER stop "<|im_end|>"')


def test_llama_cpp_chat_completion_with_the_stored_template_replies_as_our_model(shakespeare, tmp_path):
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python (the dev extra) is the oracle here")
    from autogpt_gui.engine.data.tokenizers import train_tokenizer
    from autogpt_gui.engine.model.gguf import write_gguf
    from autogpt_gui.engine.model.gpt import AutoGPTModel, GPTConfig
    from autogpt_gui.engine.model.hf_export import _bytes_to_unicode

    tok = train_tokenizer("bpe", lambda: iter([shakespeare.read_text()[:100_000]]), 600)
    tok.hf.add_special_tokens(["<|im_start|>", "<|im_end|>"])
    end = tok.hf.token_to_id("<|im_end|>")
    torch.manual_seed(0)
    model = AutoGPTModel(GPTConfig(vocab_size=tok.vocab_size, n_layer=2, n_head=4, n_embd=64, block_size=128)).eval()
    with torch.no_grad():  # a sharper random model: its greedy choices are not near-ties
        for p in model.parameters():
            p.mul_(4)
    path = tmp_path / "chat.gguf"
    write_gguf(model, tok, path, chat_template=CHATML, eot_ids=[end])
    messages = CONVERSATIONS[1]
    ids = tok.encode(jinja_render(CHATML, messages))
    # the reply's bytes as llama-cpp-python joins them: a random model's bytes that are not UTF-8 are dropped
    byte_of = {c: b for b, c in _bytes_to_unicode().items()}

    def greedy(n: int) -> str:
        with torch.no_grad():
            out = model.generate(torch.tensor([ids]), n, temperature=0.0, eos=[end])[0, len(ids):].tolist()
        return bytes(byte_of[c] for i in out if i != end for c in tok.hf.id_to_token(i)).decode("utf-8", "ignore")

    llm = llama_cpp.Llama(model_path=str(path), n_ctx=128, verbose=False, n_threads=2, type_k=0, type_v=0)
    reply = llm.create_chat_completion(messages=messages, temperature=0.0, max_tokens=24)["choices"][0]
    text, ours = reply["message"]["content"], greedy(24)
    print(f"chat reply: ours {ours!r}, llama.cpp's {text!r}")
    # llama-cpp-python does not stop inside an unfinished character, so its reply may run a few tokens longer
    assert len(ours) > 10 and text.startswith(ours) and greedy(48).startswith(text)


@pytest.mark.slow
@pytest.mark.parametrize("tokenizer", ["byte", "bpe"])
def test_a_chat_run_exports_its_template_its_end_of_turn_and_a_modelfile_that_llama_cpp_follows(
        tokenizer, tmp_path, capsys):
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python (the dev extra) is the oracle here")
    import json

    import gguf

    from autogpt_gui.cli import main
    from autogpt_gui.engine.data.chat import Turn
    from autogpt_gui.engine.load import load_trained
    from autogpt_gui.engine.model.chat import chat_reply, run_template

    data = tmp_path / "chat.jsonl"
    words = ["thou", "art", "a", "player", "sir", "good", "morrow", "kind", "lady", "fair"]
    with open(data, "w", encoding="utf-8") as f:
        for i in range(40):
            w = words[i % 10]
            f.write(json.dumps({"prompt": f"say {w} twice", "completion": f"{w} {w}"}) + "\n")
    run = tmp_path / "run"
    assert main(["train", "--quiet", "--out", str(run), "--set", "data.source=chat", "--set", f"data.path={data}",
                 "--set", f"data.tokenizer={tokenizer}", "--set", "data.bpe_vocab_size=300",
                 "--set", "model.preset=nano", "--set", "model.block_size=64", "--set", "train.max_steps=30",
                 "--set", "train.eval_interval=30", "--set", "train.sample_tokens=0", "--set", "optim.warmup_steps=2",
                 "--set", "train.device=cpu", "--set", "train.precision=fp32", "--set", "train.batch_size=8"]) == 0
    out = tmp_path / "gguf"
    assert main(["export", str(run), str(out), "--format", "gguf"]) == 0
    capsys.readouterr()
    model, tok, _, _ = load_trained(run)
    template = run_template(tok, model.config)
    (path,) = out.glob("*.gguf")
    fields = gguf.GGUFReader(str(path)).fields
    stored = bytes(fields["tokenizer.chat_template"].parts[-1]).decode()
    assert stored == template.text
    assert int(fields["tokenizer.ggml.eot_token_id"].parts[-1][0]) == template.end_of_turn_ids[0]
    modelfile_text = (out / "Modelfile").read_text()
    assert "TEMPLATE" in modelfile_text and "{{ .Prompt }}" not in modelfile_text
    assert 'PARAMETER stop "<|im_end|>"' in modelfile_text
    turns = [Turn("user", "say lady twice")]
    ours = chat_reply(model, tok, template, turns, max_new_tokens=20)
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=64, verbose=False, n_threads=2, type_k=0, type_v=0)
    reply = llm.create_chat_completion(messages=[{"role": "user", "content": "say lady twice"}], temperature=0.0,
                                       max_tokens=20)["choices"][0]
    print(f"{tokenizer} chat run: ours {ours!r}, llama.cpp's {reply['message']['content']!r}")
    assert reply["message"]["content"] == ours and reply["finish_reason"] == "stop"
