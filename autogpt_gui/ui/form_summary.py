"""The estimates above the form: parameters, training memory, tokens per step, and the corpus."""
from __future__ import annotations

from dataclasses import replace

from autogpt_gui import length
from autogpt_gui.config import RunConfig
from autogpt_gui.errors import ConfigError
from autogpt_gui.estimates import estimate, human_bytes, human_count
from autogpt_gui.settings import setting


def summary_html(cfg: RunConfig, vocab: int | None, corpus_tokens: int | None) -> str:
    """What the configuration costs, as rich text: one line per fact."""
    est = estimate(cfg, vocab)
    lines = [f"<b>{human_count(est.params)}</b> parameters · about <b>{human_bytes(est.memory_bytes)}</b> "
             f"to train · <b>{est.tokens_per_step:,}</b> tokens per step"]
    if cfg.model.init:
        lines.append(_pretrained_line(cfg, est.params))
        lines.append("Fine-tuning: " + _finetune_costs(cfg, vocab))
    if corpus_tokens:
        lines.append(_corpus_line(cfg, vocab, corpus_tokens, est.tokens_per_step))
    else:
        lines.append("<i>Corpus size and epochs appear once the data is tokenized (Data tab).</i>")
    return "<br>".join(lines)


def _pretrained_line(cfg: RunConfig, params: int) -> str:
    """What the model it starts from is: its Hugging Face type, size, KV heads and context."""
    m = cfg.model
    kind = m.model_type or m.arch
    kv = m.n_kv_head or m.n_head
    context = m.n_positions or m.block_size
    return (f"Pretrained: <b>{kind}</b> · {human_count(params)} parameters · {m.n_layer} layers · "
            f"<b>{kv}</b> KV heads of {m.n_head} · context <b>{context:,}</b> (trains on {m.block_size:,})")


def _finetune_costs(cfg: RunConfig, vocab: int | None) -> str:
    """What each way of fine-tuning costs, the chosen one in bold."""
    modes = []
    for mode, text in setting("model.finetune").choices:
        e = estimate(replace(cfg, model=replace(cfg.model, finetune=mode)), vocab)
        name = text.split(":")[0]
        line = f"{name}: {human_count(e.trainable)} trainable, {human_bytes(e.memory_bytes)}"
        modes.append(f"<b>{line}</b>" if mode == cfg.model.finetune else line)
    return " · ".join(modes)


def _corpus_line(cfg: RunConfig, vocab: int | None, corpus_tokens: int, tokens_per_step: int) -> str:
    try:
        run_length = length.plan(cfg.train.max_steps, cfg.train.epochs)
    except ConfigError:  # marked at its field already
        run_length = None
    steps = run_length.max_steps if run_length else None  # an epoch-counted run says its epochs itself
    covered = ""
    if steps:
        epochs = length.epochs_covered(steps, tokens_per_step, corpus_tokens)
        covered = f" · the run covers <b>{epochs:.1f}</b> epochs"
    return f"Corpus: <b>{corpus_tokens:,}</b> training tokens, vocabulary {vocab}{covered}"
