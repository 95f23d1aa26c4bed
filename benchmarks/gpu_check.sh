#!/usr/bin/env bash
# The GPU check: on one NVIDIA GPU, in under 5 minutes, everything that only a GPU exercises.
#
#   bash benchmarks/gpu_check.sh          # on the lent machine, from the repository root
#   bash benchmarks/gpu_check.sh --cpu    # the short CPU version (the test suite runs it)
#
# 1. the engine imports without Qt (PySide6 hidden): the device has no PySide6
# 2. training steps at fp32, bf16 and fp16 (GradScaler), AdamW (fused on CUDA), Muon, torch.compile
# 3. a 1-rank torchrun job (NCCL on CUDA, gloo on the CPU) through `python -m autogpt_gui train`
# 4. GPT-2-124M (12 layers, 768 wide, context 1024) tokens/s and MFU, ours against benchmarks/nanogpt_ref.py
#    (a re-implementation of nanoGPT's model.py and train.py step: the device has no network, so nanoGPT's
#    own train.py cannot be fetched there; the reference is checked against nanoGPT's code, see its text)
#
# The lent machine has Python 3.12 and torch 2.11 but no PySide6, appdirs or tomli-w, and no network.
# The engine needs appdirs and tomli-w (pure Python, a few kB each): carry their wheels, made here with
#   pip download appdirs==1.4.4 tomli-w==1.2.0 --no-deps -d wheels/
# and this script installs them from wheels/ when they are missing (pip install --no-index).
# Each step prints "ok <name>: <figures>" or "FAILED <name>"; the exit status counts the failures.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" AUTOGPT_GUI_HOME="${AUTOGPT_GUI_HOME:-$(mktemp -d)}"
PY=${PYTHON:-python}
DEVICE=cuda
if [ "${1:-}" = "--cpu" ] || ! $PY -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
  DEVICE=cpu
fi
if ! $PY -c "import appdirs, tomli_w" 2>/dev/null && [ -d wheels ]; then
  $PY -m pip install --quiet --no-index --find-links wheels appdirs tomli-w
fi
echo "gpu check on $DEVICE ($($PY -c 'import torch; print(torch.__version__)'))"
failures=0
step() {  # step NAME COMMAND...: run it, say ok or FAILED
  local name=$1
  shift
  local started=$SECONDS
  if out=$("$@" 2>&1); then
    echo "ok $name: $(echo "$out" | tail -n 1) [$((SECONDS - started))s]"
  else
    echo "FAILED $name [$((SECONDS - started))s]"
    echo "$out" | tail -n 20
    failures=$((failures + 1))
  fi
}

step "engine imports without Qt" $PY -c "
import sys
sys.modules['PySide6'] = None  # an import of Qt anywhere below the engine now raises
import autogpt_gui.engine.session, autogpt_gui.engine.load, autogpt_gui.engine.export
print('autogpt_gui.engine.session imported with PySide6 hidden')"

if [ "$DEVICE" = cuda ]; then
  PRECISIONS="fp32 bf16 fp16"; COMPILE="true"; SHAPE="n_layer=4 n_head=4 n_embd=128 block_size=64"; STEPS=30
else
  PRECISIONS="fp32 bf16"; COMPILE=""; SHAPE="n_layer=1 n_head=2 n_embd=32 block_size=32"; STEPS=6
fi
SETS="train.device='$DEVICE' train.max_steps=$STEPS train.eval_interval=$STEPS train.eval_batches=2 \
train.sample_tokens=0 train.checkpoint_interval=0 optim.warmup_steps=2 model.preset='custom' data.source='shakespeare'"
for kv in $SHAPE; do SETS="$SETS model.$kv"; done
train_check() {  # train_check SETTING...: a short run; its last line: the loss it reached and its speed
  $PY - "$@" <<'EOF'
import sys, time
from autogpt_gui.config import RunConfig
from autogpt_gui.engine.session import build_session
cfg = RunConfig().with_overrides(sys.argv[1:])
session = build_session(cfg)
first = session.trainer.evaluate()  # the untrained model's loss: training must lower it
t0 = time.perf_counter()
result = session.trainer.train()
last = result.best_val_loss
kind = type(session.optimizer).__name__
fused = any(g.get("fused") for g in session.optimizer.param_groups)
assert result.step == cfg.train.max_steps and last < first, (result, first)
print(f"{cfg.train.max_steps} steps in {time.perf_counter() - t0:.1f}s, val loss {last:.3f}, "
      f"precision {session.trainer.precision}, {kind}{' fused' if fused else ''}")
EOF
}
for p in $PRECISIONS; do
  step "train $p adamw" train_check $SETS "train.precision='$p'" "optim.name='adamw'"
done
step "train muon" train_check $SETS "train.precision='${PRECISIONS##* }'" "optim.name='muon'"
if [ -n "$COMPILE" ]; then
  step "train compiled" train_check $SETS "train.precision='bf16'" "train.compile=true"
else
  echo "skipped train compiled: torch.compile is checked on the GPU only (minutes on a CPU)"
fi

one_rank() {
  local out=$AUTOGPT_GUI_HOME/one-rank
  local args=()
  for s in $SETS; do args+=(--set "$s"); done
  $PY -m torch.distributed.run --standalone --nproc_per_node 1 -m autogpt_gui train --quiet --out "$out" \
    "${args[@]}" --set "train.precision='fp32'" >/dev/null && \
    $PY -c "import json,sys; s=json.load(open(sys.argv[1])); assert s['status']=='finished', s; print('1-rank job', s['status'], 'at step', s['step'])" "$out/status.json"
}
step "1-rank torchrun ($([ "$DEVICE" = cuda ] && echo nccl || echo gloo))" one_rank

gpt2_speed() {
  $PY - "$DEVICE" <<'EOF'
import sys, time
import torch
sys.path.insert(0, "benchmarks")
from nanogpt_ref import GPT
from autogpt_gui.engine.model.gpt import AutoGPTModel, GPTConfig

device = sys.argv[1]
cuda = device == "cuda"
# GPT-2-124M on the GPU; a small shape on the CPU, where the point is that the code runs
n_layer, n_head, n_embd, block, batch, steps = (12, 12, 768, 1024, 8, 12) if cuda else (2, 2, 64, 64, 2, 4)
dtype = torch.bfloat16 if cuda else torch.float32
peak = 989e12 if cuda and "H200" in torch.cuda.get_device_name() or cuda and "H100" in torch.cuda.get_device_name() \
    else None  # dense bf16 FLOP/s of the card (NVIDIA's figure); else measured below


def measure(model) -> float:
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, fused=cuda)
    x = torch.randint(0, 50304, (batch, block), device=device)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        with torch.autocast(device, dtype=dtype, enabled=cuda):
            _, loss = model(x, x)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
        times.append(time.perf_counter() - t)
    return batch * block / sorted(times[2:])[len(times[2:]) // 2]


if peak is None:
    n = 4096 if cuda else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    (a @ a).sum().item()
    t = time.perf_counter()
    for _ in range(10):
        b = a @ a
    b.sum().item()
    peak = 10 * 2 * n**3 / (time.perf_counter() - t)
params = 12 * n_layer * n_embd**2
flops_per_token = 6 * params + 12 * n_layer * n_embd * block  # PaLM's estimate, as nanoGPT's estimate_mfu
torch.manual_seed(0)
theirs = measure(GPT(50304, block, n_layer, n_head, n_embd, bias=False))
ours = measure(AutoGPTModel(GPTConfig(vocab_size=50304, n_layer=n_layer, n_head=n_head, n_embd=n_embd,
                                      block_size=block, dropout=0.0, bias=False)))
mfu = lambda tps: tps * flops_per_token / peak
print(f"{n_layer}L/{n_embd}: ours {ours:,.0f} tokens/s (MFU {mfu(ours):.1%}), nanoGPT's {theirs:,.0f} "
      f"(MFU {mfu(theirs):.1%}), ratio ours/nanoGPT {ours / theirs:.2f}")
EOF
}
step "GPT-2 tokens/s and MFU" gpt2_speed

echo "gpu check done: $failures failed"
exit $failures
