"""Jinja2 for chat templates from strangers: the sandbox, a static check before anything runs, a bound on work.

transformers renders templates with `ImmutableSandboxedEnvironment` (no Python internals, no mutation); on
top of that a template is refused unseen if it names Python internals, and every render is counted line by
line (a loop without end stops at the budget), with operations that could allocate without bound refused.
"""
from __future__ import annotations

import functools
import json
import sys
from datetime import datetime

from jinja2 import TemplateError, TemplateSyntaxError, nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from autogpt_gui.errors import DataError

FIELD = "data.chat_template"
MAX_SIZE = 1_000_000  # the longest string or list one operation may make, and the largest number it may take
STEPS = 200_000  # template lines a render may run, plus STEPS_PER_TURN for each turn
STEPS_PER_TURN = 2_000
FORBIDDEN_NAMES = {"os", "sys", "subprocess", "builtins", "__builtins__", "importlib", "eval", "exec", "open",
                   "compile", "globals", "locals", "vars", "getattr", "setattr", "__import__", "lipsum", "cycler",
                   "joiner", "config", "request", "self"}
TEMPLATE_FILE = "<template>"  # the file name jinja2 gives code compiled from a string


class TooMuchWork(Exception):
    """A render ran past its budget of template lines."""


def _check_size(value) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SIZE:
        raise SecurityError(f"the number {value} is larger than a chat template needs")


def _bounded(fn):
    """A filter that refuses numbers too large to be a width or a count (`center(10**9)`)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        for value in (*args, *kwargs.values()):
            _check_size(value)
        return fn(*args, **kwargs)
    return wrapper


def _tojson(value, indent=None, separators=None, sort_keys=False) -> str:
    """transformers' tojson: plain JSON (jinja2's own escapes <, > and & for HTML)."""
    return json.dumps(value, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)


def _raise_exception(message: str):
    raise TemplateError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


class GenerationTag(Extension):
    """`{% generation %}...{% endgeneration %}` (transformers' marker of the assistant's tokens) renders its body:
    our masks come from rendering the conversation turn by turn, so the marker is not needed."""

    tags = {"generation"}

    def parse(self, parser):
        next(parser.stream)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


class ChatEnvironment(ImmutableSandboxedEnvironment):
    """transformers' settings (trim_blocks, lstrip_blocks, loopcontrols, raise_exception, strftime_now),
    sandboxed, with sizes bounded."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self) -> None:
        super().__init__(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols, GenerationTag])
        self.filters = {name: _bounded(f) for name, f in self.filters.items()}
        self.filters["tojson"] = _bounded(_tojson)
        for name in ("lipsum", "cycler", "joiner"):
            self.globals.pop(name, None)
        self.globals.update(raise_exception=_raise_exception, strftime_now=_strftime_now)

    def call_binop(self, context, operator, left, right):
        """`*`, `**` and `%` with their results' size bounded."""
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > MAX_SIZE:
                    raise SecurityError("the chat template makes a string or list too long to be a chat")
            return left * right
        if operator == "**":
            if isinstance(right, (int, float)) and abs(right) > 64:
                raise SecurityError("the chat template raises a number to a power too large")
            return left**right
        for value in right if isinstance(right, tuple) else (right,):
            _check_size(value)
        return left % right

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - jinja2's own signature
        """A call, refused when it passes a number too large to be a chat's width or count."""
        for value in (*args, *kwargs.values()):
            _check_size(value)
        return super().call(__context, __obj, *args, **kwargs)


ENV = ChatEnvironment()


def compile_template(text: str):
    """The jinja2 template of text, refused (DataError at data.chat_template) if it names Python internals
    or does not parse; nothing of it runs here."""
    try:
        tree = ENV.parse(text)
    except TemplateSyntaxError as err:
        raise DataError(f"the chat template does not parse (line {err.lineno}: {err.message}); fix the template "
                        "or choose chatml", FIELD) from None
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name, nodes.Filter)):
        reached = _reaches(node)
        if reached:
            raise DataError(f"the chat template reaches {reached!r} (line {node.lineno}): a template must not "
                            "touch Python internals, so it was refused without running it", FIELD)
    return ENV.from_string(tree)


def _reaches(node) -> str | None:
    if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
        return node.attr
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and \
            isinstance(node.arg.value, str) and node.arg.value.startswith("_"):
        return node.arg.value
    if isinstance(node, nodes.Name) and (node.name in FORBIDDEN_NAMES or node.name.startswith("_")):
        return node.name
    if isinstance(node, nodes.Filter) and node.name == "attr" and node.args and \
            isinstance(node.args[0], nodes.Const) and str(node.args[0].value).startswith("_"):
        return str(node.args[0].value)
    return None


def render_bounded(template, turns: int, **variables) -> str:
    """template.render(**variables) counting every template line it runs: past the budget it stops with
    DataError; so do the sandbox's refusals and the template's own errors."""
    budget = [STEPS + STEPS_PER_TURN * turns]

    def local(frame, event, arg):
        if event == "line":
            budget[0] -= 1
            if budget[0] < 0:
                raise TooMuchWork
        return local

    def tracer(frame, event, arg):
        return local if frame.f_code.co_filename == TEMPLATE_FILE else None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        return template.render(**variables)
    except TooMuchWork:
        raise DataError(f"the chat template ran more than {STEPS + STEPS_PER_TURN * turns:,} steps on one "
                        "conversation (a loop without end?); it was stopped and refused", FIELD) from None
    except SecurityError as err:
        raise DataError(f"the chat template was stopped: {err}", FIELD) from None
    except RecursionError:
        raise DataError("the chat template calls itself without end; it was stopped and refused", FIELD) from None
    except TemplateError as err:
        raise DataError(f"the chat template failed: {err}", FIELD) from None
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, ZeroDivisionError, OverflowError) as err:
        raise DataError(f"the chat template failed ({type(err).__name__}: {err})", FIELD) from None
    finally:
        sys.settrace(previous)
