"""The llama block kind in the window: its presets and fields on the form, and a tiny Llama folder taken in,
fine-tuned with LoRA, compared with its base side by side and exported back to transformers."""
from __future__ import annotations

import json
import os

import pytest
import torch

transformers = pytest.importorskip("transformers")

from autogpt_gui.engine.load import load_model  # noqa: E402
from autogpt_gui.engine.model.generate import generate_text  # noqa: E402

SETTINGS = ["data.source='shakespeare'", "train.max_steps=24", "optim.warmup_steps=2", "train.eval_interval=12",
            "train.checkpoint_interval=12", "optim.lr=1e-2", "train.precision='fp32'", "train.sample_tokens=0",
            "train.device='cpu'", "model.block_size=32", "train.batch_size=8"]


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory, shakespeare):
    """A random Llama folder saved by transformers: 2 layers, width 64, 4 heads, 2 KV heads, 128 positions,
    untied, with a byte-level BPE trained on Shakespeare."""
    from tokenizers import ByteLevelBPETokenizer

    folder = tmp_path_factory.mktemp("tiny-llama-gui")
    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator([shakespeare.read_text()], vocab_size=400, special_tokens=["<|endoftext|>"])
    tokenizer_json = tok._tokenizer.to_str()
    (folder / "tokenizer.json").write_text(tokenizer_json)
    config = transformers.LlamaConfig(
        vocab_size=len(json.loads(tokenizer_json)["model"]["vocab"]), hidden_size=64, intermediate_size=96,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        tie_word_embeddings=False, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    with torch.no_grad():  # norms of ones would hide a weight put in the wrong place
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(folder)
    return folder


def _shot(widget, tmp_path, name: str) -> None:
    """Save what the widget shows (for a person to look at, where AUTOGPT_SCREENSHOTS names a folder)."""
    from PySide6.QtWidgets import QApplication

    QApplication.processEvents()  # the layouts settle on the rows just shown or hidden, as the user would see them
    where = os.environ.get("AUTOGPT_SCREENSHOTS") or str(tmp_path)
    assert widget.grab().save(f"{where}/{name}")


def _shown(panel, key: str) -> bool:
    form, cell = panel.rows[key]
    return form.isRowVisible(cell)


def test_a_llama_preset_sets_the_block_kind_and_the_form_shows_only_that_kinds_fields(make_window, tmp_path,
                                                                                      tiny_gpt2):
    w = make_window(["data.source='shakespeare'"])
    panel = w.config_panel
    assert panel.editors["model.arch"].currentData() == "gpt2"
    assert _shown(panel, "model.bias") and not _shown(panel, "model.n_kv_head")
    preset = panel.editors["model.preset"]
    preset.setCurrentIndex(preset.findData("llama-micro"))
    m = panel.config().model
    assert (m.arch, m.n_layer, m.n_embd, m.n_kv_head, m.intermediate_size) == ("llama", 4, 128, 2, 384)
    assert panel.editors["model.arch"].currentData() == "llama" and panel.editors["model.n_kv_head"].value() == 2
    for key in ("model.n_kv_head", "model.head_dim", "model.intermediate_size", "model.rope_theta", "model.qk_norm",
                "model.tie_word_embeddings"):
        assert _shown(panel, key), key
    assert not _shown(panel, "model.bias") and "model.sliding_window" not in panel.rows  # for scripts only
    before = panel.summary.text()
    panel.editors["model.n_kv_head"].setValue(4)  # full multi-head attention: more parameters, and a custom shape
    assert panel.config().model.n_kv_head == 4 and panel.config().model.preset == "custom"
    assert panel.summary.text() != before and "parameters" in panel.summary.text()
    _shot(w, tmp_path, "form-llama-kind.png")

    preset.setCurrentIndex(preset.findData("smollm2-135m"))
    m = panel.config().model
    assert (m.n_layer, m.n_embd, m.n_head, m.n_kv_head, m.intermediate_size, m.block_size, m.rope_theta) == (
        30, 576, 9, 3, 1536, 2048, 100000.0)
    preset.setCurrentIndex(preset.findData("micro"))  # a gpt2-kind preset takes the block kind back
    m = panel.config().model
    assert (m.arch, m.n_kv_head, m.intermediate_size) == ("gpt2", 0, 0)
    assert _shown(panel, "model.bias") and not _shown(panel, "model.n_kv_head")

    preset.setCurrentIndex(preset.findData("llama-micro"))  # a GPT-2 taken in over a llama shape is of the gpt2 kind
    init = panel.editors["model.init"]
    init.line.setText(str(tiny_gpt2))
    init.line.editingFinished.emit()
    m = panel.config().model
    assert (m.arch, m.n_embd, m.n_kv_head, m.intermediate_size, m.bias) == ("gpt2", 64, 0, 0, True)


@pytest.mark.slow
def test_the_window_takes_a_llama_folder_fine_tunes_it_with_lora_compares_and_exports(
        qtbot, make_window, tiny_llama, tmp_path, monkeypatch):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QFileDialog

    w = make_window(SETTINGS)
    panel, s = w.config_panel, w.samples
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(tiny_llama))
    qtbot.mouseClick(panel.editors["model.init"].findChild(type(w.controls.start), "browse"), Qt.LeftButton)
    m = panel.config().model
    assert (m.arch, m.model_type, m.n_layer, m.n_kv_head, m.intermediate_size) == ("llama", "llama", 2, 2, 96)
    for key in ("model.arch", "model.n_layer", "model.n_kv_head", "model.head_dim", "model.intermediate_size",
                "model.rope_theta", "model.qk_norm", "model.tie_word_embeddings"):
        assert not panel.editors[key].isEnabled(), key
    summary = panel.summary.text()
    assert "Pretrained: <b>llama</b>" in summary and "<b>2</b> KV heads of 4" in summary, summary
    assert "context <b>128</b> (trains on 32)" in summary, summary
    mode = panel.editors["model.finetune"]
    mode.setCurrentIndex(mode.findData("lora"))
    panel.editors["model.lora_rank"].setValue(4)
    assert w.controls.start.isEnabled(), w.controls.why.text()

    qtbot.mouseClick(w.controls.start, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.charts.steps.n >= 6, timeout=60_000)
    _shot(w, tmp_path, "llama-lora-mid-run.png")
    qtbot.waitUntil(lambda: w.worker is None and "Finished at step 24" in w.controls.status.text(), timeout=90_000)
    last = f"{w.run_path}/checkpoints/last.pt"
    assert all(".lora_" in k for k in torch.load(last, weights_only=False)["model"])

    s.source.setCurrentIndex(s.source.findData("file"))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (last, ""))
    s.compare.setChecked(True)
    s.prompt.setPlainText("To be")
    s.temperature.setValue(0.0)
    s.max_tokens.setValue(15)
    qtbot.mouseClick(s.generate, Qt.LeftButton)
    base, tokenizer, _ = load_model(tiny_llama)
    tuned, _, _ = load_model(last)
    want_base = "To be" + generate_text(base, tokenizer, "To be", 15, temperature=0.0)
    want_tuned = "To be" + generate_text(tuned, tokenizer, "To be", 15, temperature=0.0)
    qtbot.waitUntil(lambda: not s.generate.isEnabled(), timeout=10_000)
    qtbot.waitUntil(lambda: s.generate.isEnabled(), timeout=30_000)
    # a random model's bytes may end mid-character: the streamed text holds that unfinished character back
    shown = (s.output.toPlainText(), s.base_output.toPlainText())
    assert shown == (want_tuned.rstrip("\ufffd"), want_base.rstrip("\ufffd")), s.note.text()
    assert want_base != want_tuned  # the adapters changed what the model says

    out = tmp_path / "llama-export"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(out))
    w.checkpoints.select_row("last.pt")
    assert w.checkpoints.export_format.currentData() == "hf"
    qtbot.mouseClick(w.checkpoints.export_btn, Qt.LeftButton)
    qtbot.waitUntil(lambda: "Exported a Hugging Face model folder" in w.controls.status.text(), timeout=30_000)
    theirs = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    assert type(theirs).__name__ == "LlamaForCausalLM"
    x = torch.tensor([tokenizer.encode("To be, or not to be")])
    with torch.no_grad():
        assert (tuned(x)[0] - theirs(x).logits).abs().max().item() < 1e-4

    init = panel.editors["model.init"]
    init.line.setText("")
    init.line.editingFinished.emit()
    m = panel.config().model
    assert (m.arch, m.model_type, m.n_kv_head, m.head_dim, m.intermediate_size, m.tie_word_embeddings) == (
        "gpt2", "", 0, 0, 0, True)
    assert panel.editors["model.n_kv_head"].isEnabled() and not _shown(panel, "model.n_kv_head")
    assert w.wait_for_threads(30)
