"""`autogpt-gui --selftest`: prove the install (or the frozen bundle) works, headless, in seconds."""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path


def run_selftest() -> int:
    """Train a few dozen steps on the built-in corpus, save, reload, sample, open the window offscreen."""
    from autogpt_gui import __version__, paths
    from autogpt_gui.config import RunConfig
    from autogpt_gui.engine.load import load_model
    from autogpt_gui.engine.model.generate import generate_text
    from autogpt_gui.engine.run.runs import Run
    from autogpt_gui.engine.session import build_session

    t0 = time.perf_counter()
    print(f"autogpt-gui {__version__} self test")
    print(f"  user data: {paths.runs_dir()}")
    cfg = RunConfig(name="selftest").with_overrides([
        "model.preset='nano'", "train.max_steps=40", "train.eval_interval=20", "train.eval_batches=4",
        "train.checkpoint_interval=20", "optim.warmup_steps=5", "train.sample_tokens=0", "train.device='cpu'"])
    with tempfile.TemporaryDirectory(prefix="autogpt-selftest-") as tmp:
        run = Run.create(cfg, Path(tmp))
        session = build_session(cfg, run)
        losses = []
        session.trainer.on("step", lambda m: losses.append(m.loss))
        result = session.trainer.train()
        print(f"  trained {result.step} steps on {session.data.source_label}: loss {losses[0]:.3f} -> "
              f"{losses[-1]:.3f}, validation {result.best_val_loss:.3f} ({session.trainer.precision})")
        if not losses[-1] < losses[0]:
            print("FAILED: the loss did not fall")
            return 1
        ckpts = sorted(p.name for p in run.checkpoints_dir.glob("*.pt"))
        model, tokenizer, _ = load_model(run.path)
        print(f"  saved and reloaded checkpoints: {', '.join(ckpts)}")
        text = generate_text(model, tokenizer, "The ", 60, temperature=0.8, top_k=40, seed=0)
        print(f"  sample: {('The ' + text)!r}")
        if len(text) == 0:
            print("FAILED: no text was generated")
            return 1
    from autogpt_gui.engine.data.chat import Turn
    from autogpt_gui.engine.data.chat_template import CHATML, ChatTemplate

    chat = ChatTemplate(CHATML, None).render([Turn("user", "hi")], add_generation_prompt=True)
    print(f"  chat template (jinja2 sandbox): {chat!r}")
    import gguf

    print(f"  GGUF writer: gguf {gguf.__name__} with {len(gguf.MODEL_ARCH)} architectures")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from autogpt_gui.ui.app import smoke_window

    print(f"  window: {smoke_window()}")
    print(f"self test passed in {time.perf_counter() - t0:.1f}s")
    return 0
