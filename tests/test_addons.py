"""The Trainer's add-on interface: learning rates per group, what counts as out of memory, and who may ask what."""
from __future__ import annotations

import json
import threading

import pytest
import torch

from autogpt_gui.cli import build_parser
from autogpt_gui.engine.run import control
from autogpt_gui.engine.session import build_session
from autogpt_gui.engine.train.edits import EDITABLE, LIVE
from autogpt_gui.engine.train.events import RunState
from autogpt_gui.engine.train.precision import is_out_of_memory
from autogpt_gui.engine.train.requests import FROM_OUTSIDE, KINDS
from autogpt_gui.engine.train.trainer import Trainer
from autogpt_gui.errors import AutoGPTError, TrainingError


def _two_rate_session(tiny_config, *overrides: str):
    """A run whose second parameter group trains at ten times the first's rate (as Muon's will)."""
    session = build_session(tiny_config("train.max_steps=12", "train.eval_interval=1000", "train.sample_tokens=0",
                                        "train.checkpoint_interval=0", "optim.schedule='cosine'", *overrides))
    session.optimizer.param_groups[1]["base_lr"] *= 10
    return session


def test_parameter_groups_keep_their_ratio_through_schedule_live_edit_and_rollback(tiny_config):
    session = _two_rate_session(tiny_config)
    tr = session.trainer
    seen: dict[int, tuple[float, float, float]] = {}

    def on_step(m) -> None:
        first, second = (g["lr"] for g in tr.optimizer.param_groups)
        seen[m.step] = (first, second, tr.schedule(m.step - 1) * tr.lr_scale)
        if m.step == 4:
            tr.request("edit", {"optim.lr": 5e-4})
        if m.step == 8:
            tr.lr_scale = 0.5  # what a rollback does

    tr.on("step", on_step)
    tr.train()
    assert sorted(seen) == list(range(1, 13))
    for step, (first, second, scheduled) in seen.items():
        assert first == pytest.approx(scheduled, rel=1e-12), step
        assert second == pytest.approx(10 * first, rel=1e-12), step
    assert tr.schedule.lr == 5e-4 and seen[5][0] == pytest.approx(5e-4) and seen[9][0] < seen[8][0] * 0.55
    bases = [g["base_lr"] for g in tr.optimizer.param_groups]
    assert bases == pytest.approx([5e-4, 5e-3], rel=1e-12)

    resumed = _two_rate_session(tiny_config)  # the edit rides in the checkpoint and is applied once, not twice
    resumed.trainer.load_state_dict(tr.state_dict())
    assert [g["base_lr"] for g in resumed.trainer.optimizer.param_groups] == bases
    assert resumed.trainer.lr_factor() == tr.lr_factor()


def test_out_of_memory_is_recognised_on_cuda_mps_and_cpu():
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 8.00 GB)"))
    assert is_out_of_memory(RuntimeError("[enforce fail at alloc_cpu.cpp:114] DefaultCPUAllocator: can't allocate "
                                         "memory: you tried to allocate 68719476736 bytes"))
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_a_cpu_allocation_failure_ends_the_run_with_the_out_of_memory_message(tiny_config, monkeypatch):
    session = build_session(tiny_config("train.on_oom='stop'", "train.sample_tokens=0"))
    real_loss = Trainer._loss

    def allocator(model, x, y):
        if session.trainer.step == 3:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1099511627776 bytes")
        return real_loss(model, x, y)

    monkeypatch.setattr(Trainer, "_loss", staticmethod(allocator))
    with pytest.raises(TrainingError, match="ran out of memory") as err:
        session.trainer.train()
    assert err.value.field == "train.batch_size" and session.trainer.state == "failed"


def test_every_live_setting_has_one_way_to_read_and_apply_it():
    assert tuple(LIVE) == EDITABLE


def test_code_carrying_requests_come_only_from_inside_the_process(tmp_path):
    assert "call" in KINDS and "call" not in FROM_OUTSIDE and "finish" not in FROM_OUTSIDE
    assert control.KINDS == FROM_OUTSIDE
    for kind in ("call", "finish"):
        with pytest.raises(AutoGPTError, match="unknown request"):
            control.send(tmp_path, kind, "print('hello')")
        with pytest.raises(SystemExit):
            build_parser().parse_args(["control", str(tmp_path), kind])
    with pytest.raises(ValueError, match="unknown request 'bogus'"):
        Trainer(model := torch.nn.Linear(2, 2), torch.optim.SGD(model.parameters(), lr=0.1), [], [],
                device="cpu").request("bogus")


class _Listener:
    """Stands in for a Trainer: records the requests the control file hands it."""

    def __init__(self):
        self.asked: list[tuple[str, object]] = []
        self.paused = threading.Event()
        self.on_state = None

    def on(self, event: str, fn) -> None:
        self.on_state = fn

    def request(self, kind: str, payload=None) -> None:
        self.asked.append((kind, payload))
        if kind == "pause":
            self.paused.set()


def test_the_control_file_refuses_a_call_written_into_it(tmp_path):
    listener = _Listener()
    follower = control.ControlFile(tmp_path)
    follower.attach(listener)
    listener.on_state(RunState("running", 0))
    try:
        with open(tmp_path / control.CONTROL_FILE, "a", encoding="utf-8") as fh:
            for kind, payload in (("call", "__import__('os').system('echo owned')"), ("finish", "x"), ("pause", None)):
                fh.write(json.dumps({"kind": kind, "payload": payload}) + "\n")
        assert listener.paused.wait(timeout=30), "the pause after the refused lines never arrived"
    finally:
        listener.on_state(RunState("stopped", 0))
    assert listener.asked == [("pause", None)]
