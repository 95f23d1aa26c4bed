"""Built-in synthetic tasks whose answers can be checked: n-digit addition and reversal."""
from __future__ import annotations

import random
import string
from dataclasses import dataclass

import torch

TASKS = ("addition", "reversal")


@dataclass
class TaskExamples:
    """Train and held-out examples as (prompt, answer) pairs; a line is prompt + answer + newline."""

    name: str
    train: list[tuple[str, str]]
    val: list[tuple[str, str]]

    @staticmethod
    def text(pairs: list[tuple[str, str]]) -> str:
        return "".join(f"{p}{a}\n" for p, a in pairs)


def make_task(name: str, digits: int = 2, seed: int = 0, val_fraction: float = 0.1) -> TaskExamples:
    """Examples of task `name`, split into train and held-out ones that never overlap."""
    rng = random.Random(seed)
    if name == "addition":
        pairs = _addition(digits, rng)
    elif name == "reversal":
        pairs = _reversal(digits, rng)
    else:
        raise ValueError(f"unknown task '{name}'; choose one of {', '.join(TASKS)}")
    n_val = max(1, int(len(pairs) * val_fraction))
    return TaskExamples(name, pairs[n_val:], pairs[:n_val])


def _addition(digits: int, rng: random.Random) -> list[tuple[str, str]]:
    # Fixed-width operands and answer: each digit keeps its position, which is what makes the
    # task learnable by a small model in a minute.
    hi = 10**digits
    if hi * hi <= 200_000:
        ab = [(a, b) for a in range(hi) for b in range(hi)]
    else:
        seen: set[tuple[int, int]] = set()
        while len(seen) < 200_000:
            seen.add((rng.randrange(hi), rng.randrange(hi)))
        ab = sorted(seen)
    rng.shuffle(ab)
    return [(f"{a:0{digits}d}+{b:0{digits}d}=", f"{a + b:0{digits + 1}d}") for a, b in ab]


def _reversal(digits: int, rng: random.Random) -> list[tuple[str, str]]:
    length = max(3, 2 * digits)
    words: set[str] = set()
    target = min(50_000, 26**length // 2)
    while len(words) < target:
        words.add("".join(rng.choice(string.ascii_lowercase) for _ in range(length)))
    ordered = sorted(words)
    rng.shuffle(ordered)
    return [(f"{w}=", w[::-1]) for w in ordered]


def held_out(data_cfg, limit: int = 1000) -> list[tuple[str, str]]:
    """The held-out examples of a task source (`task:NAME`), the same ones its validation split holds."""
    task = make_task(data_cfg.source.removeprefix("task:"), data_cfg.task_digits, seed=0,
                     val_fraction=data_cfg.val_fraction)
    return task.val[:limit]


@torch.no_grad()
def answers(model, tokenizer, pairs: list[tuple[str, str]], device=None, batch: int = 256) -> list[str]:
    """The model's greedy answer to each prompt."""
    device = device or next(model.parameters()).device
    out_text: list[str] = []
    for start in range(0, len(pairs), batch):
        chunk = pairs[start : start + batch]
        # all prompts of a task have one length, so they batch without padding
        prompts = torch.tensor([tokenizer.encode("\n" + p) for p, _ in chunk], device=device)
        n_new = len(tokenizer.encode(chunk[0][1]))
        out = model.generate(prompts, n_new, temperature=0.0)[:, prompts.shape[1] :]
        out_text += [tokenizer.decode(row) for row in out.tolist()]
    return out_text


def task_accuracy(model, tokenizer, pairs: list[tuple[str, str]], device=None, batch: int = 256) -> float:
    """Fraction of held-out prompts whose greedy continuation is exactly the answer."""
    got = answers(model, tokenizer, pairs, device, batch)
    return sum(g == a for g, (_, a) in zip(got, pairs)) / max(1, len(pairs))


def worked_examples(model, tokenizer, pairs: list[tuple[str, str]]) -> str:
    """A few held-out examples with the model's answer and the right one, one per line."""
    got = answers(model, tokenizer, pairs)
    return "\n".join(f"{p}{g}   {'right' if g == a else 'wrong, the answer is ' + a}"
                     for g, (p, a) in zip(got, pairs))
