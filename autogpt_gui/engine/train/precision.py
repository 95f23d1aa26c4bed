"""Device selection, the 'auto' precision choice (timed on the machine at hand), and what counts as out of memory."""
from __future__ import annotations

import copy
import statistics
import time
from contextlib import nullcontext
from functools import lru_cache

import torch

from autogpt_gui.errors import TrainingError
from autogpt_gui.settings import setting


def pick_device(name: str | None = "auto") -> torch.device:
    """CUDA, then MPS, then CPU for 'auto'; a named device must exist."""
    if name in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device("cuda" if name == "cuda:all" else name)  # all GPUs: each rank takes its own
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise TrainingError("no CUDA GPU is available on this computer; choose auto or cpu", "train.device")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise TrainingError(f"there is no {name}; this computer has {torch.cuda.device_count()} GPU(s)",
                                "train.device")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise TrainingError("MPS (Apple GPU) is not available here; choose auto or cpu", "train.device")
    return dev


def is_out_of_memory(err: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or the CPU's and MPS's allocation failures (RuntimeErrors that say so)."""
    if isinstance(err, torch.OutOfMemoryError):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)


def device_memory(device: torch.device) -> tuple[int | None, str]:
    """(bytes a run can use, what to call the device in a message); None when unknown."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return free, f"{torch.cuda.get_device_name(device)} ({device})"
    from autogpt_gui.estimates import system_memory

    return system_memory(), "this computer" if device.type == "cpu" else f"this computer ({device.type})"


def list_devices() -> list[tuple[str, str, int | None]]:
    """(value, description, memory in bytes) of every device this computer can train on, best first."""
    from autogpt_gui.estimates import system_memory

    ram = system_memory()
    gpus = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            gpus.append((f"cuda:{i}", f"GPU {i}: {p.name} ({p.total_memory / 2**30:.0f} GiB)", int(p.total_memory)))
    out: list[tuple[str, str, int | None]] = [("auto", dict(setting("train.device").choices)["auto"], gpus[0][2] if gpus else ram)]
    out += gpus
    if len(gpus) > 1:  # data-parallel over all of them: torchrun, one process per GPU (engine/train/distributed.py)
        out.append(("cuda:all", f"All {len(gpus)} GPUs (data-parallel)", min(g[2] for g in gpus)))
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        out.append(("mps", "Apple GPU (MPS)", ram))
    out.append(("cpu", f"CPU ({torch.get_num_threads()} threads)", ram))
    return out


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def bf16_fast_on(device: torch.device) -> tuple[bool, str]:
    """Whether bf16 autocast has hardware support on device, and the evidence."""
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return ok, "GPU supports bf16" if ok else "GPU lacks bf16"
    if device.type == "cpu":
        flags = cpu_flags()
        for flag, what in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX-512-BF16")):
            if flag in flags:
                return True, f"CPU has {what}"
        return False, "CPU has no AMX or AVX-512-BF16"
    return False, f"{device.type} bf16 autocast is not used"


def autocast_for(precision: str, device: torch.device):
    """The autocast context for a resolved precision."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "fp16":
        return torch.autocast(device.type, dtype=torch.float16)
    return nullcontext()


# bf16 must beat fp32 by this much before a run leaves fp32: a near tie is noise, and fp32 is the safer number
BF16_MARGIN = 1.15
PROBE_TOKENS = 2048  # the probe's batch is capped at this many tokens so it costs seconds, not minutes


def resolve_precision(requested: str, model: torch.nn.Module, device: torch.device,
                      batch_shape: tuple[int, int]) -> tuple[str, str]:
    """(precision, reason). 'auto' times fp32 against bf16 and keeps fp32 unless bf16 is clearly faster."""
    if requested == "fp16" and device.type != "cuda":
        raise TrainingError("fp16 needs a CUDA GPU (it relies on a gradient scaler); use bf16 or fp32",
                            "train.precision")
    if requested == "bf16" and device.type == "mps":
        raise TrainingError("bf16 is not supported for training on MPS; use fp32", "train.precision")
    if requested != "auto":
        return requested, "as configured"
    ok, why = bf16_fast_on(device)
    if not ok:
        return "fp32", f"fp32: {why}"
    speedup = bf16_speedup(model, device, batch_shape)
    if speedup >= BF16_MARGIN:
        return "bf16", f"bf16 autocast: {why}, and it ran {speedup:.2f}x as fast as fp32 on this model"
    return "fp32", (f"fp32: {why}, but bf16 ran only {speedup:.2f}x as fast on this model "
                    f"(auto needs {BF16_MARGIN:.2f}x to leave fp32)")


def bf16_speedup(model, device, batch_shape, rounds: int = 5, budget_s: float = 4.0) -> float:
    """fp32 time over bf16 time for forward+backward: the median of interleaved rounds after a warm-up.

    Each round times both precisions back to back (alternating which goes first), so a burst of load
    from another process slows both sides of a round alike and the median ignores the odd round out.
    """
    batch, block = batch_shape
    batch = max(1, min(batch, PROBE_TOKENS // max(1, block)))
    probe = copy.deepcopy(model).to(device).train()
    vocab = probe.config.vocab_size if hasattr(probe, "config") else 256
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(vocab, (batch, block), generator=gen).to(device)
    y = torch.randint(vocab, (batch, block), generator=gen).to(device)
    devices = [device.index or 0] if device.type == "cuda" else []
    ratios: list[float] = []
    with torch.random.fork_rng(devices=devices):
        for precision in ("fp32", "bf16"):  # warm-up: kernels, allocator, autocast caches
            _time_step(probe, x, y, device, precision)
        t_start = time.perf_counter()
        for i in range(rounds):
            order = ("fp32", "bf16") if i % 2 == 0 else ("bf16", "fp32")
            times = {p: _time_step(probe, x, y, device, p) for p in order}
            ratios.append(times["fp32"] / times["bf16"])
            if i >= 2 and time.perf_counter() - t_start > budget_s:
                break
    del probe
    return statistics.median(ratios)


def _time_step(probe, x, y, device, precision: str) -> float:
    _sync(device)
    t0 = time.perf_counter()
    with autocast_for(precision, device):
        _, loss = probe(x, y)
    loss.backward()
    probe.zero_grad(set_to_none=True)
    _sync(device)
    return time.perf_counter() - t0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
