"""The names of a run folder's files: the one place that spells them.

```
RUN/config.toml  tokenizer.json  metrics.jsonl  samples.jsonl  status.json  lock  control.jsonl
    branch.json  checkpoints/step-00001000.pt, best.pt, last.pt, index.json
```
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CONFIG = "config.toml"
TOKENIZER = "tokenizer.json"
METRICS = "metrics.jsonl"
SAMPLES = "samples.jsonl"
STATUS = "status.json"
LOCK = "lock"
CONTROL = "control.jsonl"
BRANCH = "branch.json"
CHECKPOINTS = "checkpoints"
LAST = "last.pt"
BEST = "best.pt"


@dataclass(frozen=True)
class RunLayout:
    """Where each file of the run folder at `root` lives."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG

    @property
    def tokenizer(self) -> Path:
        return self.root / TOKENIZER

    @property
    def metrics(self) -> Path:
        return self.root / METRICS

    @property
    def samples(self) -> Path:
        return self.root / SAMPLES

    @property
    def status(self) -> Path:
        return self.root / STATUS

    @property
    def lock(self) -> Path:
        return self.root / LOCK

    @property
    def control(self) -> Path:
        return self.root / CONTROL

    @property
    def branch(self) -> Path:
        return self.root / BRANCH

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINTS

    @property
    def last(self) -> Path:
        return self.checkpoints / LAST

    @property
    def best(self) -> Path:
        return self.checkpoints / BEST


def is_run_folder(path: str | Path) -> bool:
    """Whether path is a run folder (it has a configuration)."""
    return RunLayout(Path(path)).config.is_file()
