"""`autogpt-gui` opens the window; `autogpt-gui train|resume|branch|control|find-lr|sample|chat|runs|export` work
headless."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from autogpt_gui.cli_chat import cmd_chat
from autogpt_gui.cli_parser import build_parser
from autogpt_gui.config import RunConfig
from autogpt_gui.errors import AutoGPTError, ConfigError


def run() -> None:
    """The process's entry point (the `autogpt-gui` script, `python -m autogpt_gui`, the bundle): main(), then
    exit at once. When main returns, the run has ended and its files are written and closed; what is left is
    the interpreter's and torch's teardown, where a late Ctrl-C or SIGTERM (Python's handlers are gone by
    then) would kill the process by that signal instead of letting it report main's exit code."""
    code = 130
    try:
        code = main()
    except KeyboardInterrupt:  # a Ctrl-C after main's own handling (its handlers restored) is still a Ctrl-C
        code = 130
    # No line between main's return and this try lets a pending signal raise: a Ctrl-C whose C handler ran just
    # before (Python's runs at the next call) raises inside the try, and is retried until quiet handlers are in.
    while True:  # (a range() here would be a call outside the try)
        try:
            _quiet_signals()
            break
        except KeyboardInterrupt:
            continue
    try:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe or console: nothing more can be said
        pass
    os._exit(code)


def _quiet_signals() -> None:
    """Handlers that do nothing, for the moment the process leaves. Blocking the signals would not do: the
    mask is the main thread's, and torch's worker threads would still take them."""
    import signal

    def ignore(signum, frame) -> None:
        pass

    for name in ("SIGINT", "SIGTERM", "SIGHUP"):  # Windows has no SIGHUP
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), ignore)


def main(argv: list[str] | None = None) -> int:
    code = _main(argv)
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:  # a torchrun rank: leave the job cleanly, then at once
        from autogpt_gui.engine.train.distributed import leave

        leave(code)
    return code


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.selftest:
            from autogpt_gui.selftest import run_selftest

            return run_selftest()
        if args.command is None:
            from autogpt_gui.ui.app import run_app

            return run_app(screenshot=args.screenshot, size=args.size, steps=args.screenshot_steps, follow=args.follow)
        return {"train": cmd_train, "resume": cmd_resume, "control": cmd_control, "find-lr": cmd_find_lr, "branch": cmd_branch,
                "launch-command": cmd_launch_command,
                "sample": cmd_sample, "chat": cmd_chat,
                "runs": cmd_runs, "export": cmd_export}[args.command](args)
    except ConfigError as err:
        print("The configuration has problems:", file=sys.stderr)
        for field, message in err.problems:
            print(f"  {field}: {message}", file=sys.stderr)
        return 2
    except AutoGPTError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


def load_config(path: str | None, overrides: list[str]) -> RunConfig:
    cfg = RunConfig.load(resolve_config_path(path)) if path else RunConfig()
    cfg = cfg.with_overrides(overrides)
    problems = cfg.validate()
    if problems:
        raise ConfigError(problems)
    return cfg


def resolve_config_path(path: str) -> Path:
    """A path as given, else a name from the bundled example configs (e.g. 'addition')."""
    p = Path(path)
    if p.exists():
        return p
    from autogpt_gui.resources import resource_path

    bundled = resource_path("configs", p.name if p.suffix else f"{p.name}.toml")
    return bundled if bundled.exists() else p


def cmd_train(args) -> int:
    cfg = load_config(args.config, args.set)
    if cfg.train.device == "cuda:all" and args.nproc == 1 and int(os.environ.get("WORLD_SIZE", 1)) == 1:
        import torch

        args.nproc = torch.cuda.device_count()  # one process per GPU
        if args.nproc < 2:
            raise ConfigError([("train.device", f"cuda:all trains on several GPUs; this computer has {args.nproc}")])
    if args.nproc > 1:  # the one-machine shortcut: the same command under torchrun, in a subprocess
        import subprocess

        from autogpt_gui.engine.train import distributed

        rest = ["train", *(["--config", args.config] if args.config else []), *[x for s in args.set for x in ("--set", s)],
                *(["--out", args.out] if args.out else []), *(["--quiet"] if args.quiet else [])]
        return subprocess.call(distributed.torchrun_command(args.nproc) + rest)
    from autogpt_gui.engine.session import check_memory
    from autogpt_gui.engine.train.precision import pick_device

    check_memory(cfg, pick_device(cfg.train.device))  # before a run folder exists for a run that cannot start
    from autogpt_gui.engine.train import distributed

    if not distributed.setup(cfg.train.device).main:  # a torchrun rank other than 0: trains, writes nothing
        return _train(cfg, None, None, True)
    run = _new_run(cfg, args.out)
    print(f"run folder: {run.path}")
    return _train(cfg, run, None, args.quiet)


def _new_run(cfg, out: str | None):
    """A run folder for cfg: --out (new or empty), or a new one among the app's runs."""
    from autogpt_gui import paths
    from autogpt_gui.engine.run.runs import Run

    return Run.prepare(cfg, out) if out else Run.create(cfg, paths.runs_dir())


def cmd_resume(args) -> int:
    from autogpt_gui.engine.run.runs import locate_resume

    run, ckpt = locate_resume(args.run)
    if args.extend and ckpt is None:
        raise AutoGPTError(f"{run.path} has no checkpoint to extend from", "run")
    if ckpt is None and not args.restart:
        raise AutoGPTError(f"{run.path} stopped before its first checkpoint, so there is nothing to resume. "
                           f"Start it again in place, with the same configuration: "
                           f"autogpt-gui resume {run.path} --restart", "run")
    cfg = run.config().with_overrides(args.set)
    from autogpt_gui.engine.train import distributed

    if not distributed.setup(cfg.train.device).main:  # a torchrun rank other than 0: trains, writes nothing
        return _train(cfg, None, ckpt, True, args.extend)
    with run.writing():  # before anything in the folder changes: a second trainer is refused here
        if args.set:
            cfg.save(run.files.config)
        if ckpt is None:
            run.reset()
            print(f"no checkpoint yet: starting {run.id} again from step 0 with its configuration")
        return _train(cfg, run, ckpt, args.quiet, args.extend)


def cmd_branch(args) -> int:
    from autogpt_gui.engine.run.checkpoints import load_checkpoint
    from autogpt_gui.engine.run.runs import locate_resume

    parent, ckpt = locate_resume(args.checkpoint)
    if ckpt is None:
        raise AutoGPTError(f"{parent.path} has no checkpoint to branch from", "checkpoint")
    cfg = parent.config().with_overrides(args.set)
    problems = cfg.validate()
    if problems:
        raise ConfigError(problems)
    step = int(load_checkpoint(ckpt)["trainer"]["step"])
    run = _new_run(cfg, args.out)
    run.write_branch(parent, ckpt, step)
    print(f"run folder: {run.path} (a branch of {parent.id} at step {step})")
    return _train(cfg, run, ckpt, args.quiet)


def cmd_control(args) -> int:
    from autogpt_gui.engine.run import control
    from autogpt_gui.engine.run.layout import is_run_folder
    from autogpt_gui.engine.run.runs import LIVE, Run
    from autogpt_gui.engine.train import edits

    run = Run(Path(args.run))
    if not is_run_folder(run.path):
        raise AutoGPTError(f"{run.path} is not a run folder", "run")
    payload = None
    if args.request == "edit":
        if not args.set:
            raise ConfigError([("--set", "name what to change, e.g. --set optim.lr=5e-4")])
        cfg = run.config()
        keys = [item.partition("=")[0].strip() for item in args.set]
        changed = cfg.with_overrides(args.set)
        _, payload = edits.checked(cfg, {k: getattr(getattr(changed, k.split(".")[0]), k.split(".")[1]) for k in keys})
    status = run.summary().status
    if status not in (*LIVE, "running elsewhere"):
        raise AutoGPTError(f"{run.id} is not training ({status}); nothing reads its requests. Continue it with: "
                           f"autogpt-gui resume {run.path}", "run")
    control.send(run.path, args.request, payload)
    print(f"asked {run.id} to {args.request}" + (f": {payload}" if payload else ""))
    return 0


def cmd_launch_command(args) -> int:
    import shlex

    from autogpt_gui.engine.train import distributed

    cfg = load_config(args.config, args.set)
    if args.out:  # the run folder, prepared now: every machine reads its configuration from there
        out = Path(args.out).expanduser().resolve()
        run = _new_run(cfg, str(out))
        train = ["resume", str(out), "--restart", "--quiet"]  # after a crash, the same line resumes it
        where = f"the configuration is in {run.files.config}"
    elif args.nnodes > 1:
        raise ConfigError([("--out", f"{args.nnodes} machines need a run folder that all of them see: give "
                                     "--out on a shared file system, e.g. --out /shared/runs/big")])
    else:
        from autogpt_gui import paths

        config_file = paths.settings_file().with_name("launch_config.toml")
        config_file.parent.mkdir(parents=True, exist_ok=True)
        cfg.save(config_file)
        train = ["train", "--config", str(config_file), "--out", str(paths.runs_dir() / (cfg.name or "ddp-run")),
                 "--quiet"]
        where = f"the configuration is in {config_file}"
    line = " ".join(shlex.quote(a) if "$" not in a else a for a in distributed.torchrun_command(args.nproc, args.nnodes) + train)
    print(f"# {args.nnodes} machine(s) x {args.nproc} process(es); {where}")
    print(line.replace("$NODE_RANK", "0").replace("$MASTER_ADDR", "localhost") if args.nnodes == 1 else line)
    print(f"""
# Slurm: save as train.sbatch, then: sbatch train.sbatch
#!/bin/bash
#SBATCH --job-name=autogpt-gui
#SBATCH --nodes={args.nnodes}
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node={args.nproc}
export MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
srun bash -c 'NODE_RANK=$SLURM_NODEID {line}'""")
    return 0


def cmd_find_lr(args) -> int:
    from autogpt_gui.engine.lr_finder import find_lr

    cfg = load_config(args.config, args.set)
    print(f"sweeping the learning rate from 1e-6 to 1 over {args.steps} steps on a fresh copy of the model")

    def progress(i: int, lr: float, loss: float) -> None:
        if i % 10 == 0:
            print(f"  step {i:4d}  lr {lr:9.2e}  smoothed loss {loss:.4f}", flush=True)

    sweep = find_lr(cfg, steps=args.steps, progress=progress)
    print(sweep.describe())
    if sweep.suggestion is None:
        return 1
    muon = "" if sweep.muon_suggestion is None else f" --set optim.muon_lr={sweep.muon_suggestion:.1e}"
    print(f"use it: --set optim.lr={sweep.suggestion:.1e}{muon}")
    return 0


def _train(cfg: RunConfig, run, resume_from, quiet: bool, extend: int = 0) -> int:
    from autogpt_gui.engine.run.disk import DiskFull
    from autogpt_gui.engine.session import build_session
    from autogpt_gui.engine.train.interrupts import GracefulStop
    from autogpt_gui.errors import Cancelled
    from autogpt_gui.progress import ProgressBar

    if run is None:  # a torchrun rank other than 0: rank 0 answers signals and decides when all ranks stop
        import signal

        for name in ("SIGINT", "SIGTERM", "SIGHUP"):  # torchrun's SIGKILL still ends a rank whose rank 0 never stops
            signal.signal(getattr(signal, name), signal.SIG_IGN)
        session = build_session(cfg, None, resume_from, extend=extend)
        return 0 if session.trainer.train().status != "failed" else 1
    bar = ProgressBar(enabled=not quiet)
    with GracefulStop() as interrupts:
        try:
            session = build_session(cfg, run, resume_from, progress=bar.data_progress, cancelled=interrupts.cancelled,
                                    extend=extend)
        except Cancelled:
            print(f"{interrupts.reason} while preparing the data; nothing was trained", file=sys.stderr)
            return interrupts.exit_code or 1
        interrupts.attach(session.trainer)
        bar.attach(session.trainer)
        d = session.data
        if hasattr(d, "counts"):  # conversations
            print(f"data: {d.source_label}: {d.counts.text()}; held out: {d.val_counts.text()}; "
                  f"vocabulary {d.tokenizer.vocab_size}{' (cached)' if d.from_cache else ''}")
        else:
            print(f"data: {d.source_label}: {len(d.train):,} training and {len(d.val):,} validation tokens, "
                  f"vocabulary {d.tokenizer.vocab_size}{' (cached)' if d.from_cache else ''}")
        print(f"model: {session.model.num_params() / 1e6:.2f}M parameters on {session.trainer.device}")
        tr = session.trainer
        if resume_from:
            print(f"resumed at step {tr.step}, epoch {tr.epoch}, {tr.tokens_seen:,} tokens seen")
        if extend:
            print(f"extended by {extend} steps to step {tr.max_steps}")
        try:
            result = tr.train()
        except DiskFull as err:
            print(f"error: {err}", file=sys.stderr)
            if run.has_checkpoint():
                print(f"continue with: autogpt-gui resume {run.path}", file=sys.stderr)
            return 1
    best = result.best_val_loss if result.best_val_loss is None else round(result.best_val_loss, 4)
    print(f"{result.status} at step {result.step}; best validation loss {best}")
    if interrupts.received is not None:
        print(f"{interrupts.reason}: the checkpoint of step {result.step} is saved; continue with: "
              f"autogpt-gui resume {run.path}", file=sys.stderr)
        return interrupts.exit_code
    print(f"sample it: autogpt-gui sample {run.path}")
    return 0


def cmd_sample(args) -> int:
    from autogpt_gui.engine.load import load_model
    from autogpt_gui.engine.model.generate import generate_text

    model, tokenizer, _ = load_model(args.source)
    prompt = args.prompt.encode().decode("unicode_escape") if "\\" in args.prompt else args.prompt
    sys.stdout.write(prompt)
    generate_text(model, tokenizer, prompt, args.max_new_tokens, args.temperature, args.top_k or None,
                  args.top_p, args.seed, on_text=lambda s: (sys.stdout.write(s), sys.stdout.flush()))
    sys.stdout.write("\n")
    return 0


def cmd_runs(args) -> int:
    from autogpt_gui import paths
    from autogpt_gui.engine.run.runs import list_runs

    runs = list_runs(paths.runs_dir())
    if not runs:
        print(f"no runs yet in {paths.runs_dir()}; start one with: autogpt-gui train")
        return 0
    print(f"{'run':42} {'step':>12} {'best val':>9} {'accuracy':>9}  status")
    for r in runs:
        steps = f"{r.step}/{r.max_steps}" if r.max_steps else str(r.step)
        best = f"{r.best_val_loss:.4f}" if r.best_val_loss is not None else "-"
        acc = f"{r.accuracy * 100:.1f}%" if r.accuracy is not None else "-"
        fork = f" [branch of {r.parent} at step {r.fork_step}]" if r.parent else ""
        print(f"{r.id:42} {steps:>12} {best:>9} {acc:>9}  {r.status}{': ' + r.reason if r.reason else ''}{fork}")
    return 0


def cmd_export(args) -> int:
    from autogpt_gui.engine.export import export_gguf, export_model

    if args.format == "gguf":
        done = export_gguf(args.source, args.out, args.quant, args.verify)
        for note in done.notes:
            print(note)
        print(f"exported to {done.path} (gguf, {args.quant}); run it: llama-cli -m {done.path}, or "
              f"ollama create NAME -f {done.path.parent / 'Modelfile'}")
        return 0
    if args.verify or args.quant != "f32":
        print("--quant and --verify apply to --format gguf only", file=sys.stderr)
        return 2
    out = export_model(args.source, args.out, args.format)
    print(f"exported to {out} ({args.format})")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
