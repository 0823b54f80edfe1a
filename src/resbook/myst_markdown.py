"""MyST Markdown turned into the plain Markdown that Jupyter and Colab render (CommonMark and ``$…$`` math).

Used by the notebook edition (:mod:`resbook.edition`). Each MyST construct the book uses has one plain
rendering: ``{glue:text}`name:.3f``` becomes the value the build computed, formatted as myst-nb formats it;
``{cite:p}`key``` becomes "(He et al., 2016a)"; ``(label)=`` targets and ``%`` comments go; an
``{exercise}`` becomes a bold "Exercise N: title" heading with its text; a ``{solution}`` becomes a
``<details>`` block; ``{doc}``, ``{ref}`` and links to the book's pages become links to the HTML book.
A role or directive without a plain rendering is an error that names it, never left in the text.
"""
from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass, field

ROLE = re.compile(r"\{([\w:+-]+)\}`([^`]*)`")
DIRECTIVE_OPEN = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}\s*(?P<argument>.*)$")
FENCE_OPEN = re.compile(r"^(?P<fence>`{3,}|~{3,}|:{3,})")
TARGET = re.compile(r"^\(([^()\s]+)\)=\s*$")
OPTION = re.compile(r"^:([\w-]+):\s*(.*)$")
LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)")
EXPLICIT_TARGET = re.compile(r"^(.*?)\s*<([^<>]+)>$", re.DOTALL)
ADMONITIONS = {"note", "tip", "hint", "important", "warning", "caution", "attention", "danger", "error", "seealso"}


def format_plain_text(text: str, spec: str) -> str:
    """A glued value's ``text/plain`` formatted with a Python format ``spec``, as myst-nb formats it.

    The text is read back as a Python literal where it is one (so ``'0.5'`` is the number 0.5); the spec's
    type letter decides the conversion: ``s`` str, ``d`` (and ``b c o x X``) int, ``f e g %`` (and
    ``E F G n``) float. An empty spec gives the value as ``str``.
    """
    if not isinstance(text, str) or not isinstance(spec, str):
        raise TypeError(f"text and spec must be str, got {type(text).__name__} and {type(spec).__name__}")
    try:
        value = ast.literal_eval(text)
    except (SyntaxError, ValueError):
        value = text
    if spec == "":
        return str(value)
    kind = spec[-1]
    if kind == "s":
        value = str(value)
    elif kind in "bcdoxX":
        value = int(value)
    elif kind in "eEfFgGn%":
        value = float(value)
    return format(value, spec)


@dataclass
class Context:
    """What the translation of one document needs to know, and what it learns on the way.

    ``glue``: glued name -> ``text/plain``; ``cite``: (keys, textual) -> citation text; ``page_url``:
    a book page (path from the book's root, without suffix) and an anchor -> its URL in the HTML book;
    ``labels``: a label -> (page, title) for ``{ref}``; ``directory``: the document's folder, from the
    book's root. ``exercises`` numbers this document's exercises by label as they are met.
    """

    glue: dict[str, str]
    cite: Callable[[list[str], bool], str]
    page_url: Callable[[str, str], str]
    labels: dict[str, tuple[str, str]] = field(default_factory=dict)
    page_titles: dict[str, str] = field(default_factory=dict)
    directory: str = ""
    exercises: dict[str, int] = field(default_factory=dict)
    inside_solution: str | None = None  # the label of the {solution-start} block being read

    def page(self, target: str) -> str:
        """A document target, relative to this document's folder, as a path from the book's root."""
        target = target.removesuffix(".md").removesuffix(".ipynb").lstrip("/")
        return f"{self.directory}/{target}".lstrip("/") if self.directory else target


def _split_target(content: str) -> tuple[str | None, str]:
    match = EXPLICIT_TARGET.match(content.strip())
    return (match.group(1), match.group(2)) if match else (None, content.strip())


def _glue(content: str, context: Context) -> str:
    key, spec = content.rsplit(":", 1) if ":" in content else (content, "")
    key = key.split("::")[-1]  # "doc.ipynb::name": the edition is made per chapter, from its own glue
    if key not in context.glue:
        raise ValueError(f"glued name {key!r} was not computed by the build (known: {sorted(context.glue)[:8]})")
    return format_plain_text(context.glue[key], spec)


def _doc(content: str, context: Context) -> str:
    text, target = _split_target(content)
    page = context.page(target)
    return f"[{text or context.page_titles.get(page, target)}]({context.page_url(page, '')})"


def _ref(content: str, context: Context) -> str:
    text, label = _split_target(content)
    if label in context.exercises:
        return text or f"Exercise {context.exercises[label]}"
    if label not in context.labels:
        raise ValueError(f"{{ref}} to unknown label {label!r}")
    page, title = context.labels[label]
    return f"[{text or title}]({context.page_url(page, label)})"


def _role(match: re.Match, context: Context) -> str:
    name, content = match.group(1), match.group(2)
    if name in ("glue", "glue:text", "glue:any"):
        return _glue(content, context)
    if name in ("cite", "cite:p", "cite:ps", "cite:t", "cite:ts"):
        return context.cite([key.strip() for key in content.split(",")], name.startswith("cite:t"))
    if name == "doc":
        return _doc(content, context)
    if name in ("ref", "numref"):
        return _ref(content, context)
    if name == "math":
        return f"${content}$"
    raise ValueError(f"the role {{{name}}} has no plain Markdown rendering in the notebook edition")


def _link(match: re.Match, context: Context) -> str:
    text, target = match.group(1), match.group(2)
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
        return match.group(0)  # a URL or an anchor in this notebook: Jupyter follows it as it is
    page, _, anchor = target.partition("#")
    return f"[{text}]({context.page_url(context.page(page), anchor)})"


def translate_inline(text: str, context: Context) -> str:
    """``text`` with every MyST role replaced and links to book pages pointed at the HTML book."""
    text = ROLE.sub(lambda match: _role(match, context), text)
    return LINK.sub(lambda match: _link(match, context), text)


def _block_end(lines: list[str], start: int, fence: str) -> int:
    """Index of the line that closes the fenced block opened at ``start`` (nested fences counted)."""
    depth = 1
    for index in range(start + 1, len(lines)):
        stripped = lines[index].strip()
        opening = FENCE_OPEN.match(stripped)
        if stripped == fence or (opening and opening.group("fence") == fence and stripped == opening.group(0)):
            depth -= 1
            if depth == 0:
                return index
        elif opening and opening.group("fence") == fence:
            depth += 1
    raise ValueError(f"the block opened by {lines[start]!r} is never closed")


def _options_and_body(lines: list[str]) -> tuple[dict[str, str], str]:
    options, index = {}, 0
    while index < len(lines) and (match := OPTION.match(lines[index].strip())):
        options[match.group(1)] = match.group(2)
        index += 1
    return options, "\n".join(lines[index:]).strip("\n")


def _exercise_number(label: str, context: Context) -> int:
    if label not in context.exercises:
        raise ValueError(f"a solution refers to exercise {label!r}, which comes later or does not exist")
    return context.exercises[label]


def _directive(name: str, argument: str, inner: list[str], context: Context) -> str:
    options, body = _options_and_body(inner)
    body = translate(body, context) if body else ""
    if name == "exercise":
        number = len(context.exercises) + 1
        context.exercises[options.get("label", f"exercise-{number}")] = number
        title = f": {translate_inline(argument, context)}" if argument else ""
        return f"**Exercise {number}{title}**\n\n{body}".rstrip()
    if name == "solution":
        summary = f"Solution to Exercise {_exercise_number(argument.strip(), context)}"
        return f"<details>\n<summary>{summary}</summary>\n\n{body}\n\n</details>"
    if name == "solution-start":
        context.inside_solution = argument.strip()
        number = _exercise_number(argument.strip(), context)
        return f"**Solution to Exercise {number}** (try the exercise first: the solution's code follows)"
    if name == "solution-end":
        context.inside_solution = None
        return ""
    if name in ADMONITIONS or name == "admonition":
        title = argument if name == "admonition" else name.capitalize()
        quoted = "\n".join(f"> {line}".rstrip() for line in body.splitlines())
        return f"> **{title}**\n>\n{quoted}"
    if name == "math":
        return f"$$\n{body}\n$$"
    if name in ("code", "code-block"):
        return f"```{argument}\n{body}\n```"
    raise ValueError(f"the directive {{{name}}} has no plain Markdown rendering in the notebook edition")


def translate(source: str, context: Context) -> str:
    """A Markdown cell's MyST source as plain Jupyter Markdown (see the module's docstring)."""
    lines, out, prose, index = source.split("\n"), [], [], 0

    def flush() -> None:  # roles and links may run over a line break: translate prose a paragraph at a time
        if prose:
            out.append(translate_inline("\n".join(prose), context))
            prose.clear()

    while index < len(lines):
        line = lines[index]
        directive, fence = DIRECTIVE_OPEN.match(line.strip()), FENCE_OPEN.match(line.strip())
        if directive or fence:
            flush()
            end = _block_end(lines, index, (directive or fence).group("fence"))
            if directive:
                out.append(_directive(directive.group("name"), directive.group("argument"),
                                      lines[index + 1:end], context))
            else:  # a plain code block: copied as it is
                out.extend(lines[index:end + 1])
            index = end + 1
            continue
        if not TARGET.match(line.strip()) and not line.startswith("%"):
            prose.append(line)
        index += 1
    flush()
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip("\n")
