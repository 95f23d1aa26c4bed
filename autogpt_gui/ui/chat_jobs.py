"""Background jobs (Task functions, run in worker threads) for a chat source and the playground's chat.

They import the engine inside the job, so the window's modules load no torch; each hands the GUI plain data.
"""
from __future__ import annotations

import threading
from pathlib import Path

from autogpt_gui.ui.worker import Task

PREVIEWED = 200  # conversations the mask preview can step through
PREVIEW_TOKENS = 4000  # tokens of one conversation shown at most
_models: dict[str, tuple] = {}  # path -> (mtime, model, tokenizer, template): a chat reloads nothing between turns
_models_lock = threading.Lock()


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _readable(conv, limit: int) -> str:
    lines = [f"{t.role}: {t.content}" for t in conv.turns]
    return "\n".join(lines)[:limit]


def chat_preview_job(cfg):
    """A Task function: read every conversation of cfg's chat source (a line-numbered DataError if one is bad)."""

    def job(task: Task) -> dict:
        from autogpt_gui.engine.data.chat import read_conversations

        convs = read_conversations(cfg.data.path)
        path = Path(cfg.data.path).expanduser()
        text, budget = [], 3000
        for conv in convs:
            if budget <= 0:
                break
            text.append(_readable(conv, budget))
            budget -= len(text[-1]) + 2
        return {"label": path.name, "size": _size(path), "preview": "\n\n".join(text), "conversations": len(convs),
                "turns": sum(len(c.turns) for c in convs)}

    return job


def _chat_data(cfg, task: Task):
    """cfg's chat source as a run would train it: read, templated, tokenized and packed (with a pretrained
    model's tokenizer and template where cfg starts from one)."""
    from autogpt_gui.engine.session import prepare_chat_data

    tokenizer = None
    if cfg.model.init:
        from autogpt_gui.engine.model.hf import load_pretrained

        tokenizer = load_pretrained(cfg.model.init, weights=False).tokenizer
    return prepare_chat_data(cfg, task.progress, task.cancelled, tokenizer)


def chat_masks_job(cfg):
    """A Task function: prepare a chat source as training would; its counts and the first conversations' tokens,
    each marked trained or masked, for the mask preview."""

    def job(task: Task) -> dict:
        from dataclasses import asdict

        from autogpt_gui.engine.data.chat import read_conversations

        data = _chat_data(cfg, task)
        examples = []
        for conv in read_conversations(cfg.data.path)[:PREVIEWED]:
            ids, mask = data.template.encode(conv, cfg.data.train_on)
            strings = data.tokenizer.token_strings(ids[:PREVIEW_TOKENS])
            examples.append({"where": conv.where, "tokens": [[s, int(m)] for s, m in zip(strings, mask)]})
        masks = {**asdict(data.counts), "held_out": asdict(data.val_counts), "examples": examples,
                 "train_on": cfg.data.train_on, "template": cfg.data.chat_template,
                 "end_of_turn": data.template.end_of_turn}
        return {"train_tokens": int(data.train.size), "val_tokens": int(data.val.size),
                "vocab_size": data.tokenizer.vocab_size, "from_cache": data.from_cache, "tokenized": [],
                "label": data.source_label, "masks": masks}

    return job


def _stamp(path: Path) -> tuple[int, ...]:
    """When the files a load reads last changed: a run folder's best and last checkpoints, or the path itself."""
    from autogpt_gui.engine.run.layout import RunLayout

    files = [RunLayout(path).best, RunLayout(path).last] if path.is_dir() else [path]
    return tuple(f.stat().st_mtime_ns if f.exists() else 0 for f in files)


def _load_chat(path: str):
    """(model, tokenizer, template) of a run folder, checkpoint or model folder, kept while its file is unchanged."""
    from autogpt_gui.engine.load import load_chat

    stamp = _stamp(Path(path).expanduser())
    with _models_lock:
        held = _models.get(path)
        if held is not None and held[0] == stamp:
            return held[1:]
    loaded = load_chat(path)
    with _models_lock:
        if len(_models) >= 2:  # the model and its base: a third replaces them
            _models.clear()
        _models[path] = (stamp, *loaded)
    return loaded


def live_reply(model, tokenizer, cfg, turns: list[dict], max_new_tokens: int, temperature: float, seed: int) -> str:
    """The reply of a model being trained (called between two steps, in the training thread) through the template
    it trains with; the model is put back in training mode."""
    from autogpt_gui.engine.data.chat import Turn
    from autogpt_gui.engine.model.chat import chat_reply, run_template

    template = run_template(tokenizer, cfg.model)
    was_training = model.training
    try:
        model.eval()
        return chat_reply(model, tokenizer, template, [Turn(t["role"], t["content"]) for t in turns],
                          max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    finally:
        model.train(was_training)


def chat_job(path: str, turns: list[dict], max_new_tokens: int, temperature: float, seed: int):
    """A Task function: the reply of the model in `path` to the conversation `turns`, through its template,
    streamed through task.text."""

    def job(task: Task) -> str:
        from autogpt_gui.engine.data.chat import Turn
        from autogpt_gui.engine.model.chat import chat_reply

        model, tokenizer, template = _load_chat(path)
        return chat_reply(model, tokenizer, template, [Turn(t["role"], t["content"]) for t in turns],
                          max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, on_text=task.text.emit)

    return job
