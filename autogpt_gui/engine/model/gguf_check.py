"""A written GGUF file checked twice: read back with gguf's reader against what was meant to be written, and
(`--verify`) run by llama.cpp itself through llama-cpp-python, its greedy tokens compared with ours."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from autogpt_gui.engine.model.gguf import GGUFPlan
from autogpt_gui.errors import CheckpointError


def check_gguf(path: str | Path, plan: GGUFPlan, model) -> None:
    """Read the file back: its architecture, context, vocabulary, tensor names and shapes must be the plan's."""
    import gguf

    cfg = model.config
    try:
        reader = gguf.GGUFReader(str(path))
    except (OSError, ValueError) as err:
        raise CheckpointError(f"the GGUF file {path} does not read back: {err}", "export") from None
    fields = reader.fields

    def value(key: str):
        f = fields.get(key)
        return None if f is None else f.contents()

    problems = []
    if value("general.architecture") != plan.arch:
        problems.append(f"architecture {value('general.architecture')!r} where {plan.arch!r} was written")
    if value(f"{plan.arch}.context_length") != (cfg.n_positions or cfg.block_size):
        problems.append(f"context length {value(f'{plan.arch}.context_length')}")
    if len(value("tokenizer.ggml.tokens") or []) != cfg.vocab_size:
        problems.append("a vocabulary of another size")
    got = {t.name: tuple(int(d) for d in reversed(t.shape.tolist())) for t in reader.tensors}
    want = {t.name: tuple(t.data.shape) for t in plan.tensors}
    if got != want:
        wrong = sorted(set(got.items()) ^ set(want.items()))[:3]
        problems.append(f"tensors {len(got)} where {len(want)} were written; first differences {wrong}")
    if problems:
        raise CheckpointError(f"the GGUF file {path} does not hold what was written: " + "; ".join(problems), "export")


@dataclass
class Verification:
    """How llama.cpp's run of the file compares with ours: greedy tokens equal, teacher-forced top-1, logits."""

    greedy_equal: int
    greedy_total: int
    top1: float
    max_logit_diff: float

    def describe(self) -> str:
        """One line for people: the greedy tokens equal, the top-1 agreement, the largest logit difference."""
        return (f"llama.cpp check: {self.greedy_equal}/{self.greedy_total} greedy tokens equal to ours; top-1 "
                f"agreement {self.top1:.1%} over the prompt's positions; max logit difference "
                f"{self.max_logit_diff:.4f}")


def llama_cpp_available() -> bool:
    """Whether llama-cpp-python is installed (the dev extra installs it)."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


def open_llama(path: str | Path, n_ctx: int):
    """llama.cpp on the file, every position's logits kept, float32 key/value cache (the file is under test)."""
    import llama_cpp

    return llama_cpp.Llama(model_path=str(path), logits_all=True, n_ctx=n_ctx, verbose=False, n_threads=2,
                           type_k=0, type_v=0)


def llama_logits(llm, ids: list[int]) -> np.ndarray:
    """llama.cpp's teacher-forced logits (len(ids), vocab) for ids, from an empty context."""
    llm.reset()
    llm.eval(ids)
    return np.array(llm.scores[: len(ids)], dtype=np.float32)


def llama_greedy(llm, prompt: list[int], n: int) -> list[int]:
    """n tokens llama.cpp picks greedily after prompt."""
    llm.reset()
    llm.eval(prompt)
    out: list[int] = []
    for _ in range(n):
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        out.append(token)
        llm.eval([token])
    return out


def verify_gguf(path: str | Path, model, tokenizer, prompt: str = "ROMEO:\nBut soft, what light", n: int = 32
                ) -> Verification:
    """Run the file in llama.cpp: its greedy continuation of prompt and its logits on it, against ours."""
    if not llama_cpp_available():
        raise CheckpointError("--verify runs llama.cpp through llama-cpp-python, which is not installed: "
                              "pip install llama-cpp-python", "--verify")
    block = model.config.block_size  # llama.cpp stops the process past the positions a gpt2 model has
    ids = tokenizer.encode(prompt)[: max(1, block // 2)]
    n = min(n, block - len(ids))
    llm = open_llama(path, min(block, len(ids) + n + 1))
    theirs = llama_logits(llm, ids)
    with torch.no_grad():
        ours = model(torch.tensor([ids]))[0][0].float().numpy()
        mine = model.generate(torch.tensor([ids]), n, temperature=0.0)[0, len(ids):].tolist()
    greedy = llama_greedy(llm, ids, n)
    equal = next((i for i, (a, b) in enumerate(zip(mine, greedy)) if a != b), len(mine))
    return Verification(equal, n, float((theirs.argmax(-1) == ours.argmax(-1)).mean()),
                        float(np.abs(theirs - ours).max()))
