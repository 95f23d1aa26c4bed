"""`autogpt-gui chat RUN_DIR|FOLDER`: talk to a model in a terminal, through its chat template, a reply ending at
its end-of-turn token; `--base` answers each message with a second model too (the base it was tuned from)."""
from __future__ import annotations

import sys


def add_chat_parser(sub) -> None:
    """The `chat` subcommand's arguments."""
    c = sub.add_parser("chat", help="chat with a model in the terminal, through its chat template")
    c.add_argument("source", help="run folder, checkpoint file, or Hugging Face model folder")
    c.add_argument("--base", help="a second model (run, checkpoint or folder) to answer beside it, e.g. the base")
    c.add_argument("--system", default="", help="a system message to start the conversation with")
    c.add_argument("--max-new-tokens", type=int, default=200)
    c.add_argument("--temperature", type=float, default=0.0, help="0: greedy (default)")
    c.add_argument("--seed", type=int, default=0)


def cmd_chat(args) -> int:
    """Read a message per line (/reset forgets the conversation, /exit or end of input ends), print the reply."""
    from autogpt_gui.engine.data.chat import Turn
    from autogpt_gui.engine.load import load_chat
    from autogpt_gui.engine.model.chat import chat_reply

    models = [(name, *load_chat(source)) for name, source in (("model", args.source), ("base", args.base)) if source]
    start = [Turn("system", args.system)] if args.system else []
    histories = [list(start) for _ in models]
    print(f"chatting with {args.source}{' and ' + args.base if args.base else ''} "
          f"(template ends turns with {models[0][3].end_of_turn or 'the end of text'!r}); /reset, /exit")
    while True:
        try:
            line = input("you> ")
        except EOFError:
            print()
            return 0
        if line.strip() == "/exit":
            return 0
        if line.strip() == "/reset":
            histories = [list(start) for _ in models]
            continue
        for (name, model, tokenizer, template), history in zip(models, histories):
            history.append(Turn("user", line))
            sys.stdout.write(f"{name}> ")
            reply = chat_reply(model, tokenizer, template, history, args.max_new_tokens, args.temperature, args.seed,
                               on_text=lambda s: (sys.stdout.write(s), sys.stdout.flush()))
            sys.stdout.write("\n")
            sys.stdout.flush()
            history.append(Turn("assistant", reply))
