"""What the command line accepts: `autogpt-gui` and its commands, their options and help (cli.py runs them)."""
from __future__ import annotations

import argparse

from autogpt_gui import __version__
from autogpt_gui.cli_chat import add_chat_parser

DESCRIPTION = ("`autogpt-gui` opens the window; `autogpt-gui train|resume|branch|control|find-lr|sample|chat|runs|export` "
               "work headless.")


def build_parser() -> argparse.ArgumentParser:
    from autogpt_gui.engine.train.requests import FROM_OUTSIDE

    p = argparse.ArgumentParser(prog="autogpt-gui", description=DESCRIPTION)
    p.add_argument("--version", action="version", version=f"autogpt-gui {__version__}")
    p.add_argument("--selftest", action="store_true", help="train, save, reload and sample headless; exit 0 if all work")
    p.add_argument("--screenshot", metavar="PNG", help="open the window offscreen, render it to PNG and exit")
    p.add_argument("--screenshot-steps", type=int, default=0, metavar="N",
                   help="with --screenshot: train N steps on the defaults first, so charts have data")
    p.add_argument("--size", default="1280x800", help="with --screenshot: window size, e.g. 1920x1080")
    p.add_argument("--follow", metavar="RUN_DIR", help="open the window on a run another process trains, and follow it")
    sub = p.add_subparsers(dest="command")

    t = sub.add_parser("train", help="train a model headless")
    t.add_argument("--config", help="a run configuration (.toml); see resources/configs/")
    t.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one setting, e.g. --set train.max_steps=500 (repeatable)")
    t.add_argument("--out", help="run folder to create (default: a new folder under the user data dir)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="train with N processes on this machine (torchrun; one per GPU, or gloo on the CPU)")

    lc = sub.add_parser("launch-command", help="print the torchrun line and a Slurm script for a configuration")
    lc.add_argument("--config", help="a run configuration (.toml) or a bundled example's name")
    lc.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    lc.add_argument("--nproc", type=int, default=2, help="processes (GPUs) per machine")
    lc.add_argument("--nnodes", type=int, default=1, help="machines")
    lc.add_argument("--out", help="the run folder, on a file system every machine sees")

    r = sub.add_parser("resume", help="continue a run from its last checkpoint")
    r.add_argument("run", help="run folder, or a checkpoint file (.pt) inside one to continue from it")
    r.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="change a setting before resuming, e.g. --set train.max_steps=4000")
    r.add_argument("--restart", action="store_true",
                   help="a run that stopped before its first checkpoint: start it again in its folder")
    r.add_argument("--extend", type=int, default=0, metavar="N",
                   help="train N steps more than the run had; the learning rate decays on from where it is")
    r.add_argument("--quiet", action="store_true")

    b = sub.add_parser("branch", help="start a new run from a checkpoint of another, with changed settings")
    b.add_argument("checkpoint", help="a checkpoint file inside a run (RUN/checkpoints/step-00000100.pt), or a run")
    b.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="what the branch changes, e.g. --set optim.lr=3e-4 (repeatable)")
    b.add_argument("--out", help="the new run's folder (default: a new folder under the user data dir)")
    b.add_argument("--quiet", action="store_true")

    c = sub.add_parser("control", help="ask a run training in another process (or window) for something")
    c.add_argument("run", help="the run folder")
    c.add_argument("request", choices=FROM_OUTSIDE)
    c.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="with edit: a setting to change live, e.g. --set optim.lr=5e-4 (repeatable)")

    f = sub.add_parser("find-lr", help="sweep the learning rate on a fresh copy of the model and suggest one")
    f.add_argument("--config", help="a run configuration (.toml) or a bundled example's name")
    f.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    f.add_argument("--steps", type=int, default=100, help="steps of the sweep (default 100)")

    s = sub.add_parser("sample", help="generate text from a run or a checkpoint")
    s.add_argument("source", help="run folder or checkpoint file")
    s.add_argument("--prompt", default="\n")
    s.add_argument("--max-new-tokens", type=int, default=300)
    s.add_argument("--temperature", type=float, default=0.8)
    s.add_argument("--top-k", type=int, default=50)
    s.add_argument("--top-p", type=float, default=None)
    s.add_argument("--seed", type=int, default=None)

    add_chat_parser(sub)
    sub.add_parser("runs", help="list runs with their step, best validation loss and status")

    e = sub.add_parser("export", help="export a model for Hugging Face tools (default), llama.cpp / Ollama, or natively")
    e.add_argument("source", help="run folder (its best checkpoint) or checkpoint file")
    e.add_argument("out", help="folder to write into")
    e.add_argument("--format", default="hf", choices=("hf", "gguf", "native"),
                   help="hf: config.json + model.safetensors + tokenizer.json + model card, for transformers; "
                        "gguf: one .gguf file for llama.cpp, Ollama, LM Studio + Modelfile + model card; "
                        "native: our safetensors + config.toml + tokenizer.json")
    e.add_argument("--quant", default="f32", choices=("f32", "f16", "bf16", "q8_0"),
                   help="gguf: the type of the weight matrices (norms and biases stay f32)")
    e.add_argument("--verify", action="store_true",
                   help="gguf: run the file in llama.cpp (llama-cpp-python) and compare its greedy tokens with ours")
    return p
