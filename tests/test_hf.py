"""Pretrained GPT-2 in, Hugging Face folders out: transformers is the oracle (a tiny random GPT-2 made here)."""
from __future__ import annotations

import json
import os
import stat

import pytest
import torch

transformers = pytest.importorskip("transformers")

from autogpt_gui import cli, paths  # noqa: E402
from autogpt_gui.config import RunConfig  # noqa: E402
from autogpt_gui.engine.load import load_model  # noqa: E402
from autogpt_gui.engine.run.runs import Run  # noqa: E402
from autogpt_gui.engine.session import build_session  # noqa: E402

TEXT_WITH_ACCENTS = "Grüße aus Köln — naïve café, señor! 日本語も。\n"


def _hf(folder):
    return transformers.AutoModelForCausalLM.from_pretrained(folder).eval()


IMPORT = ["data.source='shakespeare'", "data.tokenizer='model'", "model.block_size=64", "train.batch_size=8",
          "train.max_steps=100", "train.eval_interval=50", "train.eval_batches=8", "optim.warmup_steps=10",
          "optim.lr=3e-3", "train.precision='fp32'", "train.sample_tokens=0", "train.device='cpu'",
          "train.checkpoint_interval=50"]


def test_imported_gpt2_gives_transformers_logits_and_greedy_text(tiny_gpt2):
    cfg = cli.load_config(None, [f"model.init='{tiny_gpt2}'", *IMPORT])
    ours = build_session(cfg).model.eval()
    theirs = _hf(tiny_gpt2)
    assert ours.config.activation == "gelu_tanh" and ours.config.n_positions == 128 and ours.config.bias
    ids = torch.randint(0, ours.config.vocab_size, (2, 64), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        diff = (ours(ids)[0] - theirs(ids).logits).abs().max().item()
    assert diff < 1e-4, diff
    prompt = ids[:1, :10]
    got = ours.generate(prompt, 40, temperature=0.0)
    want = theirs.generate(prompt, max_new_tokens=40, do_sample=False, pad_token_id=0)
    assert torch.equal(got, want)


def test_fine_tuning_gpt2_lowers_validation_loss_and_exports_for_transformers(tiny_gpt2, tmp_path, capsys):
    run_dir = tmp_path / "run"
    settings = [f"model.init='{tiny_gpt2}'", *IMPORT]
    before = build_session(cli.load_config(None, settings)).trainer.evaluate()  # the imported model, untrained
    assert cli.main(["train", "--out", str(run_dir), "--quiet", *[a for s in settings for a in ("--set", s)]]) == 0
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    evals = [json.loads(ln) for ln in lines if '"eval"' in ln]
    assert evals[-1]["step"] == 100 and evals[-1]["val_loss"] < before - 0.5, (before, evals)
    out = tmp_path / "export"
    assert cli.main(["export", str(run_dir), str(out)]) == 0
    _assert_transformers_matches(run_dir / "checkpoints" / "best.pt", out, "Shall I compare thee? " + TEXT_WITH_ACCENTS)
    card = (out / "README.md").read_text()
    assert str(tiny_gpt2) in card and "validation loss" in card and 'model.init' not in card.split("```toml")[0]


@pytest.mark.parametrize("tokenizer", ["char", "byte", "bpe"])
def test_models_trained_here_export_for_transformers_with_their_tokenizers(tokenizer, tmp_path, tiny_config,
                                                                          shakespeare):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(shakespeare.read_text()[:200_000] + TEXT_WITH_ACCENTS * 50, encoding="utf-8")
    cfg = tiny_config("data.source='file'", f"data.path='{corpus}'", f"data.tokenizer='{tokenizer}'",
                      "data.bpe_vocab_size=300", "train.max_steps=20")
    run = Run.create(cfg, paths.runs_dir())
    build_session(cfg, run).trainer.train()
    out = tmp_path / "export"
    assert cli.main(["export", str(run.path), str(out), "--format", "hf"]) == 0
    _assert_transformers_matches(run.checkpoints_dir / "last.pt", out, TEXT_WITH_ACCENTS)


def _assert_transformers_matches(checkpoint, folder, text: str) -> None:
    ours, tokenizer, _ = load_model(checkpoint)
    theirs = _hf(folder)
    hf_tok = transformers.AutoTokenizer.from_pretrained(folder)
    ids = tokenizer.encode(text)
    assert hf_tok(text)["input_ids"] == ids  # the same ids, accents and CJK included
    assert hf_tok.decode(ids) == text
    x = torch.tensor([ids[: ours.config.block_size]])
    with torch.no_grad():
        assert (ours(x)[0] - theirs(x).logits).abs().max().item() < 1e-4
    prompt = x[:, :5]
    n = min(40, ours.config.block_size - 5)
    assert torch.equal(ours.generate(prompt, n, temperature=0.0),
                       theirs.generate(prompt, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0,
                                       eos_token_id=None))
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "generation_config.json", "README.md"):
        mode = os.stat(folder / name).st_mode
        assert mode & stat.S_IROTH, f"{name} is not world-readable"


def test_bad_pretrained_inputs_get_field_level_messages(tmp_path, tiny_gpt2, capsys):
    import shutil

    empty = tmp_path / "empty"
    empty.mkdir()
    bert = tmp_path / "bert"
    shutil.copytree(tiny_gpt2, bert)
    cfg = json.loads((bert / "config.json").read_text())
    (bert / "config.json").write_text(json.dumps({**cfg, "model_type": "bert"}))
    cases = [
        (f"model.init='{empty}'", "model.init: ", "has no config.json"),
        (f"model.init='{bert}'", "model.init: ", "is a 'bert' model; only gpt2, llama, mistral, qwen2 and qwen3"),
        (f"model.init='{tmp_path / 'nowhere' / 'x'}'", "model.init: ", "does not exist"),
    ]
    for setting, field, message in cases:
        code = cli.main(["train", "--set", setting, "--set", "data.tokenizer='model'"])
        err = capsys.readouterr().err
        assert code == 2 and field in err and message in err and "Traceback" not in err, err
    code = cli.main(["train", "--set", f"model.init='{tiny_gpt2}'", "--set", "data.tokenizer='model'", "--set",
                     "model.block_size=256"])
    err = capsys.readouterr().err
    assert code == 2 and "model.block_size: context (256) is longer than the 128 positions" in err
    code = cli.main(["train", "--set", f"model.init='{tiny_gpt2}'", "--set", "data.tokenizer='char'"])
    assert code == 2 and "data.tokenizer: a pretrained model reads text with its own tokenizer" in capsys.readouterr().err


def test_a_hostile_pytorch_model_bin_is_refused_and_runs_nothing(tmp_path, tiny_gpt2, capsys):
    import shutil

    folder = tmp_path / "hostile"
    shutil.copytree(tiny_gpt2, folder)
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"transformer.wte.weight": Evil()}, folder / "pytorch_model.bin")
    code = cli.main(["train", "--set", f"model.init='{folder}'", *[a for s in IMPORT for a in ("--set", s)]])
    err = capsys.readouterr().err
    assert code == 1 and "was refused: it asks to run" in err and not marker.exists()


def test_a_hub_id_offline_says_how_to_get_the_folder(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = cli.main(["train", "--set", "model.init='gpt2'", *[a for s in IMPORT for a in ("--set", s)]])
    err = capsys.readouterr().err
    assert code == 1 and "model.init: could not fetch 'gpt2' from the Hugging Face hub" in err
    assert "huggingface-cli download gpt2 --local-dir gpt2" in err


def test_the_window_takes_a_pretrained_folder_locks_its_shape_trains_and_exports(qtbot, tiny_gpt2, tmp_path,
                                                                                 monkeypatch):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QFileDialog

    from autogpt_gui.ui.app import make_app
    from autogpt_gui.ui.main_window import MainWindow

    make_app()
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    w.set_config(RunConfig().with_overrides(["data.source='shakespeare'", "train.max_steps=20", "optim.warmup_steps=2",
                                             "train.eval_interval=10", "train.checkpoint_interval=10",
                                             "train.precision='fp32'", "train.sample_tokens=10",
                                             "train.device='cpu'", "model.block_size=32"]))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(tiny_gpt2))
    init = w.config_panel.editors["model.init"]
    qtbot.mouseClick(init.findChild(type(w.controls.start), "browse"), Qt.LeftButton)
    panel = w.config_panel
    assert panel.editors["model.n_layer"].value() == 2 and panel.editors["model.n_embd"].value() == 64
    assert not panel.editors["model.n_layer"].isEnabled() and not panel.editors["data.tokenizer"].isEnabled()
    assert panel.config().data.tokenizer == "auto" and w.controls.start.isEnabled(), w.controls.why.text()

    # the playground speaks with the imported model before any training, as transformers' greedy decoding would
    s = w.samples
    s.source.setCurrentIndex(s.source.findData("base"))
    s.prompt.setPlainText("To be")
    s.temperature.setValue(0.0)
    s.max_tokens.setValue(12)
    qtbot.mouseClick(s.generate, Qt.LeftButton)
    qtbot.waitUntil(lambda: s.generate.isEnabled(), timeout=120_000)
    hf_tok = transformers.AutoTokenizer.from_pretrained(tiny_gpt2)
    prompt = hf_tok("To be", return_tensors="pt").input_ids
    want = hf_tok.decode(_hf(tiny_gpt2).generate(prompt, max_new_tokens=12, min_new_tokens=12, do_sample=False,
                                                 pad_token_id=0, eos_token_id=None)[0])
    assert s.output.toPlainText() == want

    qtbot.mouseClick(w.controls.start, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.worker is None and "Finished at step 20" in w.controls.status.text(), timeout=120_000)
    out = tmp_path / "hf-export"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(out))
    w.checkpoints.select_row("last.pt")
    assert w.checkpoints.export_format.currentData() == "hf"
    qtbot.mouseClick(w.checkpoints.export_btn, Qt.LeftButton)
    qtbot.waitUntil(lambda: "Exported a Hugging Face model folder" in w.controls.status.text(), timeout=120_000)
    _assert_transformers_matches(w.run_path + "/checkpoints/last.pt", out, "To be, or not to be")
    assert w.wait_for_threads(120)


def test_weights_that_disagree_with_config_json_are_refused(tmp_path, tiny_gpt2, capsys):
    import shutil

    folder = tmp_path / "mismatched"
    shutil.copytree(tiny_gpt2, folder)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "n_embd": 32}))
    code = cli.main(["train", "--set", f"model.init='{folder}'", *[a for s in IMPORT for a in ("--set", s)]])
    err = capsys.readouterr().err
    assert code == 1 and "model.init: the weights do not match config.json: wte.weight is" in err, err


def test_bad_pretrained_inputs_are_marked_at_their_field_in_the_window(qtbot, tiny_gpt2, tmp_path, monkeypatch,
                                                                       make_window):
    import shutil

    from PySide6.QtCore import Qt

    def folder(name, change):
        out = tmp_path / name
        shutil.copytree(tiny_gpt2, out)
        change(out)
        return out

    def as_bert(out):
        (out / "config.json").write_text(json.dumps({**json.loads((out / "config.json").read_text()),
                                                     "model_type": "bert"}))

    def as_narrower(out):
        (out / "config.json").write_text(json.dumps({**json.loads((out / "config.json").read_text()), "n_embd": 32}))

    ran = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {ran}",))

    def as_hostile(out):
        (out / "model.safetensors").unlink()
        torch.save({"transformer.wte.weight": Evil()}, out / "pytorch_model.bin")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "empty").mkdir()
    w = make_window(["data.source='shakespeare'", "train.max_steps=20", "optim.warmup_steps=2", "train.device='cpu'",
                     "train.precision='fp32'", "model.block_size=32"])
    panel = w.config_panel
    line, error = panel.editors["model.init"].line, panel.errors["model.init"]

    def choose(value: str) -> None:
        line.setText(value)
        panel._edited("model.init")  # what editingFinished does when the user leaves the field

    # found as soon as the folder is chosen: Start says why it cannot start
    for value, message in ((tmp_path / "empty", "has no config.json"),
                           (folder("bert", as_bert), "is a 'bert' model; only gpt2, llama, mistral, qwen2 and qwen3"),
                           (tmp_path / "nowhere", "does not exist")):
        choose(str(value))
        assert error.isVisible() and message in error.text(), error.text()
        assert not w.controls.start.isEnabled() and "Traceback" not in error.text()
    choose(str(tiny_gpt2))
    assert not error.isVisible() and w.controls.start.isEnabled(), w.controls.why.text()
    panel.editors["model.block_size"].setValue(256)
    assert "longer than the 128 positions" in panel.errors["model.block_size"].text()
    assert not w.controls.start.isEnabled()
    panel.editors["model.block_size"].setValue(32)

    # found when the weights load: the run does not start, and the message is at the field
    for value, message in ((folder("hostile", as_hostile), "was refused: it asks to run"),
                           (folder("narrower", as_narrower), "the weights do not match config.json"),
                           ("gpt2", "could not fetch 'gpt2' from the Hugging Face hub")):
        choose(str(value))
        assert w.controls.start.isEnabled(), (value, w.controls.why.text())
        qtbot.mouseClick(w.controls.start, Qt.LeftButton)
        qtbot.waitUntil(lambda: w.worker is None, timeout=120_000)
        assert error.isVisible() and message in error.text(), (value, error.text())
        assert w.error_banner.isVisible() and "Traceback" not in w.error_banner.label.text()
    assert not ran.exists()  # the hostile file's code never ran
