"""The checkpoints tab exports a GGUF file: format and weight type chosen there, written off the GUI thread,
read back with gguf's reader."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

gguf = pytest.importorskip("gguf")

from autogpt_gui import cli  # noqa: E402

RUN = ["model.preset='custom'", "model.n_layer=1", "model.n_head=2", "model.n_embd=64", "model.block_size=32",
       "train.batch_size=4", "train.max_steps=10", "train.eval_interval=10", "train.eval_batches=2",
       "train.checkpoint_interval=10", "train.sample_tokens=0", "train.precision='fp32'", "train.device='cpu'",
       "optim.warmup_steps=2", "data.tokenizer='byte'"]


def test_the_checkpoints_tab_exports_a_q8_0_gguf_with_its_modelfile(qtbot, make_window, tmp_path, monkeypatch):
    run = tmp_path / "run"
    assert cli.main(["train", "--out", str(run), "--quiet", *[a for s in RUN for a in ("--set", s)]]) == 0
    w = make_window(RUN)
    w.open_run(str(run))
    panel = w.checkpoints
    panel.select_row("last.pt")
    assert not panel.export_quant.isEnabled()  # a weight type means something for GGUF only
    panel.export_format.setCurrentIndex(panel.export_format.findData("gguf"))
    assert panel.export_quant.isEnabled()
    panel.export_quant.setCurrentIndex(panel.export_quant.findData("q8_0"))
    out = tmp_path / "export"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(out))
    qtbot.mouseClick(panel.export_btn, Qt.LeftButton)
    assert "export" in w.background.running  # off the GUI thread
    qtbot.waitUntil(lambda: "export" not in w.background.running, timeout=60_000)
    assert "Exported a q8_0 GGUF file" in w.controls.status.text()
    assert sorted(p.name for p in out.iterdir()) == ["Modelfile", "README.md", "run-q8_0.gguf"]
    reader = gguf.GGUFReader(str(out / "run-q8_0.gguf"))
    assert reader.fields["general.architecture"].contents() == "gpt2"
    assert "Q8_0" in {t.tensor_type.name for t in reader.tensors}
    assert w.wait_for_threads(30)
