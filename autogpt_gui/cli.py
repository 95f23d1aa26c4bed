"""`autogpt-gui` opens the window; `autogpt-gui train|resume|sample|runs|export` work headless."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from autogpt_gui import __version__
from autogpt_gui.config import RunConfig
from autogpt_gui.errors import AutoGPTError, ConfigError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="autogpt-gui", description=__doc__)
    p.add_argument("--version", action="version", version=f"autogpt-gui {__version__}")
    p.add_argument("--selftest", action="store_true", help="train, save, reload and sample headless; exit 0 if all work")
    p.add_argument("--screenshot", metavar="PNG", help="open the window offscreen, render it to PNG and exit")
    p.add_argument("--screenshot-steps", type=int, default=0, metavar="N",
                   help="with --screenshot: train N steps on the defaults first, so charts have data")
    p.add_argument("--size", default="1280x800", help="with --screenshot: window size, e.g. 1920x1080")
    sub = p.add_subparsers(dest="command")

    t = sub.add_parser("train", help="train a model headless")
    t.add_argument("--config", help="a run configuration (.toml); see resources/configs/")
    t.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one setting, e.g. --set train.max_steps=500 (repeatable)")
    t.add_argument("--out", help="run folder to create (default: a new folder under the user data dir)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    r = sub.add_parser("resume", help="continue a run from its last checkpoint")
    r.add_argument("run", help="run folder, or a checkpoint file (.pt) inside one to continue from it")
    r.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="change a setting before resuming, e.g. --set train.max_steps=4000")
    r.add_argument("--restart", action="store_true",
                   help="a run that stopped before its first checkpoint: start it again in its folder")
    r.add_argument("--quiet", action="store_true")

    s = sub.add_parser("sample", help="generate text from a run or a checkpoint")
    s.add_argument("source", help="run folder or checkpoint file")
    s.add_argument("--prompt", default="\n")
    s.add_argument("--max-new-tokens", type=int, default=300)
    s.add_argument("--temperature", type=float, default=0.8)
    s.add_argument("--top-k", type=int, default=50)
    s.add_argument("--top-p", type=float, default=None)
    s.add_argument("--seed", type=int, default=None)

    sub.add_parser("runs", help="list runs with their step, best validation loss and status")

    e = sub.add_parser("export", help="export a model for Hugging Face tools (default) or natively")
    e.add_argument("source", help="run folder (its best checkpoint) or checkpoint file")
    e.add_argument("out", help="folder to write into")
    e.add_argument("--format", default="hf", choices=("hf", "native"),
                   help="hf: config.json + model.safetensors + tokenizer.json + model card, for transformers; "
                        "native: our safetensors + config.toml + tokenizer.json")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.selftest:
            from autogpt_gui.selftest import run_selftest

            return run_selftest()
        if args.command is None:
            from autogpt_gui.ui.app import run_app

            return run_app(screenshot=args.screenshot, size=args.size, steps=args.screenshot_steps)
        return {"train": cmd_train, "resume": cmd_resume, "sample": cmd_sample,
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
    from autogpt_gui import paths
    from autogpt_gui.engine.runs import Run

    cfg = load_config(args.config, args.set)
    from autogpt_gui.engine.precision import pick_device
    from autogpt_gui.engine.session import check_memory

    check_memory(cfg, pick_device(cfg.train.device))  # before a run folder exists for a run that cannot start
    if args.out:
        out = Path(args.out)
        if out.exists() and any(out.iterdir()):
            raise AutoGPTError(f"{out} is not empty; choose a new folder for --out", "--out")
        out.mkdir(parents=True, exist_ok=True)
        cfg.save(out / "config.toml")
        run = Run(out)
    else:
        run = Run.create(cfg, paths.runs_dir())
    print(f"run folder: {run.path}")
    return _train(cfg, run, None, args.quiet)


def cmd_resume(args) -> int:
    from autogpt_gui.engine.runs import locate_resume

    run, ckpt = locate_resume(args.run)
    if ckpt is None and not args.restart:
        raise AutoGPTError(f"{run.path} stopped before its first checkpoint, so there is nothing to resume. "
                           f"Start it again in place, with the same configuration: "
                           f"autogpt-gui resume {run.path} --restart", "run")
    cfg = run.config().with_overrides(args.set)
    run.lock.acquire()  # before anything in the folder changes: a second trainer is refused here
    if args.set:
        cfg.save(run.path / "config.toml")
    if ckpt is None:
        run.reset()
        print(f"no checkpoint yet: starting {run.id} again from step 0 with its configuration")
    return _train(cfg, run, ckpt, args.quiet)


def _train(cfg: RunConfig, run, resume_from, quiet: bool) -> int:
    from autogpt_gui.engine.interrupts import GracefulStop
    from autogpt_gui.engine.session import build_session
    from autogpt_gui.errors import Cancelled
    from autogpt_gui.progress import ProgressBar

    bar = ProgressBar(enabled=not quiet)
    with GracefulStop() as interrupts:
        try:
            session = build_session(cfg, run, resume_from, progress=bar.data_progress, cancelled=interrupts.cancelled)
        except Cancelled:
            print(f"{interrupts.reason} while preparing the data; nothing was trained", file=sys.stderr)
            return interrupts.exit_code or 1
        interrupts.attach(session.trainer)
        bar.attach(session.trainer)
        d = session.data
        print(f"data: {d.source_label}: {len(d.train):,} training and {len(d.val):,} validation tokens, "
              f"vocabulary {d.tokenizer.vocab_size}{' (cached)' if d.from_cache else ''}")
        print(f"model: {session.model.num_params() / 1e6:.2f}M parameters on {session.trainer.device}")
        tr = session.trainer
        if resume_from:
            print(f"resumed at step {tr.step}, epoch {tr.epoch}, {tr.tokens_seen:,} tokens seen")
        result = tr.train()
    best = result.best_val_loss if result.best_val_loss is None else round(result.best_val_loss, 4)
    print(f"{result.status} at step {result.step}; best validation loss {best}")
    if interrupts.received is not None:
        print(f"{interrupts.reason}: the checkpoint of step {result.step} is saved; continue with: "
              f"autogpt-gui resume {run.path}", file=sys.stderr)
        return interrupts.exit_code
    print(f"sample it: autogpt-gui sample {run.path}")
    return 0


def cmd_sample(args) -> int:
    from autogpt_gui.engine.inference import generate_text, load_model

    model, tokenizer, _ = load_model(args.source)
    prompt = args.prompt.encode().decode("unicode_escape") if "\\" in args.prompt else args.prompt
    sys.stdout.write(prompt)
    generate_text(model, tokenizer, prompt, args.max_new_tokens, args.temperature, args.top_k or None,
                  args.top_p, args.seed, on_text=lambda s: (sys.stdout.write(s), sys.stdout.flush()))
    sys.stdout.write("\n")
    return 0


def cmd_runs(args) -> int:
    from autogpt_gui import paths
    from autogpt_gui.engine.runs import list_runs

    runs = list_runs(paths.runs_dir())
    if not runs:
        print(f"no runs yet in {paths.runs_dir()}; start one with: autogpt-gui train")
        return 0
    print(f"{'run':42} {'step':>12} {'best val':>9} {'accuracy':>9}  status")
    for r in runs:
        steps = f"{r.step}/{r.max_steps}" if r.max_steps else str(r.step)
        best = f"{r.best_val_loss:.4f}" if r.best_val_loss is not None else "-"
        acc = f"{r.accuracy * 100:.1f}%" if r.accuracy is not None else "-"
        print(f"{r.id:42} {steps:>12} {best:>9} {acc:>9}  {r.status}{': ' + r.reason if r.reason else ''}")
    return 0


def cmd_export(args) -> int:
    from autogpt_gui.engine.export import export_model

    out = export_model(args.source, args.out, args.format)
    print(f"exported to {out} ({args.format})")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
