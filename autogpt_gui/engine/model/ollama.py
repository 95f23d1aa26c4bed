"""Ollama's Modelfile beside a GGUF export: FROM the file, the chat template as a Go template, the stop tokens.

Ollama renders prompts with Go's text/template, not Jinja. The translation here covers the families that wrap
each message alone in text of its role (ChatML and Qwen's, Llama 3's, ...): it learns each role's wrapping,
the text that starts a conversation and the generation prompt by rendering the Jinja template (in jinja2's
sandbox) on probe conversations, writes them as one `range .Messages` loop, and keeps the translation only
if it renders a longer conversation exactly as the Jinja template does; otherwise it says so.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

ROLES = ("system", "user", "assistant")
_X, _Y = "\x00first\x00", "\x00second\x00"  # probe contents no template writes itself


@dataclass
class Wrapping:
    """A per-message template: `start`, then for each message pre[role] + content + post[role], then `prompt`."""

    start: str
    pre: dict[str, str]
    post: dict[str, str]
    prompt: str


def _renderer(template: str, bos_token: str, eos_token: str):
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise ValueError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    compiled = env.from_string(template)

    def render(messages: list[dict], add_generation_prompt: bool) -> str:
        return compiled.render(messages=messages, add_generation_prompt=add_generation_prompt, bos_token=bos_token,
                               eos_token=eos_token, raise_exception=raise_exception)

    return render


def wrapping(template: str, bos_token: str = "", eos_token: str = "") -> Wrapping | None:
    """The template's per-message wrapping, or None when it is not of that kind (or does not render)."""
    try:
        from jinja2 import TemplateError
    except ImportError:  # an installation without jinja2 (it comes with the chat features)
        return None
    render = _renderer(template, bos_token, eos_token)
    msg = lambda role, text: {"role": role, "content": text}  # noqa: E731
    try:
        one = render([msg("user", _X)], False)
        pre, post = {}, {}
        for role in ROLES:
            seg = render([msg("user", _X), msg(role, _Y)], False)[len(one):]
            if seg.count(_Y) != 1:
                return None
            pre[role], post[role] = seg.split(_Y)
        head = pre["user"] + _X + post["user"]
        if not one.endswith(head):
            return None
        found = Wrapping(one[: -len(head)], pre, post, render([msg("user", _X)], True)[len(one):])
        probes = [[msg("system", "Be brief."), msg("user", "Hi"), msg("assistant", "Hello."), msg("user", "Why?")],
                  [msg("user", "Hi"), msg("assistant", "Hello."), msg("user", "Bye")]]
        if any(render(p, True) != apply(found, p) for p in probes):
            return None
    except (TemplateError, ValueError, TypeError):
        return None
    return found


def apply(w: Wrapping, messages: list[dict]) -> str:
    """What the wrapping renders for messages with the generation prompt (as the Go template does)."""
    body = "".join(w.pre[m["role"]] + m["content"] + w.post[m["role"]] for m in messages)
    return w.start + body + w.prompt


def go_template(template: str, bos_token: str = "", eos_token: str = "") -> str | None:
    """The Jinja chat template as an Ollama (Go text/template) TEMPLATE, or None when it cannot be translated."""
    w = wrapping(template, bos_token, eos_token)
    if w is None:
        return None
    literals = [w.start, w.prompt, *w.pre.values(), *w.post.values()]
    if any("{{" in text or "}}" in text or '"""' in text for text in literals):
        return None  # Go would read these as actions; never the case for the families we know
    branches = "".join(f'{{{{ {"if" if i == 0 else "else if"} eq .Role "{role}" }}}}'
                       f"{w.pre[role]}{{{{ .Content }}}}{w.post[role]}" for i, role in enumerate(ROLES))
    return f"{w.start}{{{{ range .Messages }}}}{branches}{{{{ end }}}}{{{{ end }}}}{w.prompt}"


def modelfile(gguf_name: str, chat_template: str | None = None, stops: list[str] | None = None,
              bos_token: str = "", eos_token: str = "") -> tuple[str, str | None]:
    """The Modelfile's text, and a note when the chat template could not be translated (Ollama then sends the
    prompt as it is)."""
    lines = [f"FROM ./{gguf_name}"]
    note = None
    go = go_template(chat_template, bos_token, eos_token) if chat_template else None
    if go is not None:
        lines.append(f'TEMPLATE """{go}"""')
    else:
        if chat_template:
            note = ("the chat template is not one that wraps each message alone, the kind translated to Ollama's "
                    "Go template here; the Modelfile sends prompts as they are")
            lines.append(f"# {note}")
        lines.append('TEMPLATE """{{ .Prompt }}"""')
    lines += [f"PARAMETER stop {json.dumps(s, ensure_ascii=False)}" for s in stops or []]
    return "\n".join(lines) + "\n", note
