"""Fine-tuning an imported GPT-2, fully or with LoRA: peft is the oracle for our adapters, resume is exact."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from autogpt_gui import cli, paths  # noqa: E402
from autogpt_gui.engine.load import load_model, merge_adapters  # noqa: E402
from autogpt_gui.engine.model.lora import merged_state  # noqa: E402
from autogpt_gui.engine.run.runs import Run  # noqa: E402
from autogpt_gui.engine.session import build_session  # noqa: E402
from autogpt_gui.estimates import estimate  # noqa: E402

# peft 0.21 calls a transformers 5 property that warns of its own deprecation: theirs, not ours
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")

BASE = ["data.source='shakespeare'", "data.tokenizer='model'", "model.block_size=64", "train.batch_size=8",
        "train.eval_batches=8", "optim.warmup_steps=10", "train.precision='fp32'", "train.sample_tokens=0",
        "train.device='cpu'", "train.checkpoint_interval=0"]
LORA = ["model.finetune='lora'", "model.lora_rank=4", "model.lora_alpha=8"]


def _config(folder, *extra):
    return cli.load_config(None, [f"model.init='{folder}'", *BASE, *extra])


def _peft_name(name: str) -> str:
    """peft's adapter parameter name -> ours: transformer.h.0.attn.c_attn.lora_A.default.weight -> blocks.0...."""
    return name.removeprefix("base_model.model.transformer.").replace("h.", "blocks.", 1).removesuffix(".default.weight")


def test_our_lora_equals_peft_forward_gradients_and_merge(tiny_gpt2):
    ours = build_session(_config(tiny_gpt2, *LORA)).model.eval()
    theirs = peft.get_peft_model(
        transformers.AutoModelForCausalLM.from_pretrained(tiny_gpt2),
        peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["c_attn", "c_proj", "c_fc"],
                        fan_in_fan_out=True)).eval()
    trainable, total = theirs.get_nb_trainable_parameters()
    assert sum(p.numel() for p in ours.parameters() if p.requires_grad) == trainable == \
        estimate(replace(_config(tiny_gpt2, *LORA), model=ours.config)).trainable
    # the same adapter initialisation in both: peft's A, and a random B (zero B would hide A's gradient)
    gen = torch.Generator().manual_seed(3)
    own = dict(ours.named_parameters())
    adapters = [(n, p) for n, p in theirs.named_parameters() if "lora_" in n]
    assert len(adapters) == 16 and all(own[_peft_name(n)].requires_grad for n, _ in adapters)
    with torch.no_grad():
        for name, p in adapters:
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
            own[_peft_name(name)].copy_(p)
    ids = torch.randint(0, ours.config.vocab_size, (2, 64), generator=gen)

    def loss(logits):
        return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1))

    a, b = ours(ids)[0], theirs(input_ids=ids).logits
    assert (a - b).abs().max().item() < 1e-5
    loss(a).backward()
    loss(b).backward()
    for name, p in adapters:
        assert p.grad.abs().max() > 1e-4, name  # a gradient worth comparing
        assert (own[_peft_name(name)].grad - p.grad).abs().max().item() < 1e-5, name
    assert all(p.grad is None for n, p in ours.named_parameters() if ".lora_" not in n)  # the base stays frozen
    with torch.no_grad():
        assert (merge_adapters(ours).eval()(ids)[0] - a).abs().max().item() < 1e-5


def _train(cfg, run=None, resume=None, stop_at=None):
    session = build_session(cfg, run, resume)
    if stop_at:
        session.trainer.on("step", lambda m: m.step == stop_at and session.trainer.stop())
    session.trainer.train()
    return session


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["full", "lora"])
def test_imported_model_resumes_exactly(mode, tiny_gpt2):
    cfg = _config(tiny_gpt2, f"model.finetune='{mode}'", "model.lora_rank=4", "model.dropout=0.1",
                  "model.lora_dropout=0.1", "train.max_steps=30", "train.eval_interval=10", "train.grad_accum=2")
    straight = _train(cfg)
    run = Run.create(cfg, paths.runs_dir())
    _train(cfg, run, stop_at=15)
    resumed = _train(run.config(), run, resume=run.checkpoints_dir / "last.pt")
    assert resumed.trainer.step == 30
    want, got = merged_state(straight.model), merged_state(resumed.model)
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)


def test_lora_lowers_validation_loss_with_checkpoints_a_tenth_of_full_ones(tiny_gpt2, tmp_path):
    steps = ["train.max_steps=100", "train.eval_interval=50", "train.checkpoint_interval=50"]
    before = build_session(_config(tiny_gpt2)).trainer.evaluate()
    sizes = {}
    for mode, lr in (("full", "3e-3"), ("lora", "1e-2")):
        run_dir = tmp_path / mode
        args = [f"model.init='{tiny_gpt2}'", *BASE, *steps, f"model.finetune='{mode}'", f"optim.lr={lr}", *LORA[1:]]
        assert cli.main(["train", "--out", str(run_dir), "--quiet", *[a for s in args for a in ("--set", s)]]) == 0
        evals = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines() if '"eval"' in ln]
        assert evals[-1]["step"] == 100 and evals[-1]["val_loss"] < before - 0.05, (mode, before, evals)
        sizes[mode] = (run_dir / "checkpoints" / "step-00000050.pt").stat().st_size
    assert sizes["lora"] < 0.1 * sizes["full"], sizes
    # the adapters name their base by path and content; sampling and export fold them in
    state = torch.load(tmp_path / "lora" / "checkpoints" / "last.pt", weights_only=False)
    assert state["base"]["init"] == str(tiny_gpt2) and len(state["base"]["sha256"]) == 64
    assert all(".lora_" in k for k in state["model"])
    model, _, _ = load_model(tmp_path / "lora")
    assert model.config.finetune == "full" and not any(".lora_" in k for k in model.state_dict())
    out = tmp_path / "export"
    assert cli.main(["export", str(tmp_path / "lora"), str(out)]) == 0
    adapted = build_session(_config(tiny_gpt2, *LORA), resume_from=tmp_path / "lora" / "checkpoints" / "best.pt")
    ids = torch.randint(0, 400, (1, 40), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        exported = transformers.AutoModelForCausalLM.from_pretrained(out).eval()(ids).logits
        assert (adapted.model.eval()(ids)[0] - exported).abs().max().item() < 1e-4


def test_a_changed_base_is_refused_by_resume_sample_and_export(tiny_gpt2, tmp_path, capsys):
    base = tmp_path / "base"
    base.mkdir()
    for f in tiny_gpt2.iterdir():
        (base / f.name).write_bytes(f.read_bytes())
    run_dir = tmp_path / "run"
    args = [f"model.init='{base}'", *BASE, *LORA, "train.max_steps=5", "train.eval_interval=5", "optim.warmup_steps=1"]
    assert cli.main(["train", "--out", str(run_dir), "--quiet", *[a for s in args for a in ("--set", s)]]) == 0
    hf = transformers.AutoModelForCausalLM.from_pretrained(base)
    with torch.no_grad():
        hf.transformer.h[0].mlp.c_fc.weight.mul_(1.01)
    hf.save_pretrained(base)
    capsys.readouterr()
    for command in (["resume", str(run_dir)], ["sample", str(run_dir), "--max-new-tokens", "5"],
                    ["export", str(run_dir), str(tmp_path / "out")]):
        assert cli.main(command) == 1, command
        err = capsys.readouterr().err
        assert "changed since these adapters were trained" in err and "Traceback" not in err, (command, err)
    assert not (tmp_path / "out").exists()


def test_lora_settings_are_checked_at_their_fields(tiny_gpt2, capsys):
    cases = {
        "model.finetune": ["model.finetune='lora'", "model.init=''", "data.tokenizer='char'"],
        "model.lora_rank": [f"model.init='{tiny_gpt2}'", "model.finetune='lora'", "model.lora_rank=0"],
        "model.lora_targets": [f"model.init='{tiny_gpt2}'", "model.finetune='lora'", "model.lora_targets='q_proj'"],
        "model.lora_alpha": [f"model.init='{tiny_gpt2}'", "model.finetune='lora'", "model.lora_alpha=nan"],
    }
    for field, settings in cases.items():
        data = ["data.source='shakespeare'", *(["data.tokenizer='model'"] if "init=''" not in settings[1] else [])]
        argv = ["train", "--quiet", *[a for s in [*data, *settings] for a in ("--set", s)]]
        assert cli.main(argv) == 2, field
        err = capsys.readouterr().err
        assert field in err and "Traceback" not in err, (field, err)


def test_the_window_fine_tunes_with_lora_and_compares_base_and_result_side_by_side(qtbot, tiny_gpt2, monkeypatch):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QFileDialog

    from autogpt_gui.config import RunConfig
    from autogpt_gui.engine.model.generate import generate_text
    from autogpt_gui.ui.app import make_app
    from autogpt_gui.ui.main_window import MainWindow

    make_app()
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    w.set_config(RunConfig().with_overrides(["data.source='shakespeare'", "train.max_steps=30", "optim.warmup_steps=2",
                                             "train.eval_interval=10", "train.checkpoint_interval=10", "optim.lr=1e-2",
                                             "train.precision='fp32'", "train.sample_tokens=0",
                                             "train.device='cpu'", "model.block_size=32"]))
    panel, s = w.config_panel, w.samples
    assert not panel.editors["model.finetune"].isEnabled() and not s.compare.isEnabled()  # nothing to adapt yet
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(tiny_gpt2))
    qtbot.mouseClick(panel.editors["model.init"].findChild(type(w.controls.start), "browse"), Qt.LeftButton)
    mode = panel.editors["model.finetune"]
    assert mode.isEnabled() and not panel.editors["model.lora_rank"].isEnabled()
    mode.setCurrentIndex(mode.findData("lora"))
    panel.editors["model.lora_rank"].setValue(4)
    assert panel.editors["model.lora_rank"].isEnabled() and panel.config().model.finetune == "lora"
    summary = panel.summary.text()
    assert "Full: 1" in summary and "<b>LoRA: 8.19k trainable" in summary, summary  # 142k vs 8,192 trainable
    assert w.controls.start.isEnabled(), w.controls.why.text()

    qtbot.mouseClick(w.controls.start, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.worker is None and "Finished at step 30" in w.controls.status.text(), timeout=120_000)
    state = torch.load(f"{w.run_path}/checkpoints/last.pt", weights_only=False)
    assert state["model"] and all(".lora_" in k for k in state["model"])

    s.source.setCurrentIndex(s.source.findData("file"))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (f"{w.run_path}/checkpoints/last.pt", ""))
    s.compare.setChecked(True)
    assert s.base_pane.isVisible()
    s.prompt.setPlainText("To be")
    s.temperature.setValue(0.0)
    s.max_tokens.setValue(15)
    qtbot.mouseClick(s.generate, Qt.LeftButton)
    base_model, tokenizer, _ = load_model(tiny_gpt2)
    tuned, _, _ = load_model(f"{w.run_path}/checkpoints/last.pt")
    want_base = "To be" + generate_text(base_model, tokenizer, "To be", 15, temperature=0.0)
    want_tuned = "To be" + generate_text(tuned, tokenizer, "To be", 15, temperature=0.0)
    qtbot.waitUntil(lambda: s.output.toPlainText() == want_tuned and s.base_output.toPlainText() == want_base,
                    timeout=120_000)
    assert want_base != want_tuned  # thirty steps of adapters changed what the model says
    assert w.wait_for_threads(120)
